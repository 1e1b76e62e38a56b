"""A stage that fails or is cancelled in the window changes nothing.

Each test starts from a working directory with earlier results in it,
breaks the stage on purpose mid-way (Cancel, a fault, files that cannot be
read) and checks, file by file, that the working directory (and the model
folder) are exactly as they were.
"""

import shutil
import time

import pytest
from PyQt5.QtCore import Qt

from conftest import TINY_SYNTHETIC
from core.imageio import read_image, write_image
from gui.controls import AUTOSEG, SEGMENT_ALL, SYNTHESIZE, TRAIN
from helpers import open_window, record_message_boxes, tree_digest


@pytest.fixture
def boxes(tmp_path, monkeypatch):
    return record_message_boxes(monkeypatch, tmp_path / "settings")


@pytest.fixture(scope="module")
def segmented_project(tmp_path_factory, tiny_project):
    """The tiny project with eight photos, segmented once, so every folder holds results."""
    from inference import run_segment

    root = tmp_path_factory.mktemp("segmented_project")
    shutil.copytree(tiny_project / "wd", root / "wd")
    shutil.copytree(tiny_project / "model", root / "model")
    photos = root / "photos"
    photos.mkdir()
    for i in range(8):  # enough photos for a stage to be caught mid-way
        write_image(photos / f"p{i}.png", read_image(tiny_project / "photos" / f"p{i % 2}.png"))
    run_segment(root / "model", photos, root / "wd" / "segmented")
    return root


@pytest.fixture
def project(tmp_path, segmented_project):
    """A fresh copy for one test."""
    for name in ("wd", "model", "photos"):
        shutil.copytree(segmented_project / name, tmp_path / name)
    return tmp_path


def start(window, stage):
    window.controls.buttons[stage].click()
    assert window.runner.running


def cancel_when(qtbot, window, condition, timeout=120_000):
    with qtbot.waitSignal(window.runner.stopped, timeout=timeout):
        qtbot.waitUntil(condition, timeout=timeout)
        window.cancel_stage()


def test_cancelled_auto_segmentation_changes_nothing(qtbot, project, boxes, monkeypatch):
    import segmentation.autoseg as autoseg

    real = autoseg.find_objects

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(autoseg, "find_objects", slow)
    before = tree_digest(project / "wd")
    window = open_window(qtbot, project / "wd")
    window.controls.photos.set_text(str(project / "photos"))
    start(window, AUTOSEG)
    cancel_when(qtbot, window, lambda: "p3.png:" in window.log_view.toPlainText())
    assert boxes == []
    assert "Auto-segment: cancelled." in window.log_view.toPlainText()
    assert "your files stay as they were" in window.log_view.toPlainText()
    assert tree_digest(project / "wd") == before


def test_auto_segmentation_of_unreadable_photos_changes_nothing(qtbot, project, boxes):
    bad = project / "bad photos"
    bad.mkdir()
    for i in range(3):
        (bad / f"broken{i}.png").write_bytes(b"not a picture at all")
    before = tree_digest(project / "wd")
    window = open_window(qtbot, project / "wd")
    window.controls.photos.set_text(str(bad))
    with qtbot.waitSignal(window.runner.stopped, timeout=60_000):
        window.controls.buttons[AUTOSEG].click()
    assert len(boxes) == 1 and "None of the 3 photo(s)" in boxes[0][1]
    assert tree_digest(project / "wd") == before


def test_cancelled_synthesis_keeps_the_earlier_synthetic_images(qtbot, project, boxes):
    before = tree_digest(project / "wd")
    window = open_window(qtbot, project / "wd")
    c = window.controls
    c.count.setValue(5000)
    c.size.setValue(64)
    start(window, SYNTHESIZE)
    cancel_when(qtbot, window, lambda: "/5000" in window.progress.text_shown())
    assert boxes == []
    assert tree_digest(project / "wd") == before
    assert len(list((project / "wd" / "synthetic" / "images").iterdir())) == TINY_SYNTHETIC


