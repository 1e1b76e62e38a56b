"""The main window, clicked through on tiny data: fields and their
validation, every stage button, progress, cancel, errors, closing during a
stage, remembered settings. Message boxes are recorded, never shown."""

import threading
import time
from pathlib import Path

import pytest
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QDialog, QMessageBox

from core.errors import UserInputError
from core.imageio import write_image
from core.workdir import WorkingDirectory
from gui import dialogs
from gui.controls import AUTOSEG, SEGMENT, SYNTHESIZE, TRAIN
from gui.settings import SETTINGS_DIR_VARIABLE
from helpers import open_window


class Boxes:
    """Records message boxes; ``answers`` feeds QMessageBox.question."""

    def __init__(self) -> None:
        self.shown: list[tuple[str, str, str]] = []
        self.answers: list = []

    def texts(self, kind: str | None = None) -> list[str]:
        return [text for k, _t, text in self.shown if kind is None or k == kind]


@pytest.fixture
def boxes(monkeypatch):
    rec = Boxes()
    for kind in ("information", "warning", "critical"):
        def show(parent, title, text, *args, _kind=kind, **kwargs):
            rec.shown.append((_kind, title, text))
            return QMessageBox.Ok
        monkeypatch.setattr(QMessageBox, kind, staticmethod(show))

    def question(parent, title, text, *args, **kwargs):
        rec.shown.append(("question", title, text))
        return rec.answers.pop(0) if rec.answers else QMessageBox.Yes
    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return rec


@pytest.fixture
def settings_dir(tmp_path, monkeypatch):
    folder = tmp_path / "settings"
    monkeypatch.setenv(SETTINGS_DIR_VARIABLE, str(folder))
    return folder


@pytest.fixture
def window(qtbot, tmp_path, settings_dir, boxes):
    w = open_window(qtbot, tmp_path / "wd")
    yield w
    if w.runner.running:
        w.runner.cancel()
        qtbot.waitUntil(lambda: not w.runner.running, timeout=30000)


def run(qtbot, window, name, fn, *args, timeout=30000, **kwargs):
    with qtbot.waitSignal(window.runner.stopped, timeout=timeout):
        assert window.run_job(name, fn, *args, **kwargs)


def press(qtbot, window, stage, timeout=60000):
    with qtbot.waitSignal(window.runner.stopped, timeout=timeout):
        qtbot.mouseClick(window.controls.buttons[stage], Qt.LeftButton)


def write_photos(folder, count=2, size=(160, 200)):
    from synthetic.scenes import render_particle_scene

    for i in range(count):
        image, _ = render_particle_scene(size, count=8, polarity="dark", seed=i)
        write_image(folder / f"photo_{i}.png", image)
    return folder


def log_text(window) -> str:
    return window.log_view.toPlainText()


# -- fields, validation, settings ---------------------------------------------------
def test_opens_on_the_workdir_and_remembers_fields_and_geometry(qtbot, tmp_path, settings_dir, boxes):
    w = open_window(qtbot, tmp_path / "wd")
    assert w.controls.workdir.text() == str((tmp_path / "wd").resolve())
    assert w.tabs.count() == 4 and w.tabs.tabText(3) == "Results"
    w.controls.photos.set_text(str(tmp_path / "photos"))
    w.controls.epochs.setValue(7)
    w.controls.source_ccd.setChecked(True)
    w.resize(1100, 720)
    w.tabs.setCurrentIndex(2)
    w.close()
    assert list(settings_dir.rglob("*.ini")), "settings must go to the test's folder"
    again = open_window(qtbot, tmp_path / "wd")
    assert again.controls.photos.text() == str(tmp_path / "photos")
    assert again.controls.epochs.value() == 7
    assert again.controls.source == "ccd"
    assert not again.controls.buttons[AUTOSEG].isEnabled()  # no photos in CCD mode
    assert (again.width(), again.height()) == (1100, 720)
    assert again.tabs.currentIndex() == 2


