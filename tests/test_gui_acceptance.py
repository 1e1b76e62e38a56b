"""The whole loop in the real window, the way a new user goes through it.

A fresh copy of the bundled sample working directory, settings as on a
first launch, every field at the value the window shows (only the number
of epochs lowered, for Train and for each round), the bundled model in the Model
field. Each button is
pressed in the order the README gives, and after each step the test checks
what is on disk. Message boxes are recorded: none may appear.
"""

import csv
import shutil

import numpy as np
import pytest
from PyQt5.QtCore import Qt

from conftest import ROOT
from core.imageio import list_images
from core.model_folder import BUNDLED_MODEL
from core.workdir import WorkingDirectory
from gui.controls import AUTOSEG, REFINE, SEGMENT, SEGMENT_ALL, SYNTHESIZE, TRAIN
from gui.review import PICK
from helpers import open_window, record_message_boxes, tree_digest
from loop import RefineSettings
from synthetic import SynthesisSettings
from training import TrainSettings

SAMPLE = ROOT / "working_directory" / "photos"


def press(qtbot, window, stage, timeout=600_000):
    import time

    t0 = time.monotonic()
    with qtbot.waitSignal(window.runner.stopped, timeout=timeout):
        qtbot.mouseClick(window.controls.buttons[stage], Qt.LeftButton)
    print(f"{stage}: {time.monotonic() - t0:.1f} s")


def rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def click_pixel(qtbot, window, row, col):
    view = window.review.view
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.viewport_pos_of(row, col))


