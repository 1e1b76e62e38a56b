"""Tiled prediction, safe model loading and prediction files."""

import json
import zipfile

import numpy as np
import pytest

from core.errors import UserInputError
from inference.predict import (
    blend_window,
    iter_probability_bands,
    load_model,
    predict_mask,
    predict_probabilities,
    reflect_indices,
    tile_starts,
)

pytestmark = pytest.mark.slow  # loads TensorFlow


def _meta(num_classes=3, depth=3, mode="percentile"):
    return {"format": "segloop-unet", "classes": ["background"] + [f"c{i}" for i in range(1, num_classes)],
            "num_classes": num_classes, "normalization": {"mode": mode, "low": 0.5, "high": 99.5},
            "architecture": {"depth": depth, "base_filters": 4, "pad_multiple": 2 ** depth},
            "tile_size": 64}


@pytest.fixture(scope="module")
def model_dir(tiny_project):
    """A tiny trained model folder with 2 classes (conftest.tiny_project)."""
    return tiny_project / "model"


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load_model(model_dir)


def _photo(h=150, w=130, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    image = 100 + 60 * np.sin(yy / 9.0) * np.cos(xx / 7.0) + rng.normal(0, 10, (h, w))
    return np.clip(image, 0, 255).astype(np.uint8)


def _local_model(size):
    """A network whose output depends on a size x size neighbourhood only."""
    import keras

    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(3, size, padding="same")(inputs)
    return keras.Model(inputs, keras.layers.Activation("softmax")(x))


def test_tile_blending_is_exact_for_a_pixelwise_network():
    import keras

    keras.utils.set_random_seed(1)
    meta, image = _meta(depth=2), _photo()
    pixelwise = _local_model(1)
    whole = predict_probabilities(pixelwise, meta, image, tile=256)
    for tile, overlap in [(48, 16), (64, 0), (32, 12)]:
        np.testing.assert_allclose(predict_probabilities(pixelwise, meta, image, tile=tile, overlap=overlap),
                                   whole, atol=1e-6)
    # With 5 x 5 context the tile edges differ; the blending hides them.
    local = _local_model(5)
    whole = predict_probabilities(local, meta, image, tile=256)
    blended = np.abs(predict_probabilities(local, meta, image, tile=48, overlap=16) - whole)
    seamy = np.abs(predict_probabilities(local, meta, image, tile=48, overlap=0) - whole)
    assert blended[4:-4, 4:-4].max() < 0.01 < seamy[4:-4, 4:-4].max()


def test_tiled_prediction_equals_untiled_away_from_borders(loaded):
    model, meta = loaded
    image = _photo(200, 180)
    whole = predict_probabilities(model, meta, image, tile=256)  # one tile covers it
    tiled = predict_probabilities(model, meta, image, tile=64, overlap=32)
    assert tiled.shape == whole.shape == (200, 180, 2)
    np.testing.assert_allclose(tiled.sum(-1), 1.0, atol=1e-5)
    diff = np.abs(tiled - whole)[8:-8, 8:-8]
    assert diff.max() < 0.1 and np.percentile(diff, 99) < 0.02
    assert (tiled.argmax(-1) == whole.argmax(-1)).mean() > 0.995


def test_bands_cover_every_row_once_in_order(loaded):
    model, meta = loaded
    image = _photo(200, 90)
    starts, total = [], 0
    for y0, band in iter_probability_bands(model, meta, image, tile=48, overlap=16):
        assert y0 == total and band.shape[1:] == (90, 2)
        starts.append(y0)
        total += band.shape[0]
    assert total == 200 and len(starts) > 3


@pytest.mark.parametrize("kind", ["uint16", "float", "rgb", "rgba"])
def test_any_dtype_and_channels_gives_the_same_mask(loaded, kind):
    model, meta = loaded
    gray = _photo()
    reference = predict_mask(model, meta, gray)
    image = {"uint16": gray.astype(np.uint16) * 257, "float": gray.astype(np.float32) / 255.0 - 0.3,
             "rgb": np.repeat(gray[..., None], 3, -1),
             "rgba": np.dstack([gray, gray, gray, np.full_like(gray, 255)])}[kind]
    mask = predict_mask(model, meta, image)
    assert mask.dtype == np.uint8 and mask.shape == gray.shape
    assert (mask == reference).mean() > 0.99


def test_photo_smaller_than_a_tile_and_odd_sizes(loaded):
    model, meta = loaded
    for shape in [(5, 7), (1, 1), (17, 200)]:
        probs = predict_probabilities(model, meta, _photo(*shape))
        assert probs.shape == shape + (2,)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_scale_resamples_and_returns_the_original_size(loaded):
    model, meta = loaded
    image = _photo(120, 100)
    mask, foreground = predict_mask(model, meta, image, scale=0.5, return_foreground=True)
    assert mask.shape == (120, 100) and foreground.shape == (120, 100)
    assert foreground.min() >= 0 and foreground.max() <= 1
    probs = predict_probabilities(model, meta, image, scale=1.6, tile=48)
    assert probs.shape == (120, 100, 2)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-4)