def test_empty_or_missing_folder_is_named_and_window_stays_usable(qtbot, window, boxes, tmp_path):
    window.controls.photos.set_text("")
    qtbot.mouseClick(window.controls.buttons[AUTOSEG], Qt.LeftButton)
    assert not window.runner.running
    assert "Photos folder" in boxes.texts("warning")[-1] and "empty" in boxes.texts("warning")[-1]
    window.controls.photos.set_text(str(tmp_path / "no such folder"))
    qtbot.mouseClick(window.controls.buttons[AUTOSEG], Qt.LeftButton)
    assert "Photos folder" in boxes.texts("warning")[-1] and "does not exist" in boxes.texts("warning")[-1]
    assert "border" in window.controls.photos.edit.styleSheet()
    window.controls.model.set_text(str(tmp_path / "no model"))
    window.controls.photo.set_text(str(tmp_path))
    qtbot.mouseClick(window.controls.buttons[SEGMENT], Qt.LeftButton)
    assert "Model folder" in boxes.texts("warning")[-1]
    qtbot.mouseClick(window.controls.buttons[TRAIN], Qt.LeftButton)
    assert "Press Create synthetic data first" in boxes.texts("warning")[-1]
    assert "Photos folder" in log_text(window)
    # Still usable: a stage runs to the end afterwards.
    run(qtbot, window, "Quick", lambda progress: progress.update(1, 1, "ok"))
    assert "Quick: finished." in log_text(window)


# -- the worker ---------------------------------------------------------------------
def test_stage_work_runs_off_the_gui_thread_and_progress_reaches_100(qtbot, window):
    seen = {}
    done = []

    def stage(n, *, progress):
        seen["thread"] = threading.current_thread()
        for i in range(n + 1):
            progress.update(i, n, f"item {i}")
            time.sleep(0.01)
        progress.log("all items done")
        return "result"

    run(qtbot, window, "Counting", stage, 5, on_done=done.append)
    assert seen["thread"] is not threading.main_thread()
    assert done == ["result"]
    assert window.progress.maximum() == 5 and window.progress.value() == 5
    assert window.progress.text_shown() == "Counting: done"
    assert "all items done" in log_text(window) and "Counting: finished." in log_text(window)
    assert window.controls.buttons[AUTOSEG].isEnabled() and not window.cancel_button.isEnabled()


def test_progress_text_shows_count_and_eta(qtbot, window):
    shown = []

    def stage(*, progress):
        for i in range(6):
            progress.update(i, 10, "frames")
            time.sleep(0.15)
        shown.append(None)

    window.progress.valueChanged.connect(lambda _v: shown.append(window.progress.text_shown()))
    run(qtbot, window, "Slow", stage)
    assert any("Slow: 5/10 (50 %)" in t and "ETA" in t for t in shown if t), shown


def test_buttons_disabled_while_running_and_cancel_stops_cleanly(qtbot, window):
    state = {}

    def endless(*, progress):
        i = 0
        while not progress.cancelled and i < 2000:
            progress.update(i, 2000, "working")
            time.sleep(0.005)
            i += 1
        state["stopped_at"] = i
        return None

    with qtbot.waitSignal(window.runner.stopped, timeout=20000):
        window.run_job("Endless", endless)
        qtbot.waitUntil(lambda: window.progress.value() > 3, timeout=5000)
        assert all(not b.isEnabled() for b in window.controls.buttons.values())
        assert window.cancel_button.isEnabled()
        assert not window.start_stage(SYNTHESIZE)  # no second stage meanwhile
        qtbot.mouseClick(window.cancel_button, Qt.LeftButton)
    assert 0 < state["stopped_at"] < 2000
    assert "Endless: cancelling" in log_text(window) and "Endless: cancelled." in log_text(window)
    assert window.controls.buttons[TRAIN].isEnabled()


def test_user_mistake_and_program_fault_show_messages_and_keep_the_window(qtbot, window, boxes):
    def bad_input(*, progress):
        raise UserInputError("The photos folder holds no images: /x")

    def crash(*, progress):
        return 1 / 0

    run(qtbot, window, "Bad", bad_input)
    assert boxes.texts("warning") == ["The photos folder holds no images: /x"]
    assert window.progress.text_shown() == "Bad: stopped"
    run(qtbot, window, "Crash", crash)
    assert "unexpected error (ZeroDivisionError: division by zero)" in boxes.texts("critical")[-1]
    assert "Traceback" in log_text(window)
    run(qtbot, window, "Fine", lambda progress: progress.update(1, 1))
    assert window.progress.text_shown() == "Fine: done"


