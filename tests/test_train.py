"""Training: a tiny U-Net learns a tiny set; resume, cancel and the model folder."""

import json

import numpy as np
import pytest

from core.errors import UserInputError
from core.imageio import read_image, write_image
from core.progress import Progress
from training import TrainSettings, run_training
from training.history import parse_epoch_line, read_history

pytestmark = pytest.mark.slow  # trains models

TINY = dict(batch_size=4, depth=2, base_filters=8, val_fraction=0.25, learning_rate=3e-3)


def make_discs(folder, count=8, size=64, seed=0, image_ext=".png"):
    """Bright discs on a noisy background, with their exact masks."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    for i in range(count):
        mask = np.zeros((size, size), np.uint8)
        for _ in range(rng.integers(2, 5)):
            cy, cx, r = rng.uniform(8, size - 8, 2).tolist() + [rng.uniform(4, 9)]
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
        image = np.clip(60 + 120 * mask + rng.normal(0, 12, mask.shape), 0, 255).astype(np.uint8)
        write_image(folder / "images" / f"disc{i:02d}{image_ext}", image)
        write_image(folder / "masks" / f"disc{i:02d}.png", mask)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained until it fits its training set."""
    data = make_discs(tmp_path_factory.mktemp("discs"))
    (data / "synthesis.json").write_text(json.dumps({"classes": ["background", "object"], "object_diameter": 12}))
    model_dir = tmp_path_factory.mktemp("model")
    epochs_seen = []
    progress = Progress()
    result = run_training(data, model_dir, settings=TrainSettings(epochs=24, augment=False, patience=30, **TINY),
                          progress=progress, on_epoch_end=lambda e, logs: epochs_seen.append((e, logs)))
    return data, model_dir, result, progress, epochs_seen


def test_tiny_model_fits_its_training_set(trained):
    from evaluation import foreground_iou_dice
    from inference.predict import load_model, predict_mask

    data, model_dir, result, _, _ = trained
    assert not result.cancelled and result.best_epoch is not None
    model, meta = load_model(model_dir)
    ious = []
    for path in sorted((data / "images").iterdir()):
        pred = predict_mask(model, meta, read_image(path))
        ious.append(foreground_iou_dice(pred, read_image(data / "masks" / path.name))[0])
    assert np.mean(ious) > 0.85, ious
    assert result.metrics["val_iou_object"] > 0.7