def test_tiling_helpers():
    assert tile_starts(100, 64, 16) == [0, 36]
    assert tile_starts(30, 64, 16) == [0]
    starts = tile_starts(1000, 256, 32)
    assert starts[-1] == 1000 - 256 and all(b - a <= 224 for a, b in zip(starts, starts[1:]))
    w = blend_window(64, 16)
    assert w.min() > 0 and w[32] == 1 and w[0] < 1e-4 and np.allclose(w, w[::-1])
    assert np.all(np.diff(w[:16]) > 0)
    np.testing.assert_array_equal(reflect_indices(-2, 8, 4), [2, 1, 0, 1, 2, 3, 2, 1])
    assert reflect_indices(0, 5, 1).tolist() == [0] * 5


def test_the_overlay_outlines_each_class_in_its_colour_and_objects_cut_by_the_edge_in_red():
    from measurement.overlay import draw_overlay

    image = _photo(20, 30)
    labels = np.zeros((20, 30), np.int32)
    labels[5:15, 5:15], labels[2:6, 20:28], labels[12:20, 22:30] = 1, 2, 3
    classes = np.array([0, 1, 2, 1])
    overlay = draw_overlay(image, labels, classes=classes, draw_ids=False)
    assert overlay.shape == (20, 30, 3)
    first, second, cut = tuple(overlay[5, 5]), tuple(overlay[2, 20]), tuple(overlay[12, 22])
    assert len({first, second, cut}) == 3 and cut == (255, 60, 60)
    assert tuple(overlay[10, 10]) == (image[10, 10],) * 3  # inside an object: the photo


def test_missing_or_incomplete_model_folder(tmp_path, model_dir):
    with pytest.raises(UserInputError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="no model.json"):
        load_model(tmp_path / "empty")
    (tmp_path / "empty" / "model.json").write_text(json.dumps(_meta()))
    with pytest.raises(UserInputError, match="model file is missing"):
        load_model(tmp_path / "empty")
    (tmp_path / "empty" / "model.keras").write_bytes(b"not a zip at all")
    with pytest.raises(UserInputError, match="is damaged or is not a saved model"):
        load_model(tmp_path / "empty")
    (tmp_path / "empty" / "model.json").write_text(json.dumps(_meta(num_classes=3)))
    (tmp_path / "empty" / "model.keras").write_bytes((model_dir / "model.keras").read_bytes())
    with pytest.raises(UserInputError, match="predicts 2 classes"):
        load_model(tmp_path / "empty")


def test_tampered_model_with_code_is_refused(tmp_path, model_dir):
    """A model file whose last layer was replaced by a Lambda layer carrying
    Python bytecode must not load (it could run anything)."""
    import keras

    evil = keras.layers.Lambda(lambda x: __import__("os").getcwd() and x, name="probabilities")
    evil_config = keras.saving.serialize_keras_object(evil)
    assert "code" in json.dumps(evil_config)  # the function travels as marshalled bytecode
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "model.json").write_text((model_dir / "model.json").read_text())
    with zipfile.ZipFile(model_dir / "model.keras") as src, \
            zipfile.ZipFile(tampered / "model.keras", "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                layers = config["config"]["layers"]
                index = next(i for i, layer in enumerate(layers) if layer["name"] == "probabilities")
                evil_config["inbound_nodes"] = layers[index]["inbound_nodes"]
                evil_config["name"] = "probabilities"
                layers[index] = evil_config
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    with pytest.raises(UserInputError) as info:
        load_model(tampered)
    message = str(info.value)
    assert "refused" in message and "Lambda" in message and "\n" not in message


def test_progress_per_tile_row_and_cancel(loaded):
    from core.errors import StageCancelled
    from core.progress import Progress

    model, meta = loaded
    seen = []

    class Recorder(Progress):
        def on_update(self, done, total, message):
            seen.append((done, total))

    predict_mask(model, meta, _photo(200, 60), tile=64, overlap=16, progress=Recorder())
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)

    class CancelAtSecondRow(Progress):
        def on_update(self, done, total, message):
            if done == 1:
                self.cancel()

    with pytest.raises(StageCancelled):
        predict_mask(model, meta, _photo(200, 60), tile=64, overlap=16, progress=CancelAtSecondRow())