def test_training_cancelled_before_its_first_epoch_leaves_no_copy_of_the_bundled_model(
        qtbot, project, boxes, monkeypatch):
    from synthetic import SynthesisSettings, run_synthesize

    bundled = project / "bundled"
    shutil.copytree(project / "model", bundled)
    monkeypatch.setattr("core.model_folder.BUNDLED_MODEL", bundled)
    run_synthesize(project / "wd", settings=SynthesisSettings(count=400, size=64, object_diameter=16))
    before, bundled_before = tree_digest(project / "wd"), tree_digest(bundled)
    window = open_window(qtbot, project / "wd")
    c = window.controls
    assert c.model.text() == str(bundled)
    c.epochs.setValue(50)
    start(window, TRAIN)
    assert c.model.text() == str(project / "wd" / "model")
    cancel_when(qtbot, window, lambda: "batch" in window.progress.text_shown())
    assert boxes == []
    log = window.log_view.toPlainText()
    assert "Train: cancelled." in log and "Nothing was trained, so the Model folder is" in log
    assert "No epoch was completed, so nothing was saved." in window.training.state.text()
    assert c.model.text() == str(bundled)
    assert tree_digest(project / "wd") == before and tree_digest(bundled) == bundled_before


def test_cancelled_segmentation_of_the_folder_keeps_the_earlier_results(qtbot, project, boxes):
    before = tree_digest(project / "wd")
    window = open_window(qtbot, project / "wd")
    c = window.controls
    c.photos.set_text(str(project / "photos"))
    c.model.set_text(str(project / "model"))
    start(window, SEGMENT_ALL)
    cancel_when(qtbot, window, lambda: "p0.png:" in window.log_view.toPlainText())
    assert boxes == []
    assert "Segment folder: cancelled." in window.log_view.toPlainText()
    unfinished = project / "wd" / ".segmented.unfinished"
    kept = {p.parent.name for p in unfinished.glob("*/record.json")}
    assert "p0" in kept  # the photos done before the Cancel wait, hidden, for the next run
    after = {k: v for k, v in tree_digest(project / "wd").items() if not k.startswith(".segmented.unfinished")}
    assert after == before
    assert window.results.row_count > 0  # the earlier results are still shown


def test_a_larger_folder_is_segmented_on_worker_processes_and_resumed_after_cancel(qtbot, project, boxes):
    from inference.batch import FEW_PHOTOS

    photos = project / "photos"
    for i in range(8, FEW_PHOTOS + 3):
        shutil.copy(photos / f"p{i % 2}.png", photos / f"p{i}.png")
    before = tree_digest(project / "wd")
    window = open_window(qtbot, project / "wd")
    c = window.controls
    c.photos.set_text(str(photos))
    c.model.set_text(str(project / "model"))
    start(window, SEGMENT_ALL)
    cancel_when(qtbot, window, lambda: "objects (segmented at scale" in window.log_view.toPlainText(),
                timeout=240_000)
    log = window.log_view.toPlainText()
    assert boxes == [] and "Dask worker processes on this computer" in log and "Segment folder: cancelled." in log
    unfinished = project / "wd" / ".segmented.unfinished"
    kept = len(list(unfinished.glob("*/record.json")))
    after = {k: v for k, v in tree_digest(project / "wd").items() if not k.startswith(".segmented.unfinished")}
    assert kept >= 1 and after == before
    with qtbot.waitSignal(window.runner.stopped, timeout=300_000):
        c.buttons[SEGMENT_ALL].click()
    log = window.log_view.toPlainText()
    assert boxes == []
    assert f"{kept} of {FEW_PHOTOS + 3} photo(s) done before" in log
    assert window.results.row_count > 0 and not unfinished.exists()
    segmented = project / "wd" / "segmented"
    assert len(list(segmented.glob("p*_mask.png"))) == FEW_PHOTOS + 3


def test_segmenting_a_folder_of_unreadable_photos_keeps_the_earlier_results(qtbot, project, boxes):
    bad = project / "bad photos"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG but nothing after")
    before = tree_digest(project / "wd")
    window = open_window(qtbot, project / "wd")
    c = window.controls
    c.photos.set_text(str(bad))
    c.model.set_text(str(project / "model"))
    with qtbot.waitSignal(window.runner.stopped, timeout=120_000):
        c.buttons[SEGMENT_ALL].click()
    assert len(boxes) == 1 and "could be read" in boxes[0][1]
    assert tree_digest(project / "wd") == before