def test_a_missing_module_is_an_unexpected_error_with_its_traceback_in_the_log(qtbot, window, boxes):
    def needs_missing_module(*, progress):
        import training.no_such_module  # noqa: F401

    run(qtbot, window, "Broken", needs_missing_module)
    assert "No module named 'training.no_such_module'" in boxes.texts("critical")[-1]
    assert window.progress.text_shown() == "Broken: failed" and "Traceback" in log_text(window)


def test_synchronous_run_of_a_worker_for_scripts():
    from gui.workers import StageWorker

    got = []
    worker = StageWorker("Sync", lambda x, progress: x * 2, 21)
    worker.finished.connect(got.append)
    worker.run()
    assert got == [42] and worker.failure is None


# -- each stage button (training and segmentation: tests/test_gui_training.py) -----------
def test_autoseg_then_synthesize_buttons_fill_the_pool_and_the_training_set(qtbot, window, tmp_path, boxes):
    c = window.controls
    c.photos.set_text(str(write_photos(tmp_path / "photos")))
    press(qtbot, window, AUTOSEG)
    assert boxes.shown == []
    assert window.progress.value() == window.progress.maximum() > 0
    wd = WorkingDirectory(c.workdir.text())
    n = len(wd.pool_files())
    assert n > 0 and {r["origin"] for r in wd.read_index()} == {"auto"}
    assert window.tabs.currentWidget() is window.pool and window.pool.model.rowCount() == n
    c.count.setValue(3)
    c.size.setValue(64)
    assert c.objects.text() == "auto"
    press(qtbot, window, SYNTHESIZE)
    assert boxes.shown == []
    assert len(list(wd.synthetic_images.iterdir())) == 3 and len(list(wd.synthetic_masks.iterdir())) == 3
    assert window.pool.mode == "synthetic" and window.pool.model.rowCount() == 3
    assert window.progress.text_shown() == "Create synthetic data: done"


def test_ccd_dialog_lists_every_simulator_setting(qtbot, window, monkeypatch):
    import dataclasses

    from synthetic import CCDSettings

    dialog = dialogs.DataclassDialog(CCDSettings, {"count": 3}, title="t")
    qtbot.addWidget(dialog)
    assert set(dialog.edits) == {f.name for f in dataclasses.fields(CCDSettings)}
    assert dialog.edits["count"].text() == "3"
    assert "Number of frames" in dialog.edits["count"].toolTip()
    dialog.edits["readout_noise_range"].setText("1, 2")
    assert dialog.values()["readout_noise_range"] == (1.0, 2.0)
    dialog.edits["glow_probability"].setText("lots")
    with pytest.raises(ValueError, match="glow probability: expected a number"):
        dialog.values()


def accept_ccd_dialog(monkeypatch, edits=None):
    def exec_(self):
        for name, text in (edits or {}).items():
            self.edits[name].setText(text)
        return QDialog.Accepted
    monkeypatch.setattr(dialogs.DataclassDialog, "exec_", exec_)


def test_simulated_ccd_frames_are_written_and_previewed(qtbot, window, monkeypatch, boxes):
    c = window.controls
    c.source_ccd.setChecked(True)
    c.count.setValue(3)
    c.size.setValue(32)
    accept_ccd_dialog(monkeypatch, {"hot_pixel_density": "0.001"})
    press(qtbot, window, SYNTHESIZE)
    assert boxes.shown == []
    out = c.training_data_dir()
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"ccd_0000{i}.tif" for i in range(3)]
    assert len(list((out / "masks").iterdir())) == 3
    assert window.progress.text_shown() == "Simulate CCD frames: done"
    assert window.pool.mode == "ccd" and window.pool.model.rowCount() == 3
    assert window.settings.value("ccd/hot_pixel_density") == "0.001"


