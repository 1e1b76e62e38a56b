"""Segment all photos, Improve model and the default model, from the window
for real: a tiny U-Net trained once for the module, every stage in its child
process, message boxes recorded instead of shown."""

import csv
import shutil

import pytest
from PyQt5.QtCore import Qt

from conftest import TINY_EPOCHS
from gui.controls import REFINE, SEGMENT, SEGMENT_ALL
from helpers import open_window, record_message_boxes


@pytest.fixture
def trained(tiny_project):
    """Two photos, a working directory with an auto-segmented pool and a
    tiny model trained on it (see conftest.tiny_project)."""
    return tiny_project


@pytest.fixture
def boxes(tmp_path, monkeypatch):
    return record_message_boxes(monkeypatch, tmp_path / "settings")


def press(qtbot, window, stage, timeout=180000):
    with qtbot.waitSignal(window.runner.stopped, timeout=timeout):
        qtbot.mouseClick(window.controls.buttons[stage], Qt.LeftButton)


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_segment_all_photos_in_micrometres_fills_the_results(qtbot, tmp_path, trained, boxes):
    window = open_window(qtbot, tmp_path / "wd")
    c = window.controls
    c.photos.set_text(str(trained / "photos"))
    c.model.set_text(str(trained / "model"))
    c.calibration.size.setText("0.5")
    c.calibration.unit.setCurrentText("µm")
    c.calibration.set_button.click()
    press(qtbot, window, SEGMENT_ALL)
    assert boxes == []
    out = tmp_path / "wd" / "segmented"
    rows = read_rows(out / "objects.csv")
    assert {r["image"] for r in rows} == {"p0.png", "p1.png"}  # the whole folder
    header = list(rows[0])
    assert "equivalent_diameter_um" in header and "area_um2" in header and "area_px" in header
    results = window.results
    assert window.tabs.currentWidget() is results and results.folder == out
    assert results.row_count == len(rows) > 0
    assert results.summary.model().rowCount() == 2
    assert results.histogram.picture is not None and (out / "size_histogram.png").is_file()
    # The table sorts numerically by a physical size.
    column = header.index("equivalent_diameter_um")
    results.table.sortByColumn(column, Qt.DescendingOrder)
    values = [float(results.proxy.index(i, column).data()) for i in range(results.row_count)]
    assert values == sorted(values, reverse=True)
    assert window.review.session is None  # a folder is not opened for review
    assert window.progress.text_shown() == "Segment folder: done"
    assert c.buttons[REFINE].isEnabled() and c.buttons[SEGMENT_ALL].isEnabled()


def test_first_launch_segments_with_the_default_model_and_the_stored_scale(qtbot, tmp_path, trained,
                                                                          boxes, monkeypatch):
    from measurement import calibration_from_pixel_size, save_calibration

    monkeypatch.setattr("core.model_folder.BUNDLED_MODEL", trained / "model")
    wd = tmp_path / "working_directory"
    shutil.copytree(trained / "photos", wd / "photos")
    save_calibration(wd, calibration_from_pixel_size(250, "nm"))
    window = open_window(qtbot, wd)
    c = window.controls
    assert c.model.text() == str(trained / "model")
    assert c.photos.text() == str(wd / "photos") and c.photo.text() == str(wd / "photos" / "p0.png")
    assert c.calibration.shown.text() == "1 px = 250 nm"
    press(qtbot, window, SEGMENT)
    assert boxes == []
    out = wd / "segmented"
    rows = read_rows(out / "objects.csv")
    assert rows and {r["image"] for r in rows} == {"p0.png"}
    assert "equivalent_diameter_nm" in rows[0]
    assert window.review.session is not None and window.review.session.shape == (96, 128)
    assert window.results.row_count == len(rows)


