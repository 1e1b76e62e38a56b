"""The U-Net that segments photos and detector frames.

A classic encoder/decoder with skip connections (Ronneberger et al., 2015):
two 3x3 convolutions with batch normalisation and ReLU per level, max
pooling down, transposed convolutions up, and a 1x1 convolution with a
softmax over the classes. The input size is free (``None x None``); its
sides must be multiples of ``2 ** depth``, which the prediction code ensures
by reflect padding.

This module imports Keras at the top: it is only imported from inside the
training and prediction functions, never at application start-up.
"""

from __future__ import annotations

import keras
from keras import layers

# Sizes chosen by measurement on a 2-core CPU (see benchmarks/bench_training.py):
# "cpu" trains a useful model in minutes there, "gpu" is the larger network
# for a machine with a graphics card.
PRESETS: dict[str, dict] = {
    "cpu": {"depth": 4, "base_filters": 8},
    "gpu": {"depth": 5, "base_filters": 32},
}

# Batch statistics of a short training move a lot between epochs; the Keras
# default momentum 0.99 lags so far behind that the moving averages used at
# inference do not match the weights (measured: Dice 0.30 vs 0.94).
BATCHNORM_MOMENTUM = 0.9


def preset(name: str) -> dict:
    """The architecture arguments of a named preset ("cpu" or "gpu")."""
    try:
        return dict(PRESETS[name])
    except KeyError:
        raise ValueError(f"unknown model preset '{name}' (choose from {', '.join(PRESETS)})") from None


def _conv_block(x, filters: int, name: str, dtype):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                          name=f"{name}_conv{i}", dtype=dtype)(x)
        x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name=f"{name}_bn{i}", dtype=dtype)(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}", dtype=dtype)(x)
    return x


def get_model(
    input_shape: tuple = (None, None, 1),
    num_classes: int = 2,
    *,
    depth: int = 4,
    base_filters: int = 16,
    dropout: float = 0.0,
    precision: str = "float32",
    name: str = "unet",
) -> keras.Model:
    """Build a U-Net.

    Parameters
    ----------
    input_shape : tuple
        ``(height, width, channels)``; ``None`` sides accept any size that is
        a multiple of ``2 ** depth``.
    num_classes : int
        Number of classes K (background included); the output is a softmax
        over K channels.
    depth : int
        Number of poolings (levels below the full resolution).
    base_filters : int
        Filters of the first level; each level below doubles them.
    dropout : float
        Dropout rate at the bottleneck (0 disables it).
    precision : {"float32", "bfloat16"}
        "bfloat16" computes with the ``mixed_bfloat16`` policy (weights stay
        float32); the softmax layer is always float32.
    name : str
        Model name.

    Returns
    -------
    keras.Model
        Uncompiled model mapping ``(B, H, W, C)`` to ``(B, H, W, K)``
        probabilities (float32).
    """
    if num_classes < 2:
        raise ValueError("a segmentation model needs at least 2 classes")
    if depth < 1 or base_filters < 1:
        raise ValueError("depth and base_filters must be positive")
    dtype = {"float32": "float32", "bfloat16": "mixed_bfloat16"}.get(precision)
    if dtype is None:
        raise ValueError(f"unknown precision '{precision}' (float32 or bfloat16)")

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = _conv_block(x, base_filters * 2**level, f"down{level}", dtype)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}", dtype=dtype)(x)
    x = _conv_block(x, base_filters * 2**depth, "bottom", dtype)
    if dropout > 0:
        x = layers.Dropout(dropout, name="bottom_dropout", dtype=dtype)(x)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level}_transpose",
                                   dtype=dtype)(x)
        x = layers.Concatenate(name=f"up{level}_concat", dtype=dtype)([x, skips[level]])
        x = _conv_block(x, filters, f"up{level}", dtype)
    x = layers.Conv2D(num_classes, 1, name="logits", dtype=dtype)(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
