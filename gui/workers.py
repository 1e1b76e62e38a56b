"""Running stage functions off the GUI thread.

A :class:`StageWorker` wraps any stage function ``fn(*args, progress=...,
**kwargs)`` and reports through Qt signals; a :class:`StageRunner` runs one
worker at a time in a ``QThread``. The stage itself knows nothing about Qt:
it receives a :class:`QtProgress`, the Qt flavour of
:class:`core.progress.Progress`.

Tests can run the same work synchronously by calling :meth:`StageWorker.run`
directly: the signals are then delivered at once, in the calling thread.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from PyQt5.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from core.errors import StageCancelled, UserInputError, describe_error, user_error_from
from core.progress import Progress
from gui.isolated import ChildFailed, run_in_child


@dataclass
class StageFailure:
    """Why a stage did not finish.

    ``kind`` is ``"input"`` (a user mistake, ``message`` says what to fix),
    ``"cancelled"`` or ``"error"`` (a program fault; ``details`` holds the
    traceback).
    """

    kind: str
    message: str
    details: str = ""


class QtProgress(Progress):
    """Progress that forwards to a worker's signals.

    Updates are throttled to one every ``min_interval`` seconds (first,
    last and total changes always pass) so that a stage reporting per pixel
    row cannot flood the GUI's event queue.
    """

    def __init__(self, worker: StageWorker, min_interval: float = 0.04) -> None:
        super().__init__()
        self._worker = worker
        self._min_interval = min_interval
        self._last_emit = 0.0
        self._last_total = None

    def on_update(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if (total == self._last_total and 0 < done < total
                and now - self._last_emit < self._min_interval):
            return
        self._last_emit, self._last_total = now, total
        self._worker.progress.emit(done, total, message)

    def on_log(self, text: str) -> None:
        self._worker.log.emit(text)

    def epoch_end(self, epoch: int, metrics: dict) -> None:
        """Per-epoch metrics from training (loss, val_loss, per-class IoU)."""
        self._worker.epoch.emit(int(epoch), dict(metrics))


class StageWorker(QObject):
    """Runs ``fn(*args, progress=<QtProgress>, **kwargs)`` once.

    With ``isolated=True`` the function runs in a child process (see
    :mod:`gui.isolated`), for stages that load TensorFlow; the worker
    thread then only relays its messages.

    Signals
    -------
    progress(done, total, message), log(text), epoch(epoch, metrics),
    finished(result), failed(StageFailure), done() (after either of the last two).
    """

    progress = pyqtSignal(int, int, str)
    log = pyqtSignal(str)
    epoch = pyqtSignal(int, object)
    finished = pyqtSignal(object)
    failed = pyqtSignal(object)
    done = pyqtSignal()

    def __init__(self, name: str, fn: Callable, *args, isolated: bool = False, **kwargs) -> None:
        super().__init__()
        self.name = name
        self.isolated = isolated
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.sink = QtProgress(self)
        self.result = None
        self.failure: StageFailure | None = None

    def cancel(self) -> None:
        self.sink.cancel()

    @property
    def cancelled(self) -> bool:
        return self.sink.cancelled

    @pyqtSlot()
    def run(self) -> None:
        try:
            if self.isolated:
                self.result = run_in_child(self.fn, self.args, self.kwargs, self.sink)
            else:
                self.result = self.fn(*self.args, progress=self.sink, **self.kwargs)
        except UserInputError as exc:
            self.failure = StageFailure("input", str(exc))
        except StageCancelled:
            self.failure = StageFailure("cancelled", f"{self.name}: cancelled.")
        except ChildFailed as exc:
            self.failure = StageFailure("error", f"{self.name} stopped because of an unexpected error ({exc}).",
                                        exc.details)
        except Exception as exc:  # noqa: BLE001 - the window must survive any stage fault
            mistake = user_error_from(exc)
            self.failure = StageFailure("input", str(mistake)) if mistake is not None else _unexpected(self.name, exc)
        if self.failure is None:
            self.finished.emit(self.result)
        else:
            self.failed.emit(self.failure)
        self.done.emit()


def _unexpected(name: str, exc: BaseException) -> StageFailure:
    return StageFailure("error", f"{name} stopped because of an unexpected error ({describe_error(exc)}).",
                        traceback.format_exc())


class StageRunner(QObject):
    """Runs one :class:`StageWorker` at a time in its own ``QThread``.

    ``started(name)`` is emitted when a worker starts and ``stopped(name)``
    once its thread has ended (after the worker's ``finished`` or
    ``failed``), which is when the window re-enables its buttons.
    """

    started = pyqtSignal(str)
    stopped = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: StageWorker | None = None
        self._thread: QThread | None = None

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self, worker: StageWorker) -> bool:
        """Start ``worker`` in a new thread; False if a stage is already running."""
        if self.worker is not None:
            return False
        thread = QThread()
        thread.setObjectName(f"stage: {worker.name}")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.done.connect(thread.quit)
        thread.finished.connect(self._thread_finished)
        self.worker, self._thread = worker, thread
        thread.start()
        self.started.emit(worker.name)
        return True

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the running stage's thread ends (for scripts and tests)."""
        if self._thread is None:
            return True
        return self._thread.wait(msecs)

    def _thread_finished(self) -> None:
        worker, thread = self.worker, self._thread
        self.worker, self._thread = None, None
        if thread is not None:
            thread.deleteLater()
        name = worker.name if worker is not None else ""
        self.stopped.emit(name)