def test_streamed_resampling_equals_whole_array_resampling():
    from inference.resample import RowResampler, resample_image

    rng = np.random.default_rng(0)
    source = rng.random((40, 30, 2)).astype(np.float32)
    for dst in [(100, 75), (17, 12)]:
        streamer = RowResampler(40, 30, *dst)
        out, y0 = [], 0
        for rows in (7, 1, 13, 19):
            for start, band in streamer.push(y0, source[y0:y0 + rows], last=y0 + rows == 40):
                assert start == sum(b.shape[0] for b in out)
                out.append(band)
            y0 += rows
        streamed = np.concatenate(out)
        assert streamed.shape == dst + (2,)
        if dst == (100, 75):  # an exact 2.5x enlargement: no anti-aliasing involved
            np.testing.assert_allclose(streamed[..., 1], resample_image(source[..., 1], 2.5), atol=1e-6)
    assert resample_image(np.ones((50, 40), np.float32), 0.3).shape == (15, 12)


def test_flips_average_the_four_mirror_images(loaded):
    model, meta = loaded
    image = _photo(64, 64, seed=3)  # one tile: the tile is the whole photo
    views = [(lambda a: a), (lambda a: a[:, ::-1]), (lambda a: a[::-1]), (lambda a: a[::-1, ::-1])]
    expected = np.mean([flip(predict_probabilities(model, meta, np.ascontiguousarray(flip(image))))
                        for flip in views], axis=0)
    got = predict_probabilities(model, meta, image, flips=True)
    assert np.abs(got - expected).max() < 1e-4
    assert np.abs(got - predict_probabilities(model, meta, image)).max() > 1e-4  # it changed something
    for count in (1, 2):  # fewer views: the first of them, in the same order
        expected = np.mean([flip(predict_probabilities(model, meta, np.ascontiguousarray(flip(image))))
                            for flip in views[:count + 1]], axis=0)
        assert np.abs(predict_probabilities(model, meta, image, flips=count) - expected).max() < 1e-4
    assert np.array_equal(predict_probabilities(model, meta, image, flips=0), predict_probabilities(model, meta, image))
    big = _photo(200, 180, seed=4)  # tiled as without flips (see the tiled test above)
    whole = predict_probabilities(model, meta, big, tile=256, flips=True)
    tiled = predict_probabilities(model, meta, big, tile=64, overlap=32, flips=True)
    np.testing.assert_allclose(tiled.sum(-1), 1.0, atol=1e-5)
    diff = np.abs(tiled - whole)[8:-8, 8:-8]
    assert diff.max() < 0.1 and np.percentile(diff, 99) < 0.02


def test_automatic_mirrors_only_where_the_photo_is_small_at_its_scale(loaded, monkeypatch):
    """flips "auto": the four views where the photo at its scale is at most
    MIRROR_PIXELS network pixels, the photo as it is above that."""
    import inference.predict as predict
    from inference.predict import MIRROR_PIXELS, mirror_views

    assert mirror_views("auto", (1000, 1000)) == 3 and mirror_views("auto", (1000, 1000), 1.01) == 0
    assert mirror_views("auto", (4000, 4000), 0.25) == 3 and mirror_views("auto", (2592, 2048)) == 0
    assert MIRROR_PIXELS == 1_000_000
    assert mirror_views(True) == 3 and mirror_views(False) == 0 and mirror_views(2) == 2
    with pytest.raises(ValueError):
        mirror_views("sometimes", (10, 10))
    from core.errors import UserInputError
    from inference.settings import SegmentSettings

    assert SegmentSettings().flips == "auto"
    for wrong in ("sometimes", 4, -1, 1.5, None):
        with pytest.raises(UserInputError):
            SegmentSettings(flips=wrong).check()
    model, meta = loaded
    image = _photo(64, 64, seed=3)
    mirrored = predict_probabilities(model, meta, image, flips=True)
    assert np.array_equal(predict_probabilities(model, meta, image, flips="auto"), mirrored)
    assert np.array_equal(predict_probabilities(model, meta, image, scale=1.5, flips="auto"),
                          predict_probabilities(model, meta, image, scale=1.5, flips=True))
    monkeypatch.setattr(predict, "MIRROR_PIXELS", 64 * 64 - 1)
    plain = predict_probabilities(model, meta, image)
    assert np.array_equal(predict_probabilities(model, meta, image, flips="auto"), plain)
    assert not np.array_equal(mirrored, plain)
    _, known = predict_mask(model, meta, image, return_foreground=True)  # the scale check's, reused
    _, foreground = predict_mask(model, meta, image, flips="auto", known=known.copy(), return_foreground=True)
    np.testing.assert_array_equal(foreground, known)