def test_match_my_frames_measures_them_and_simulates_frames_like_them(qtbot, window, monkeypatch, boxes,
                                                                      tmp_path):
    """The user's path: CCD source, Simulate CCD frames…, Match my frames…,
    his folder of FITS frames; the dialog comes back filled with what was
    measured, OK simulates frames of his detector."""
    import json

    import numpy as np
    from astropy.io import fits
    from other_detector import PEDESTAL, other_frame

    frames = tmp_path / "my_frames"
    frames.mkdir()
    for i in range(3):
        fits.PrimaryHDU(other_frame(np.random.default_rng(i), 128)[0].astype(np.uint16)).writeto(
            frames / f"run{i}.fits")
    c = window.controls
    c.source_ccd.setChecked(True)
    c.count.setValue(2)
    c.size.setValue(64)
    shown = []

    def exec_(self):
        shown.append({name: edit.text() for name, edit in self.edits.items()})
        if len(shown) == 1:
            assert self.extra_button is not None and self.extra_button.text() == "Match my frames…"
            return dialogs.EXTRA_CHOSEN
        return QDialog.Accepted
    monkeypatch.setattr(dialogs.DataclassDialog, "exec_", exec_)
    monkeypatch.setattr(dialogs, "choose_folder", lambda parent, title: str(frames))
    with qtbot.waitSignal(window.runner.stopped, timeout=60000):  # measuring
        qtbot.mouseClick(c.buttons[SYNTHESIZE], Qt.LeftButton)
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=10000)  # the dialog again, filled in
    qtbot.waitUntil(lambda: not window.runner.running and window.progress.text_shown()
                    == "Simulate CCD frames: done", timeout=60000)
    assert boxes.shown == []
    assert shown[1]["glow_side"] == "left" and shown[0]["glow_side"] == "any"
    assert float(shown[1]["pedestal_adu"]) == pytest.approx(PEDESTAL, abs=3)
    wd = Path(c.workdir.text())
    assert json.loads((wd / "ccd_detector.json").read_text())["settings"]["glow_band_share"] == 1.0
    simulation = json.loads((c.training_data_dir() / "simulation.json").read_text())
    assert simulation["settings"]["glow_side"] == "left" and simulation["frames_written"] == 2


def test_match_my_frames_on_a_folder_of_unreadable_frames_changes_nothing(qtbot, window, monkeypatch, boxes,
                                                                           tmp_path):
    frames = tmp_path / "broken_frames"
    frames.mkdir()
    (frames / "a.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    c = window.controls
    c.source_ccd.setChecked(True)
    shown = []

    def exec_(self):
        shown.append(1)
        return dialogs.EXTRA_CHOSEN
    monkeypatch.setattr(dialogs.DataclassDialog, "exec_", exec_)
    monkeypatch.setattr(dialogs, "choose_folder", lambda parent, title: str(frames))
    before = {k: window.settings.value(k) for k in window.settings.allKeys()}
    with qtbot.waitSignal(window.runner.stopped, timeout=60000):
        qtbot.mouseClick(c.buttons[SYNTHESIZE], Qt.LeftButton)
    qtbot.wait(200)
    assert len(boxes.shown) == 1 and "could be measured" in boxes.shown[0][2]
    assert shown == [1]  # the settings dialog is not opened again
    assert {k: window.settings.value(k) for k in window.settings.allKeys()} == before
    assert not (Path(c.workdir.text()) / "ccd_detector.json").exists()
    monkeypatch.setattr(dialogs, "choose_folder", lambda parent, title: "")  # the user closes the folder chooser
    assert not window.start_stage(SYNTHESIZE) and not window.runner.running


def test_cancelling_a_simulation_keeps_the_earlier_frames_as_they_were(qtbot, window, monkeypatch):
    from helpers import tree_digest
    from synthetic import CCDSettings, run_simulate_ccd

    c = window.controls
    c.source_ccd.setChecked(True)
    out = c.training_data_dir()
    run_simulate_ccd(out, settings=CCDSettings(count=4, size=64, seed=7))
    before = tree_digest(out)
    c.count.setValue(5000)
    c.size.setValue(64)
    accept_ccd_dialog(monkeypatch)
    with qtbot.waitSignal(window.runner.stopped, timeout=30000):
        qtbot.mouseClick(c.buttons[SYNTHESIZE], Qt.LeftButton)
        qtbot.waitUntil(lambda: window.progress.value() >= 6, timeout=20000)
        window.cancel_stage()
    assert tree_digest(out) == before  # the earlier 4 frames, none of the new ones
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    assert "cancelled" in log_text(window).lower()


def test_closing_during_a_stage_asks_cancels_and_waits(qtbot, window, boxes):
    state = {"cancelled": False}

    def long_stage(*, progress):
        for i in range(3000):
            if progress.cancelled:
                state["cancelled"] = True
                time.sleep(0.2)  # a stage finishing its current item
                return None
            progress.update(i, 3000)
            time.sleep(0.005)

    window.run_job("Long", long_stage)
    qtbot.waitUntil(lambda: window.progress.value() > 2, timeout=5000)
    boxes.answers = [QMessageBox.No]
    window.close()
    assert window.isVisible() and window.runner.running and not state["cancelled"]
    boxes.answers = [QMessageBox.Yes]
    window.close()
    assert window.isVisible()  # waits for the stage to stop
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10000)
    assert state["cancelled"] and not window.runner.running
    assert [k for k, *_ in boxes.shown] == ["question", "question"]