@pytest.mark.skipif(not (BUNDLED_MODEL / "model.keras").is_file(), reason="the bundled model is missing")
def test_the_whole_loop_from_first_launch_with_the_fields_as_they_come(qtbot, tmp_path, monkeypatch):
    boxes = record_message_boxes(monkeypatch, tmp_path / "settings")
    wd = tmp_path / "working_directory"
    shutil.copytree(SAMPLE, wd / "photos")
    bundled_before = tree_digest(BUNDLED_MODEL)
    photos = [p.name for p in list_images(wd / "photos")]

    window = open_window(qtbot, wd)
    c = window.controls
    assert c.model.text() == str(BUNDLED_MODEL)
    assert c.photos.text() == str(wd / "photos") and c.photo.text() == str(wd / "photos" / photos[0])
    assert c.epochs.value() == TrainSettings().epochs == 40 and c.rounds.value() == 1
    assert c.count.value() == SynthesisSettings().count == 200
    assert c.round_epochs.value() == RefineSettings().epochs and c.round_count.value() == RefineSettings().synthetic_count
    c.epochs.setValue(1)  # the one change: short trainings
    c.round_epochs.setValue(1)

    # 1. Auto-segment photos: the pool fills, every photo has its mask.
    press(qtbot, window, AUTOSEG)
    assert boxes == []
    pool = WorkingDirectory(wd)
    auto = pool.read_index()
    assert len(auto) >= 20 and {r["origin"] for r in auto} == {"auto"}
    assert sorted(pool.pool_files()) == sorted(r["file"] for r in auto)
    assert sorted(p.name for p in (wd / "autoseg").iterdir()) == sorted(
        f"{p[:-4]}{suffix}" for p in photos for suffix in ("_mask.png", "_labels.tif"))
    assert window.pool.count.text() == f"{len(auto)} objects in the pool"

    # 2. Create synthetic data: as many images as the field says, each with its mask.
    press(qtbot, window, SYNTHESIZE)
    assert boxes == []
    images = sorted(p.name for p in (wd / "synthetic" / "images").iterdir())
    assert len(images) == 200 and images == sorted(p.name for p in (wd / "synthetic" / "masks").iterdir())

    # 3. Train, with the bundled model in the Model field: a copy in the
    # working directory is trained; the bundled model does not change.
    press(qtbot, window, TRAIN)
    assert boxes == [], boxes
    log = window.log_view.toPlainText()
    assert "Train: finished." in log and "starts from a copy of it" in log
    model = wd / "model"
    assert c.model.text() == str(model) and (model / "model.keras").is_file()
    assert len(rows(model / "history.csv")) == 26  # the bundled model's 25 epochs and one more
    assert [e for e, _ in window.training.epochs][-1] == 26
    assert tree_digest(BUNDLED_MODEL) == bundled_before

    # 4. Segment the photo in the field: results on disk, the Review tab shows it.
    press(qtbot, window, SEGMENT)
    assert boxes == []
    segmented = wd / "segmented"
    stem = photos[0][:-4]
    for name in (f"{stem}_mask.png", f"{stem}_labels.tif", f"{stem}_overlay.png", "objects.csv"):
        assert (segmented / name).is_file(), name
    session = window.review.session
    assert window.tabs.currentWidget() is window.review and session is not None
    assert session.object_count >= 10

    # 5. Fill background: a click on the open background.
    window.review.fill_button.click()
    row, col = next((r, k) for r in range(0, 384, 7) for k in range(0, 512, 7)
                    if session.class_mask[r, k] == 0)
    click_pixel(qtbot, window, row, col)
    status = window.review.status.text()
    assert status.startswith(("Filled", "No closed contour")), status

    # 6. Pick objects: two clicks on two objects.
    window.review.pick_button.click()
    assert window.review.tool == PICK
    ids = sorted(range(1, session.object_count + 1), key=lambda i: -int(np.sum(session.labels == i)))[:2]
    for oid in ids:
        r, k, patch = session.object_patch(oid)
        rr, kk = np.argwhere(patch)[len(np.argwhere(patch)) // 2]
        click_pixel(qtbot, window, r + rr, k + kk)
    assert window.review.view.picked_ids() == sorted(ids)

    # 7. Save picked to pool: each is added, or recognised as already pooled.
    before_save = len(pool.read_index())
    with qtbot.waitSignal(window.runner.stopped, timeout=60_000):
        qtbot.mouseClick(window.review.save_button, Qt.LeftButton)
    assert boxes == []
    picked = [r for r in pool.read_index() if r["origin"] == "picked"]
    status = window.review.status.text()
    assert status.startswith("Saved") and len(pool.read_index()) == before_save + len(picked)
    assert len(picked) <= 2
    if len(picked) < 2:
        assert "already in the pool from this photo" in status

    # 8. Undo after the save: the saved picks do not come back, the pool stays.
    pool_before_undo = tree_digest(wd / "objects")
    window.undo_action.trigger()
    assert window.review.view.picked_ids() == [] and not window.review.save_button.isEnabled()
    assert tree_digest(wd / "objects") == pool_before_undo

    # 9. Improve model, one round: refined objects, a retrained model, the photos segmented again.
    history_before = len(rows(model / "history.csv"))
    press(qtbot, window, REFINE)
    assert boxes == [], boxes
    assert "Improve model: finished." in window.log_view.toPlainText()
    assert c.model.text() == str(model)
    assert {r["origin"] for r in pool.read_index()} >= {"auto", "refined"}
    assert len(rows(model / "history.csv")) == history_before + 1
    assert {r["image"] for r in rows(segmented / "objects.csv")} == set(photos)
    assert not [p for p in wd.iterdir() if p.name.startswith(".")]  # no staging left behind

    # 10. Segment all photos: the Results tab shows every photo.
    press(qtbot, window, SEGMENT_ALL)
    assert boxes == []
    table = rows(segmented / "objects.csv")
    assert {r["image"] for r in table} == set(photos)
    assert window.results.row_count == len(table) and window.results.summary.model().rowCount() == len(photos)

    # 11. Scale: a typed pixel size is stored, shown, and handed to the next segmentation.
    c.calibration.size.setText("0.5")
    c.calibration.unit.setCurrentText("µm")
    c.calibration.set_button.click()
    assert boxes == []
    assert (wd / "calibration.json").is_file()
    assert "0.5 µm" in window.calibration.status_label.text()
    assert window.calibration.segment_values()["calibration"].pixel_size == 0.5
    assert window.calibration.segment_values()["calibration"].unit == "µm"
    assert tree_digest(BUNDLED_MODEL) == bundled_before
    assert all(b.isEnabled() for b in c.buttons.values())
