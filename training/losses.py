"""Class-weighted loss and per-class metrics for heavily unbalanced masks.

Microscope and detector masks are mostly background (95 % and more): plain
cross-entropy then learns "everything is background" and pixel accuracy
says 99 %. Keras' ``class_weight`` argument does not apply to per-pixel
targets, so the weighting lives in the loss: each pixel's cross-entropy is
multiplied by its true class's weight, the weights coming from inverse class
frequencies over the training masks (:func:`class_weights_from_counts`).
An optional soft-Dice term over the foreground classes rewards overlap
directly.

The loss is a registered serialisable Keras object, so a saved model loads
with ``safe_mode=True`` and training can resume from it.

:func:`class_weights_from_counts` is numpy only; the Keras parts are built
on first use so that importing this module stays cheap.
"""

from __future__ import annotations

import numpy as np

WEIGHTINGS = ("median", "inverse", "sqrt", "none")


def class_weights_from_counts(
    counts, *, method: str = "median", max_ratio: float = 50.0
) -> np.ndarray:
    """Per-class loss weights from pixel counts over the training masks.

    Parameters
    ----------
    counts : array_like of int
        Pixels of each class (index = class), over the whole training set.
    method : {"median", "inverse", "sqrt", "none"}
        "median": median-frequency balancing, ``median(f) / f_c``
        (Eigen & Fergus); "inverse": ``1 / f_c``; "sqrt": ``1 / sqrt(f_c)``,
        a gentler balance; "none": all ones.
    max_ratio : float
        The largest weight is at most ``max_ratio`` times the smallest, so a
        class with a handful of pixels cannot dominate the loss. A class
        with no pixel at all gets the largest allowed weight (never
        infinite).

    Returns
    -------
    ndarray
        float64 weights, scaled so that the average weight of a training
        pixel is 1 (the loss keeps its usual magnitude).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size < 2:
        raise ValueError("counts must list the pixels of at least 2 classes")
    if method not in WEIGHTINGS:
        raise ValueError(f"unknown class weighting '{method}' (choose from {', '.join(WEIGHTINGS)})")
    if max_ratio < 1:
        raise ValueError("max_ratio must be at least 1")
    total = counts.sum()
    present = counts > 0
    if method == "none" or total <= 0:
        return np.ones(counts.size)
    freq = counts / total
    weights = np.zeros(counts.size)
    if method == "median":
        weights[present] = np.median(freq[present]) / freq[present]
    elif method == "inverse":
        weights[present] = 1.0 / freq[present]
    else:
        weights[present] = 1.0 / np.sqrt(freq[present])
    smallest = weights[present].min()
    weights = np.where(present, np.minimum(weights, smallest * max_ratio), smallest * max_ratio)
    mean_pixel_weight = float((freq * weights).sum())
    return weights / mean_pixel_weight


_KERAS_OBJECTS: dict = {}


def keras_objects() -> dict:
    """The registered Keras classes (built once, on first use)."""
    if not _KERAS_OBJECTS:
        _KERAS_OBJECTS.update(_build_keras_objects())
    return _KERAS_OBJECTS


def weighted_loss(class_weights, *, dice_weight: float = 0.0):
    """A ``WeightedSegmentationLoss`` instance (see :func:`keras_objects`)."""
    cls = keras_objects()["WeightedSegmentationLoss"]
    return cls(class_weights=[float(w) for w in class_weights], dice_weight=float(dice_weight))


def per_class_iou_metrics(class_names: list[str]) -> list:
    """One ``keras.metrics.IoU`` per class, named ``iou_<class>``; logged per
    epoch (``val_iou_<class>`` on the validation set)."""
    import keras

    num_classes = len(class_names)
    return [
        keras.metrics.IoU(num_classes=num_classes, target_class_ids=[c], sparse_y_true=True,
                          sparse_y_pred=False, name=f"iou_{metric_name(name)}")
        for c, name in enumerate(class_names)
    ]


def metric_name(class_name: str) -> str:
    """A class name as it appears in metric and history column names."""
    text = "".join(ch if ch.isalnum() else "_" for ch in class_name.strip().lower())
    return text.strip("_") or "class"


def _build_keras_objects() -> dict:
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="segloop")
    class WeightedSegmentationLoss(keras.losses.Loss):
        """Class-weighted cross-entropy (+ ``dice_weight`` x soft-Dice loss).

        ``y_true`` holds class indices (B, H, W) or (B, H, W, 1); ``y_pred``
        the softmax probabilities (B, H, W, K). Per image, the cross-entropy
        is the weighted mean ``sum(w * ce) / sum(w)``; the Dice term is
        ``1 - mean`` soft Dice over the foreground classes (1..K-1).
        """

        def __init__(self, class_weights, dice_weight=0.0, name="weighted_segmentation_loss",
                     reduction="sum_over_batch_size", **kwargs):
            super().__init__(name=name, reduction=reduction, **kwargs)
            self.class_weights = [float(w) for w in class_weights]
            self.dice_weight = float(dice_weight)

        def call(self, y_true, y_pred):
            num_classes = len(self.class_weights)
            y_pred = ops.cast(y_pred, "float32")
            y_true = ops.cast(y_true, "int32")
            if len(y_true.shape) == len(y_pred.shape):
                y_true = ops.squeeze(y_true, axis=-1)
            onehot = ops.one_hot(y_true, num_classes, dtype="float32")
            probs = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
            weights = ops.convert_to_tensor(self.class_weights, dtype="float32")
            pixel_weight = ops.sum(onehot * weights, axis=-1)
            pixel_ce = -ops.sum(onehot * ops.log(probs), axis=-1)
            spatial = (1, 2)
            loss = ops.sum(pixel_ce * pixel_weight, axis=spatial) / (ops.sum(pixel_weight, axis=spatial) + 1e-7)
            if self.dice_weight > 0:
                intersection = ops.sum(onehot * y_pred, axis=spatial)
                sizes = ops.sum(onehot, axis=spatial) + ops.sum(y_pred, axis=spatial)
                dice = (2.0 * intersection + 1.0) / (sizes + 1.0)
                loss = loss + self.dice_weight * (1.0 - ops.mean(dice[:, 1:], axis=-1))
            return loss

        def get_config(self):
            config = super().get_config()
            config.update(class_weights=self.class_weights, dice_weight=self.dice_weight)
            return config

    return {"WeightedSegmentationLoss": WeightedSegmentationLoss}