def test_progress_text_shows_a_single_percent_sign(qtbot):
    from gui.progress_bar import StageProgressBar

    bar = StageProgressBar()
    qtbot.addWidget(bar)
    bar.setRange(0, 100)
    bar.setValue(3)
    bar._set_text("Stage: 3/100 (3 %) %p")
    assert "%%" not in bar.text()
    assert bar.text().replace("\u200b", "") == "Stage: 3/100 (3 %) %p"


def test_a_photos_folder_without_photos_is_marked_like_a_missing_one(qtbot, window, boxes, tmp_path):
    empty = tmp_path / "empty photos"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos here")
    window.controls.photos.set_text(str(empty))
    qtbot.mouseClick(window.controls.buttons[AUTOSEG], Qt.LeftButton)
    assert not window.runner.running
    assert "holds no images" in boxes.texts("warning")[-1]
    assert "border" in window.controls.photos.edit.styleSheet()


def test_keyboard_focus_leaves_the_controls_while_a_stage_runs(qtbot, window):
    window.activateWindow()
    window.controls.epochs.setFocus()
    release = threading.Event()
    with qtbot.waitSignal(window.runner.stopped, timeout=10000):
        window.run_job("Busy", lambda progress: release.wait(5))
        qtbot.wait(50)
        focused = window.focusWidget()
        assert focused is not window.controls.epochs and not window.controls.isAncestorOf(focused)
        release.set()


def test_fits_amplifiers_are_photos_in_the_window(qtbot, window, boxes, tmp_path):
    """A folder of two-amplifier FITS frames: Auto-segment photos handles
    every amplifier, and the photo field takes one unit by its name."""
    import json

    import numpy as np
    from astropy.io import fits

    from core.gray import to_gray
    from synthetic.scenes import render_particle_scene

    frames = tmp_path / "frames"
    frames.mkdir()
    units = [(8800 + to_gray(render_particle_scene((96, 128), count=6, polarity="dark", seed=s)[0]).astype(float) * 40)
             .astype(np.uint16) for s in (1, 2)]
    fits.HDUList([fits.PrimaryHDU(), *(fits.ImageHDU(u) for u in units)]).writeto(frames / "run.fits")
    window.controls.photos.set_text(str(frames))
    window.controls.photo.set_text(str(frames / "run.fits[2]"))
    assert window.controls.check(window.controls.photo, "photos") is None
    window.controls.photo.set_text(str(frames / "run.fits[7]"))
    assert "has no image in unit 7 (its image units: 1, 2)" in window.controls.check(window.controls.photo, "photos")
    press(qtbot, window, AUTOSEG)
    project = json.loads((tmp_path / "wd" / "project.json").read_text())
    assert sorted(project["stages"]["autoseg"]["photos"]) == ["run.fits[1]", "run.fits[2]"]
    assert (tmp_path / "wd" / "autoseg" / "run_hdu2_labels.tif").is_file()
    assert not boxes.texts("warning") and not boxes.texts("critical")


def test_label_my_frames_on_unreadable_frames_keeps_the_earlier_set(qtbot, window, monkeypatch, boxes, tmp_path):
    from helpers import tree_digest

    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    import numpy as np
    from astropy.io import fits

    fits.PrimaryHDU(np.random.default_rng(0).normal(1000, 5, (32, 32)).astype(np.float32)).writeto(good / "a.fits")
    (bad / "a.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    c = window.controls
    c.source_frames.setChecked(True)
    monkeypatch.setattr(dialogs, "choose_folder", lambda parent, title: str(good))
    press(qtbot, window, SYNTHESIZE)
    out = c.training_data_dir()
    assert out.name == "labelled_ccd" and (out / "masks" / "a.png").is_file()
    before = tree_digest(out)
    monkeypatch.setattr(dialogs, "choose_folder", lambda parent, title: str(bad))
    press(qtbot, window, SYNTHESIZE)
    assert len(boxes.shown) == 1 and "could be labelled" in boxes.shown[0][2]
    assert tree_digest(out) == before
