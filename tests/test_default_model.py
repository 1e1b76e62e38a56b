"""The model bundled in checkpoints/ works the moment the application opens."""

from pathlib import Path

import numpy as np
import pytest

from core.imageio import read_image
from evaluation.segment import run_segment

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
