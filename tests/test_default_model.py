"""The model bundled in checkpoints/ works the moment the application opens."""

from pathlib import Path

import numpy as np
import pytest

from core.imageio import read_image
from inference import run_segment

pytestmark = pytest.mark.slow  # loads and trains the bundled model

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "checkpoints"


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundled")
    photo = ROOT / "working_directory" / "photos" / "particles_02.png"
    return photo, run_segment(BUNDLED, photo, out), out


def test_bundled_model_is_small_and_complete():
    size = sum(p.stat().st_size for p in BUNDLED.iterdir()) / 1e6
    assert (BUNDLED / "model.keras").is_file() and (BUNDLED / "model.json").is_file()
    assert size < 3.0


def test_bundled_model_segments_a_sample_photo(segmented):
    photo, result, out = segmented
    assert result.photos == 1 and not result.failed
    mask = read_image(out / f"{photo.stem}_mask.png")
    gray = read_image(photo).astype(float)
    gray = gray.mean(axis=2) if gray.ndim == 3 else gray
    assert 0.02 < (mask > 0).mean() < 0.4
    assert gray[mask > 0].mean() < gray[mask == 0].mean() - 20  # dark particles found, not background
    assert 20 <= result.objects <= 60
    labels = read_image(out / f"{photo.stem}_labels.tif")
    assert labels.max() == result.objects and np.unique(labels).size == result.objects + 1


def _digest(folder):
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_training_starts_from_a_copy_of_the_bundled_model_which_never_changes(tmp_path):
    """The bundled model is saved without an optimiser: training it further
    starts a fresh one, on a copy."""
    from test_train import make_discs

    from core.progress import Progress
    from training import TrainSettings, run_training
    from training.history import read_history

    before = _digest(BUNDLED)
    data = make_discs(tmp_path / "data", count=4, size=64)
    model = tmp_path / "work" / "model"
    result = run_training(data, model, settings=TrainSettings(epochs=1, batch_size=2, patch_size=64),
                          start_from=BUNDLED, progress=Progress())
    assert result.resumed and result.epochs_run == 1 and result.epochs_done == 26
    assert len(read_history(model / "history.csv")) == 26 and (model / "model.keras").is_file()
    assert _digest(BUNDLED) == before
    # A cancel before the first epoch takes the copy back: nothing is left.
    stopped = Progress()
    stopped.cancel()
    other = tmp_path / "other"
    result = run_training(data, other, settings=TrainSettings(epochs=1, batch_size=2, patch_size=64),
                          start_from=BUNDLED, progress=stopped)
    assert result.cancelled and result.best_epoch is None and not other.exists()
    assert _digest(BUNDLED) == before


def test_the_command_line_never_trains_the_bundled_model_in_place(tmp_path):
    from helpers import run_app

    before = _digest(BUNDLED)
    photos = ROOT / "working_directory" / "photos"
    for args in (("train", "--data", str(tmp_path), "--model", str(BUNDLED), "--epochs", "1"),
                 ("refine", "--images", str(photos), "--workdir", str(tmp_path / "wd"), "--model", str(BUNDLED)),
                 ("pipeline", "--images", str(photos), "--workdir", str(tmp_path / "wd"), "--model", "checkpoints"),
                 ("train", "--data", str(tmp_path), "--model", "bundled", "--epochs", "1")):
        done = run_app(*args)
        assert done.returncode == 2, done.stderr[-2000:]
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "never changed" in errors[0] and "--start-from bundled" in errors[0], done.stderr
        assert "Traceback" not in done.stderr
    assert _digest(BUNDLED) == before
    assert not (tmp_path / "wd").exists()