def test_object_threshold_for_two_class_models(loaded):
    model, meta = loaded
    image = _photo(seed=5)
    _, fg = predict_mask(model, meta, image, return_foreground=True)
    for threshold in (0.2, 0.5, 0.8):
        mask = predict_mask(model, meta, image, threshold=threshold)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
        assert np.array_equal(mask, (fg >= threshold).astype(np.uint8))
    assert (predict_mask(model, meta, image, threshold=0.2) >= predict_mask(model, meta, image, threshold=0.8)).all()


class _CountingModel:
    """A model that counts the tiles it is asked to predict."""

    def __init__(self, model):
        self.model, self.tiles = model, 0

    def predict_on_batch(self, batch):
        self.tiles += len(batch)
        return self.model.predict_on_batch(batch)


@pytest.mark.parametrize("flips", [False, True, 1])
def test_a_known_foreground_is_not_predicted_again(loaded, flips):
    """The scale check has predicted the photo at the chosen scale already:
    the photo's own prediction reuses it (nothing predicted without flips,
    the three mirrored views only with them) and gives the same result."""
    model, meta = loaded
    image = _photo(200, 180, seed=6)
    _, known = predict_mask(model, meta, image, scale=1.3, tile=64, return_foreground=True)
    counting = _CountingModel(model)
    expected_mask, expected = predict_mask(counting, meta, image, scale=1.3, tile=64, flips=flips, threshold=0.5,
                                           return_foreground=True)
    full = counting.tiles
    counting.tiles = 0
    mask, foreground = predict_mask(counting, meta, image, scale=1.3, tile=64, flips=flips, threshold=0.5,
                                    return_foreground=True, known=known.copy())
    views = 3 if flips is True else int(flips)
    assert counting.tiles == full * views // (views + 1)
    np.testing.assert_allclose(foreground, expected, atol=1e-5)
    near_half = np.abs(expected - 0.5) < 1e-5
    assert np.array_equal(mask[~near_half], expected_mask[~near_half])
    assert np.array_equal(predict_mask(model, meta, image, known=known * 0 + 0.7), np.ones(image.shape, np.uint8))
    with pytest.raises(ValueError):
        predict_mask(model, _meta(3), image, known=known)


def test_the_network_runs_on_onnx_runtime_with_the_models_answers(loaded, monkeypatch):
    from inference.runtime import TOLERANCE, OnnxNetwork, cached_path, prediction_network

    model, meta = loaded
    network = prediction_network(model, key="tiny-model")
    assert isinstance(network, OnnxNetwork)
    cached = cached_path("tiny-model")
    assert cached.is_file()  # the next run skips the conversion
    assert isinstance(prediction_network(model, key="tiny-model"), OnnxNetwork)
    image = _photo(200, 170)
    expected = predict_probabilities(model, meta, image, scale=1.3, flips=True)
    got = predict_probabilities(network, meta, image, scale=1.3, flips=True)
    assert float(np.abs(expected - got).max()) <= TOLERANCE
    monkeypatch.setenv("SEGLOOP_RUNTIME", "tensorflow")
    assert prediction_network(model) is model


def test_a_model_onnx_cannot_take_stays_on_tensorflow_and_says_why(loaded, monkeypatch):
    import tf2onnx

    from inference.runtime import prediction_network

    model, _ = loaded

    def refuse(*args, **kwargs):
        raise RuntimeError("unsupported layer")

    monkeypatch.setattr(tf2onnx.convert, "from_keras", refuse)
    assert prediction_network(model) is model
    assert "unsupported layer" in model.onnx_refused
