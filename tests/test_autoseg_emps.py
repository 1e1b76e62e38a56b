"""Auto-segmentation's polarity on real electron micrographs.

A dense packing of particles covers most of the photo's border, so the
border says the gaps are the background's opposite; the second look reads
such a photo the other way round too and keeps the more compact objects.
"""

import numpy as np
import pytest

from conftest import SHARED_DATA
from core.imageio import read_image
from evaluation import foreground_iou_dice

EMPS = SHARED_DATA / "emps-dev"

pytestmark = pytest.mark.skipif(
    not (EMPS / "masks").is_dir(),
    reason=f"EMPS development data not found at {EMPS} (real-data test, run where ../shared/data exists)",
)


@pytest.mark.parametrize("stem", ["f6c0d8967e", "55511ff512", "a59bcf3f13"])
def test_dense_packings_are_read_the_right_way_round(stem):
    from segmentation.autoseg import SECOND_LOOK_MARGIN, find_objects

    image, truth = read_image(EMPS / "images" / f"{stem}.png"), read_image(EMPS / "masks" / f"{stem}.png")
    border = np.concatenate([truth[0], truth[-1], truth[:, 0], truth[:, -1]]) > 0
    assert border.mean() > 0.5  # particles on most of the border
    found = find_objects(image)
    assert found.polarity_margin < SECOND_LOOK_MARGIN
    iou, _ = foreground_iou_dice(found.foreground, truth)
    assert iou > 0.75  # 0.07, 0.51 and 0.34 read by the border alone


def test_a_clear_border_is_not_second_guessed(monkeypatch):
    import segmentation.autoseg as autoseg

    looks = []
    monkeypatch.setattr(autoseg, "_second_look", lambda *a, **k: looks.append(1) or a[2])
    image, truth = read_image(EMPS / "images" / "1ecd5c901c.png"), read_image(EMPS / "masks" / "1ecd5c901c.png")
    found = autoseg.find_objects(image)
    assert found.polarity_margin >= autoseg.SECOND_LOOK_MARGIN and looks == []
    assert foreground_iou_dice(found.foreground, truth)[0] > 0.75


@pytest.mark.parametrize("stem", ["e3a800b533", "a59bcf3f13"])
def test_packed_particles_are_counted_one_by_one(stem):
    """Chains and packings of particles touching along wide fronts: filling
    the small gaps where three of them meet left no neck for the splitter,
    and each cluster was one object (instance F1 0.14 and 0.27)."""
    from evaluation import instance_matching
    from segmentation import find_objects

    image, truth = read_image(EMPS / "images" / f"{stem}.png"), read_image(EMPS / "masks" / f"{stem}.png")
    found = find_objects(image)
    match = instance_matching(found.labels, truth, 0.5, pred_are_labels=True)
    assert 2 * match.tp / (2 * match.tp + match.fp + match.fn) > 0.8


@pytest.mark.slow  # a child process that loads the application
def test_the_autoseg_command_counts_a_packing_of_particles(tmp_path):
    """The way a user goes: the command on a folder holding a photo of
    chains of touching particles; the objects file it writes counts them."""
    import shutil

    from evaluation import instance_matching
    from helpers import run_app

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(EMPS / "images" / "e3a800b533.png", photos)
    result = run_app("autoseg", "--images", photos, "--workdir", tmp_path / "wd")
    assert result.returncode == 0, result.stderr
    labels = read_image(tmp_path / "wd" / "autoseg" / "e3a800b533_labels.tif")
    truth = read_image(EMPS / "masks" / "e3a800b533.png")
    match = instance_matching(labels, truth, 0.5, pred_are_labels=True)
    assert match.tp >= 0.85 * truth.max()  # 15 of 167 when packed particles were one object
    assert read_image(photos / "e3a800b533.png").tobytes() == read_image(EMPS / "images" / "e3a800b533.png").tobytes()
