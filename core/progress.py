"""The progress and cancel protocol shared by every stage.

A stage function receives a :class:`Progress` and calls ``update`` between
items, ``log`` for lines worth keeping, and polls ``cancelled``. The GUI
adapts it to Qt signals, the CLI to a terminal bar; tests use it as is.
"""

from __future__ import annotations

import sys
import threading
import time

from core.errors import StageCancelled


class Progress:
    """Silent progress sink with a thread-safe cancel flag.

    Subclasses override :meth:`on_update` and :meth:`on_log`.
    """

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self.done = 0
        self.total = 0
        self.message = ""
        self.lines: list[str] = []

    # -- what stages call ---------------------------------------------------
    def update(self, done: int, total: int, message: str = "") -> None:
        self.done, self.total, self.message = int(done), int(total), message
        self.on_update(self.done, self.total, message)

    def log(self, text: str) -> None:
        self.lines.append(text)
        self.on_log(text)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def set_interruptible(self, interruptible: bool) -> None:
        """Say whether the stage could be stopped at once right now with
        nothing lost (inside a training batch, while a library loads): a
        caller that runs the stage in a child process may then end it
        without waiting for the next point where the stage polls
        :attr:`cancelled`."""
        self.on_interruptible(bool(interruptible))

    def wait_to_be_ended(self, timeout_s: float = 30.0) -> None:
        """Called by a cancelled stage at a point where nothing is being
        written: a stage that its caller can end at once (one run in a child
        process, see :meth:`ends_at_once`) waits here to be ended, which is
        quicker than unwinding; any other returns at once and unwinds."""
        if not self.ends_at_once():
            return
        self.set_interruptible(True)
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            time.sleep(0.02)
        self.set_interruptible(False)

    def ends_at_once(self) -> bool:
        """Whether the caller ends this stage as soon as it says it can be
        stopped (:meth:`set_interruptible`) after a cancel."""
        return False

    def check_cancelled(self) -> None:
        """Raise :class:`StageCancelled` if the user asked to stop."""
        if self._cancel.is_set():
            raise StageCancelled("cancelled by the user")

    # -- what the caller (GUI, CLI, test) calls -----------------------------
    def cancel(self) -> None:
        self._cancel.set()

    # -- hooks --------------------------------------------------------------
    def on_update(self, done: int, total: int, message: str) -> None:
        pass

    def on_log(self, text: str) -> None:
        pass

    def on_interruptible(self, interruptible: bool) -> None:
        pass


class SubProgress(Progress):
    """Maps a sub-stage's ``update(done, total)`` into a slice of a parent
    stage's range, sharing the parent's cancel flag and log."""

    def __init__(self, parent: Progress, start: float, stop: float, label: str = "") -> None:
        super().__init__()
        self._parent = parent
        self._cancel = parent._cancel
        self._start, self._stop, self._label = start, stop, label

    def on_update(self, done: int, total: int, message: str) -> None:
        frac = done / total if total else 0.0
        scale = 1000
        value = self._start + (self._stop - self._start) * frac
        prefix = f"{self._label}: " if self._label else ""
        self._parent.update(int(round(value * scale)), scale, prefix + message)

    def on_log(self, text: str) -> None:
        self._parent.log(text)

    def on_interruptible(self, interruptible: bool) -> None:
        self._parent.set_interruptible(interruptible)

    def ends_at_once(self) -> bool:
        return self._parent.ends_at_once()


class TerminalProgress(Progress):
    """A one-line progress bar with count and ETA on stderr, for the CLI."""

    def __init__(self, stream=None, width: int = 30) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self._t0 = time.monotonic()
        self._last_total = None
        self._last_draw = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def on_update(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if total != self._last_total:
            self._t0, self._last_total = now, total
        finished = total and done >= total
        if not finished and now - self._last_draw < (0.1 if self._tty else 5.0):
            return
        self._last_draw = now
        frac = min(1.0, done / total) if total else 0.0
        fill = int(self.width * frac)
        eta = ""
        if 0 < done < total:
            remaining = (now - self._t0) / done * (total - done)
            eta = f" ETA {format_duration(remaining)}"
        line = f"[{'#' * fill}{'.' * (self.width - fill)}] {done}/{total}{eta} {message}"
        if self._tty:
            self.stream.write("\r" + line[:150].ljust(150))
            if finished:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def on_log(self, text: str) -> None:
        if self._tty:
            self.stream.write("\r" + " " * 150 + "\r")
        self.stream.write(text + "\n")
        self.stream.flush()


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
