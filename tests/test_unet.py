"""The U-Net factory and the class-weighted loss."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # builds and runs Keras models


@pytest.fixture(autouse=True)
def _training_modules():
    """The modules under test, imported when a test runs (never at
    collection, which would load TensorFlow in the fast lane)."""
    global class_weights_from_counts, keras_objects, weighted_loss, BATCHNORM_MOMENTUM, PRESETS, get_model, keras
    import keras

    from training.losses import class_weights_from_counts, keras_objects, weighted_loss
    from training.unet import BATCHNORM_MOMENTUM, PRESETS, get_model


def test_unet_has_skip_connections_softmax_and_float32_output():
    model = get_model((None, None, 1), 4, depth=2, base_filters=4)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "Concatenate" in kinds and "Lambda" not in kinds
    assert sum(type(layer).__name__ == "Concatenate" for layer in model.layers) == 2
    assert all(layer.momentum == BATCHNORM_MOMENTUM == 0.9 for layer in model.layers
               if type(layer).__name__ == "BatchNormalization")
    out = np.asarray(model(np.random.rand(2, 32, 48, 1).astype("float32"), training=False))
    assert out.shape == (2, 32, 48, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)


def test_bfloat16_model_computes_in_bfloat16_but_outputs_float32():
    model = get_model((None, None, 1), 2, depth=2, base_filters=4, precision="bfloat16")
    conv = model.get_layer("down0_conv1")
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    out = model(np.zeros((1, 16, 16, 1), "float32"))
    assert np.asarray(out).dtype == np.float32 and "float32" in str(out.dtype)


def test_presets_and_bad_arguments():
    def built(name):
        model = get_model((None, None, 1), 2, **PRESETS[name])
        pools = sum(type(layer).__name__ == "MaxPooling2D" for layer in model.layers)
        return model.count_params(), pools

    (cpu_params, cpu_pools), (gpu_params, gpu_pools) = built("cpu"), built("gpu")
    assert (cpu_pools, gpu_pools) == (PRESETS["cpu"]["depth"], PRESETS["gpu"]["depth"])
    assert cpu_params * 10 < gpu_params  # the processor's network is the much smaller one
    with pytest.raises(ValueError):
        get_model(num_classes=1)
    with pytest.raises(ValueError):
        get_model(precision="float16")


def test_class_weights_from_inverse_frequency_are_finite_and_clipped():
    weights = class_weights_from_counts([900, 90, 10], method="inverse", max_ratio=1000)
    np.testing.assert_allclose(weights / weights[0], [1, 10, 90])
    freq = np.array([900, 90, 10]) / 1000
    assert (freq * weights).sum() == pytest.approx(1.0)  # average pixel weight is 1
    median = class_weights_from_counts([900, 90, 10], method="median", max_ratio=1000)
    np.testing.assert_allclose(median / median[1], [0.1, 1, 9])
    clipped = class_weights_from_counts([10_000, 1, 0], method="median", max_ratio=20)
    assert np.all(np.isfinite(clipped))
    assert clipped.max() / clipped.min() == pytest.approx(20)
    assert clipped[2] == clipped.max()  # a missing class gets the largest weight, not infinity
    np.testing.assert_allclose(class_weights_from_counts([5, 5], method="none"), [1, 1])


def test_weighted_loss_weights_rare_class_and_round_trips_config():
    y_true = np.zeros((1, 4, 4), "int32")
    y_true[0, 0, 0] = 1
    y_pred = np.full((1, 4, 4, 2), 0.5, "float32")
    y_pred[..., 0] = 0.9
    y_pred[..., 1] = 0.1  # the one foreground pixel is badly predicted
    plain = float(weighted_loss([1.0, 1.0])(y_true, y_pred))
    heavy = float(weighted_loss([1.0, 15.0])(y_true, y_pred))
    assert heavy > 3 * plain
    expected_plain = (15 * -np.log(0.9) + -np.log(0.1)) / 16
    assert plain == pytest.approx(expected_plain, rel=1e-4)
    loss = weighted_loss([0.5, 2.0], dice_weight=0.3)
    cls = keras_objects()["WeightedSegmentationLoss"]
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(clone, cls) and clone.class_weights == [0.5, 2.0] and clone.dice_weight == 0.3
    assert float(clone(y_true, y_pred)) > float(weighted_loss([0.5, 2.0])(y_true, y_pred))