def test_a_fault_while_saving_picked_objects_leaves_the_pool_as_it_was(qtbot, project, boxes, monkeypatch):
    from gui.review import PICK
    from gui.stages import load_review

    window = open_window(qtbot, project / "wd")
    window.review.set_session(load_review(project / "photos" / "p0.png", project / "wd" / "segmented",
                                          project / "model"))
    session = window.review.session
    window.review.set_tool(PICK)
    view = window.review.view
    for oid in (1, 2):
        r, k, patch = session.object_patch(oid)
        qtbot.mouseClick(view.viewport(), Qt.LeftButton,
                         pos=view.viewport_pos_of(r + patch.shape[0] // 2, k + patch.shape[1] // 2))
    assert len(session.selected) == 2 and window.review.save_button.isEnabled()
    calls = []

    def write_then_fail(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return write_image(path, *args, **kwargs)

    # Auto-segmentation's objects of p0.png are not these: no duplicates to skip.
    import csv

    index = project / "wd" / "objects" / "index.csv"
    rows = [r for r in csv.DictReader(open(index, encoding="utf-8")) if r["source_image"] != "p0.png"]
    from core.workdir import WorkingDirectory

    WorkingDirectory(project / "wd").write_index(rows)
    before = tree_digest(project / "wd")
    monkeypatch.setattr("segmentation.pool.write_image", write_then_fail)
    with qtbot.waitSignal(window.runner.stopped, timeout=30_000):
        qtbot.mouseClick(window.review.save_button, Qt.LeftButton)
    assert len(boxes) == 1 and boxes[0][0] == "warning" and "no space left on the disk" in boxes[0][1]
    assert tree_digest(project / "wd") == before
    assert window.review.save_button.isEnabled()  # the picks are still there to save again


def test_a_stage_while_a_command_in_a_terminal_changes_the_same_folder_gets_one_message(qtbot, project, boxes):
    import subprocess
    import sys

    from conftest import ROOT

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]);"
         "from core.transaction import Transaction; tx = Transaction(sys.argv[2]).__enter__();"
         "tx.stage(sys.argv[2] + '/objects'); print('holding', flush=True); time.sleep(60)",
         str(ROOT), str(project / "wd")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        before = tree_digest(project / "wd")
        window = open_window(qtbot, project / "wd")
        window.controls.photos.set_text(str(project / "photos"))
        with qtbot.waitSignal(window.runner.stopped, timeout=60_000):
            window.controls.buttons[AUTOSEG].click()
        assert len(boxes) == 1 and "being changed by another run" in boxes[0][1]
        assert f"process {holder.pid}" in boxes[0][1]
        assert tree_digest(project / "wd") == before
        assert all(b.isEnabled() for b in window.controls.buttons.values() if b is not None)
    finally:
        holder.kill()
        holder.wait()


def test_segment_all_keeps_the_users_own_files_in_the_results_folder(qtbot, project, boxes):
    """A user keeps notes and links in <workdir>/segmented; the window's
    Segment all replaces only its own results there."""
    from helpers import exact_tree

    segmented = project / "wd" / "segmented"
    (segmented / ".my-notes.partial.txt").write_text("which photos were hard")
    (segmented / "this_folder").symlink_to(segmented)
    (segmented / "raw").symlink_to(project / "photos")
    users = [segmented / name for name in (".my-notes.partial.txt", "this_folder", "raw")]
    before = exact_tree(*users, project / "photos")
    window = open_window(qtbot, project / "wd")
    c = window.controls
    c.photos.set_text(str(project / "photos"))
    c.model.set_text(str(project / "model"))
    with qtbot.waitSignal(window.runner.stopped, timeout=300_000):
        c.buttons[SEGMENT_ALL].click()
    assert boxes == [] and window.results.row_count > 0
    assert exact_tree(*users, project / "photos") == before


def test_training_a_model_folder_another_run_is_training_is_refused_in_one_message(qtbot, project, boxes):
    import subprocess
    import sys

    from conftest import ROOT

    model = project / "model"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]);"
         "from core.transaction import hold\nwith hold(sys.argv[2]):\n print('held', flush=True); time.sleep(120)",
         str(ROOT), str(model)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = tree_digest(model)
        window = open_window(qtbot, project / "wd")
        window.controls.model.set_text(str(model))
        with qtbot.waitSignal(window.runner.stopped, timeout=120_000):
            window.controls.buttons[TRAIN].click()
        assert len(boxes) == 1 and "is being changed by another run" in boxes[0][1], boxes
        assert f"process {holder.pid}" in boxes[0][1]
        assert tree_digest(model) == before
    finally:
        holder.kill()
        holder.wait()