def test_improve_model_runs_a_real_round_on_a_copy_of_the_bundled_model(qtbot, tmp_path, trained, boxes,
                                                                       monkeypatch):
    bundled = tmp_path / "checkpoints"
    shutil.copytree(trained / "model", bundled)
    monkeypatch.setattr("core.model_folder.BUNDLED_MODEL", bundled)
    wd = tmp_path / "wd"
    shutil.copytree(trained / "wd", wd)
    history_before = (bundled / "history.csv").read_text()
    window = open_window(qtbot, wd)
    c = window.controls
    assert c.model.text() == str(bundled)
    assert "adds the objects it is sure of to the pool" in c.buttons[REFINE].toolTip()
    c.photos.set_text(str(trained / "photos"))
    c.round_count.setValue(8)
    c.size.setValue(64)
    c.round_epochs.setValue(1)
    c.rounds.setValue(1)
    with qtbot.waitSignal(window.runner.stopped, timeout=180000):
        qtbot.mouseClick(c.buttons[REFINE], Qt.LeftButton)
        assert window.runner.running and window.cancel_button.isEnabled()
        assert not any(b.isEnabled() for b in c.buttons.values())
        assert not window.start_stage(SEGMENT_ALL)  # nothing else meanwhile
    assert boxes == []
    log = window.log_view.toPlainText()
    assert "round 1:" in log and "Improve model: finished." in log
    # The bundled model stays as shipped; the copy in the working directory was trained on.
    assert c.model.text() == str(wd / "model")
    assert (bundled / "history.csv").read_text() == history_before
    assert len(read_rows(wd / "model" / "history.csv")) == TINY_EPOCHS + 1
    # Live curves from the training's epoch lines, after the model's earlier epochs.
    assert [e for e, _ in window.training.epochs] == list(range(1, TINY_EPOCHS + 2))
    assert "val_loss" in window.training.loss_plot.series
    assert "1 self-training round(s)" in window.training.state.text()
    assert window.results.folder == wd / "segmented" and window.results.row_count > 0
    assert all(b.isEnabled() for b in c.buttons.values())


def test_improve_model_cancelled_mid_round_changes_nothing(qtbot, tmp_path, trained, boxes):
    from helpers import tree_digest

    wd, model = tmp_path / "wd", tmp_path / "model"
    shutil.copytree(trained / "wd", wd)
    shutil.copytree(trained / "model", model)
    before = (tree_digest(wd), tree_digest(model))
    window = open_window(qtbot, wd)
    c = window.controls
    c.photos.set_text(str(trained / "photos"))
    c.model.set_text(str(model))
    c.round_count.setValue(8)
    c.size.setValue(64)
    c.round_epochs.setValue(500)  # far more than the test waits for
    with qtbot.waitSignal(window.runner.stopped, timeout=180000):
        c.buttons[REFINE].click()
        qtbot.waitUntil(lambda: len(window.training.epochs) >= 5, timeout=120000)  # training has begun
        window.cancel_stage()
    assert boxes == []
    assert "Improve model: cancelled." in window.log_view.toPlainText()
    assert (tree_digest(wd), tree_digest(model)) == before  # the round was dropped, staging included
    assert c.buttons[REFINE].isEnabled()


def test_no_model_or_an_empty_pool_is_explained_and_the_window_stays_usable(qtbot, tmp_path, trained, boxes):
    (tmp_path / "empty model").mkdir()
    model = tmp_path / "model"
    shutil.copytree(trained / "model", model)
    window = open_window(qtbot, tmp_path / "fresh wd")
    c = window.controls
    c.photos.set_text(str(trained / "photos"))
    c.model.set_text(str(tmp_path / "empty model"))
    for stage in (SEGMENT_ALL, REFINE):
        qtbot.mouseClick(c.buttons[stage], Qt.LeftButton)
        assert not window.runner.running
        assert boxes[-1][0] == "warning" and boxes[-1][1].startswith("Model folder:")
        assert "no trained model" in boxes[-1][1]
    assert len(boxes) == 2
    c.model.set_text(str(model))
    press(qtbot, window, REFINE)  # the working directory has no object pool yet
    assert len(boxes) == 3 and "object pool" in boxes[-1][1] and "empty" in boxes[-1][1]
    assert window.progress.text_shown() == "Improve model: stopped"
    assert "object pool" in window.training.state.text()
    assert len(read_rows(model / "history.csv")) == TINY_EPOCHS  # untouched
    assert all(b.isEnabled() for b in c.buttons.values())
    with qtbot.waitSignal(window.runner.stopped, timeout=10000):
        window.run_job("Quick", lambda progress: progress.update(1, 1))
    assert window.progress.text_shown() == "Quick: done"


def test_folder_actions_wait_while_another_stage_runs(qtbot, tmp_path, boxes):
    import threading

    window = open_window(qtbot, tmp_path / "wd")
    release = threading.Event()
    with qtbot.waitSignal(window.runner.stopped, timeout=10000):
        window.run_job("Busy", lambda progress: release.wait(5))
        c = window.controls
        assert not c.buttons[SEGMENT_ALL].isEnabled() and not c.buttons[REFINE].isEnabled()
        assert not c.calibration.measure_button.isEnabled()
        assert not window.start_stage(REFINE)
        release.set()
    assert c.buttons[SEGMENT_ALL].isEnabled() and c.buttons[REFINE].isEnabled()
    assert c.calibration.measure_button.isEnabled()