def test_model_folder_holds_checkpoint_history_curves_and_description(trained):
    _, model_dir, result, progress, epochs_seen = trained
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["classes"] == ["background", "object"]
    assert meta["normalization"]["mode"] == "percentile"
    assert meta["architecture"]["depth"] == 2 and meta["patch_size"] == 64
    assert meta["object_diameter"] == 12.0  # from the data set's synthesis.json
    assert meta["best_epoch"] == result.best_epoch and meta["finished"] is True
    assert meta["training"]["class_weights"][1] > meta["training"]["class_weights"][0]
    rows = read_history(model_dir / "history.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(1, result.epochs_done + 1))
    assert {"loss", "val_loss", "val_iou_object", "val_iou_background"} <= set(rows[0])
    assert (model_dir / "curves.png").stat().st_size > 1000
    # The live hooks: one call and one parseable log line per epoch.
    assert [e for e, _ in epochs_seen] == list(range(1, result.epochs_done + 1))
    parsed = [parse_epoch_line(line) for line in progress.lines]
    parsed = [p for p in parsed if p]
    assert len(parsed) == result.epochs_done and "val_iou_object" in parsed[-1][2]
    assert "IoU" in result.summary()


def test_cancel_keeps_best_checkpoint_and_resume_continues(tmp_path):
    data = make_discs(tmp_path / "data", count=6)
    model_dir = tmp_path / "model"

    class CancelInSecondEpoch(Progress):
        def on_update(self, done, total, message):
            if "epoch 2/" in message and "batch 1/" in message:
                self.cancel()

    result = run_training(data, model_dir, settings=TrainSettings(epochs=4, **TINY),
                          progress=CancelInSecondEpoch())
    assert result.cancelled and result.epochs_run == 1 and result.best_epoch == 1
    assert [r["epoch"] for r in read_history(model_dir / "history.csv")] == ["1"]
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["finished"] is False and meta["epochs_done"] == 1
    assert not list(model_dir.glob(".*part*"))  # nothing half-written left behind

    resumed = run_training(data, model_dir, settings=TrainSettings(epochs=3, **TINY), progress=Progress())
    assert resumed.resumed and not resumed.cancelled
    assert resumed.epochs_run == 2 and resumed.epochs_done == 3  # epochs 2 and 3, up to the target
    assert [r["epoch"] for r in read_history(model_dir / "history.csv")] == ["1", "2", "3"]
    again = run_training(data, model_dir, settings=TrainSettings(epochs=1, **TINY), progress=Progress())
    assert again.epochs_done == 4  # a finished model gets more epochs on top


def test_float_frames_get_detector_normalisation_and_class_names(tmp_path):
    rng = np.random.default_rng(1)
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        mask = (rng.random((32, 32)) < 0.05).astype(np.uint8) * rng.integers(1, 3, (32, 32)).astype(np.uint8)
        frame = (1000 + rng.normal(0, 5, mask.shape) + 80 * mask).astype(np.float32)
        write_image(tmp_path / "images" / f"f{i}.tif", frame)
        write_image(tmp_path / "masks" / f"f{i}.png", mask)
    (tmp_path / "classes.json").write_text(json.dumps(["background", "hot pixel", "cluster"]))
    validation = make_discs(tmp_path / "validation", count=2, size=32)  # a separate validation folder
    result = run_training(tmp_path, tmp_path / "model", settings=TrainSettings(epochs=1, **TINY),
                          validation=validation)
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["normalization"]["mode"] == "detector"
    assert result.train_images == 3 and result.val_images == 2
    assert meta["training"]["validation"] == str(validation)
    assert meta["classes"] == ["background", "hot pixel", "cluster"]
    assert "val_iou_hot_pixel" in result.metrics


@pytest.mark.parametrize("case, words", [
    ("missing", "does not exist"),
    ("no_masks_folder", "no 'masks' subfolder"),
    ("empty", "holds no images"),
    ("image_without_mask", "disc01.png has no mask"),
    ("mask_without_image", "extra.png has no image"),
    ("class_beyond_k", "class index 5"),
    ("size_mismatch", "is 32 x 32 pixels but its image"),
    ("epochs", "number of epochs"),
])
def test_bad_input_gives_one_clear_message(tmp_path, case, words):
    data = tmp_path / "data"
    settings = TrainSettings(epochs=1, num_classes=2 if case == "class_beyond_k" else None, **TINY)
    if case != "missing":
        make_discs(data, count=3, size=32 if case != "size_mismatch" else 48)
    if case == "no_masks_folder":
        for f in (data / "masks").iterdir():
            f.unlink()
        (data / "masks").rmdir()
    elif case == "empty":
        for f in (data / "images").iterdir():
            f.unlink()
    elif case == "image_without_mask":
        (data / "masks" / "disc01.png").unlink()
    elif case == "mask_without_image":
        write_image(data / "masks" / "extra.png", np.zeros((32, 32), np.uint8))
    elif case == "class_beyond_k":
        write_image(data / "masks" / "disc01.png", np.full((32, 32), 5, np.uint8))
    elif case == "size_mismatch":
        write_image(data / "masks" / "disc01.png", np.zeros((32, 32), np.uint8))
    elif case == "epochs":
        settings.epochs = 0
    with pytest.raises(UserInputError) as info:
        run_training(data, tmp_path / "model", settings=settings)
    message = str(info.value)
    assert words in message and "\n" not in message
    assert not (tmp_path / "model").exists()  # nothing written on bad input


def test_real_nuclei_left_half_to_right_half(tmp_path):
    """Real fluorescence nuclei (DSB 2018): trained on tiles of the left half,
    the default network segments the unseen right half."""
    from conftest import SHARED_DATA
    from evaluation import foreground_iou_dice
    from inference.predict import load_model, predict_mask

    folder = SHARED_DATA / "dsb-nuclei"
    if not (folder / "img2d.tif").is_file():
        pytest.skip(f"real nuclei image not available in {folder}")
    image, mask = read_image(folder / "img2d.tif"), read_image(folder / "mask2d.tif")
    for k, (y, x) in enumerate((y, x) for y in range(0, 512, 128) for x in range(0, 256, 128)):
        write_image(tmp_path / "data" / "images" / f"tile{k}.tif", image[y:y + 128, x:x + 128])
        write_image(tmp_path / "data" / "masks" / f"tile{k}.png", (mask[y:y + 128, x:x + 128] > 0).astype(np.uint8))
    settings = TrainSettings(epochs=40, patch_size=128, batch_size=4, patience=100, preset="cpu")
    run_training(tmp_path / "data", tmp_path / "model", settings=settings)
    model, meta = load_model(tmp_path / "model")
    _, dice = foreground_iou_dice(predict_mask(model, meta, image[:, 256:]), mask[:, 256:])
    assert dice > 0.8
