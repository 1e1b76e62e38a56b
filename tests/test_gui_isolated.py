"""Stages that load TensorFlow run in a child process so the window never
freezes: progress, log, per-epoch metrics, cancel and every kind of failure
must come back exactly as from a thread.

The stage functions below are module-level so the child can import them;
this module imports no Qt at the top to keep the child light."""

import os
import time

import pytest

from core.errors import UserInputError
from core.progress import Progress


def child_stage(n, *, progress):
    for i in range(n + 1):
        progress.update(i, n, f"step {i}")
    progress.log("hello from the child")
    progress.epoch_end(1, {"loss": 0.5, "val_loss": 0.4, "val_iou_grain": 0.7})
    return {"pid": os.getpid()}


def child_until_cancelled(*, progress):
    for i in range(6000):
        if progress.cancelled:
            return {"stopped_at": i}
        progress.update(i, 6000)
        time.sleep(0.005)
    return {"stopped_at": None}


def child_with_sub_stages(*, progress):
    """A composite stage: its parts poll their SubProgress, as pipeline and
    refine do."""
    from core.progress import SubProgress

    part = SubProgress(progress, 0.0, 1.0, "part")
    for i in range(6000):
        if part.cancelled:
            return {"stopped_at": i}
        part.update(i, 6000)
        time.sleep(0.005)
    return {"stopped_at": None}


def child_in_a_long_batch(marker, *, progress):
    """A stage inside one long step during which nothing is written (a
    training batch on a slow machine): it says so, and never polls."""
    progress.update(1, 2, "in a batch")
    progress.set_interruptible(True)
    time.sleep(60)
    open(marker, "w").close()  # never reached when ended on cancel


def child_writing_when_cancelled(marker, *, progress):
    """A stage that must finish what it writes: it polls, and is not ended."""
    for _ in range(600):
        if progress.cancelled:
            time.sleep(1.0)  # a last file takes a while
            open(marker, "w").close()
            return {"finished_writing": True}
        progress.update(1, 2, "working")
        time.sleep(0.01)
    return {"finished_writing": False}


def child_cancelled_between_steps(marker, *, progress):
    """A stage that sees the cancel at a point where nothing is being written
    (the end of a training batch) and would then take a while to unwind."""
    for _ in range(6000):
        if progress.cancelled:
            progress.wait_to_be_ended()
            time.sleep(5)  # unwinding: closing files, writing a last summary...
            open(marker, "w").close()
            return {"unwound": True}
        progress.update(1, 2, "between steps")
        time.sleep(0.01)
    return {"unwound": False}


def child_bad_input(*, progress):
    raise UserInputError("The model folder holds no model.keras: /m")


def child_missing_stage(*, progress):
    import evaluation.no_such_module  # noqa: F401


def child_dies(*, progress):
    progress.update(1, 2)
    os._exit(3)


class Recorder(Progress):
    def __init__(self):
        super().__init__()
        self.updates, self.epochs = [], []

    def on_update(self, done, total, message):
        self.updates.append((done, total, message))

    def epoch_end(self, epoch, metrics):
        self.epochs.append((epoch, metrics))


def tensorflow_loaded(*, progress):
    import sys

    return "tensorflow" in sys.modules


def tensorflow_loaded_where_needed(*, progress):
    return tensorflow_loaded(progress=progress)


tensorflow_loaded_where_needed.tensorflow_where_needed = True


def test_a_stage_that_loads_tensorflow_where_needed_starts_without_it():
    """Segment's child starts without TensorFlow (a model's kept conversion
    runs without it); every other stage's child loads it first."""
    from gui.isolated import run_in_child
    from gui.stages import segment_job

    assert run_in_child(tensorflow_loaded, (), {}, Recorder()) is True
    progress = Recorder()
    assert run_in_child(tensorflow_loaded_where_needed, (), {}, progress) is False
    assert not any("TensorFlow" in text for _, _, text in progress.updates)
    assert segment_job.tensorflow_where_needed


def test_child_runs_the_stage_and_relays_everything():
    from gui.isolated import run_in_child

    progress = Recorder()
    result = run_in_child(child_stage, (3,), {}, progress)
    assert result["pid"] != os.getpid()
    # The bar says what the child does before the stage's first count.
    assert progress.updates[0] == (0, 0, "loading TensorFlow")
    assert progress.updates[-1] == (3, 3, "step 3") and len(progress.updates) == 5
    assert progress.lines == ["hello from the child"]
    assert progress.epochs == [(1, {"loss": 0.5, "val_loss": 0.4, "val_iou_grain": 0.7})]


def test_cancel_reaches_the_sub_stages_of_a_child():
    from gui.isolated import run_in_child

    class Cancelling(Progress):
        def on_update(self, done, total, message):
            if done >= 20:  # SubProgress reports in thousandths
                self.cancel()

    assert run_in_child(child_with_sub_stages, (), {}, Cancelling())["stopped_at"] is not None


def test_cancel_ends_a_child_at_once_inside_a_step_that_can_be_stopped(tmp_path):
    """A training batch takes seconds on a small machine: Cancel does not
    wait for it when the child says nothing would be lost."""
    from core.errors import StageCancelled
    from gui.isolated import CANCEL_GRACE_S, run_in_child

    class CancelWhen(Progress):
        def __init__(self, message):
            super().__init__()
            self.wanted, self.at = message, None

        def on_update(self, done, total, message):
            if message == self.wanted and self.at is None:
                self.at = time.monotonic()
                self.cancel()

    progress = CancelWhen("in a batch")
    with pytest.raises(StageCancelled):
        run_in_child(child_in_a_long_batch, (str(tmp_path / "never"),), {}, progress)
    assert time.monotonic() - progress.at < CANCEL_GRACE_S + 1.5
    assert not (tmp_path / "never").exists()

    # A child that sees the cancel where nothing is being written is ended there, not unwound.
    progress = CancelWhen("between steps")
    with pytest.raises(StageCancelled):
        run_in_child(child_cancelled_between_steps, (str(tmp_path / "unwound"),), {}, progress)
    assert time.monotonic() - progress.at < CANCEL_GRACE_S + 1.5
    assert not (tmp_path / "unwound").exists()
    # The same stage in this process (the command line) unwinds as before.
    progress = CancelWhen("between steps")
    progress.cancel()
    t0 = time.monotonic()
    progress.wait_to_be_ended()
    assert time.monotonic() - t0 < 0.1

    # A child that is writing (not interruptible) finishes what it does.
    progress = CancelWhen("working")
    result = run_in_child(child_writing_when_cancelled, (str(tmp_path / "written"),), {}, progress)
    assert result == {"finished_writing": True} and (tmp_path / "written").exists()


def test_child_failures_are_raised_as_in_a_thread():
    from gui.isolated import ChildFailed, run_in_child

    with pytest.raises(UserInputError, match="no model.keras"):
        run_in_child(child_bad_input, (), {}, Progress())
    with pytest.raises(ChildFailed, match="No module named 'evaluation.no_such_module'"):
        run_in_child(child_missing_stage, (), {}, Progress())  # a broken installation: an unexpected error
    with pytest.raises(ChildFailed, match="exit status 3"):
        run_in_child(child_dies, (), {}, Progress())


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    from PyQt5.QtWidgets import QMessageBox

    from gui.main_window import MainWindow
    from gui.settings import SETTINGS_DIR_VARIABLE

    monkeypatch.setenv(SETTINGS_DIR_VARIABLE, str(tmp_path / "settings"))
    shown = []
    for kind in ("information", "warning", "critical"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(lambda *a, _k=kind, **k: shown.append((_k, a[2]))))
    w = MainWindow(workdir=str(tmp_path / "wd"))
    w.shown = shown
    qtbot.addWidget(w)
    w.show()
    return w


def test_window_runs_an_isolated_stage_with_progress_epochs_and_cancel(qtbot, window):
    results = []
    window.training.start(1)  # as the window does for a new training (the bundled model's curves go)
    with qtbot.waitSignal(window.runner.stopped, timeout=60000):
        window.run_job("Child", child_stage, 4, isolated=True, on_done=results.append)
    assert results[0]["pid"] != os.getpid()
    assert window.progress.value() == window.progress.maximum() == 4
    assert "hello from the child" in window.log_view.toPlainText()
    assert window.training.best_epoch == 1 and "grain" in window.training.iou_plot.series

    with qtbot.waitSignal(window.runner.stopped, timeout=60000):
        window.run_job("Long child", child_until_cancelled, isolated=True, on_done=results.append)
        qtbot.waitUntil(lambda: window.progress.value() > 5, timeout=30000)
        window.cancel_stage()
    assert results[1]["stopped_at"] is not None

    with qtbot.waitSignal(window.runner.stopped, timeout=60000):
        window.run_job("Broken", child_dies, isolated=True)
    assert window.shown[-1][0] == "critical" and "ended unexpectedly" in window.shown[-1][1]
    assert window.controls.buttons["train"].isEnabled()
