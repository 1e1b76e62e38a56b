"""The window's one progress bar: the running stage's name, count,
percentage, estimated time left and current item."""

from __future__ import annotations

import time

from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QProgressBar

from core.progress import format_duration


class StageProgressBar(QProgressBar):
    """``start(name)``, then ``show_progress(done, total, message)`` from the
    stage, then ``finish(state)`` with "done", "cancelled", "failed"...

    The ETA counts from the first update of the current total, so a stage's
    set-up time and earlier sub-stages do not distort it.

    Until a stage reports a count (loading TensorFlow, a first look at a
    photo) the bar stays empty and says what is happening and for how long,
    counting the seconds: a busy bar without words looks like a hang, and
    several styles draw no text on a busy bar at all.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.name = ""
        self._eta_start: tuple[float, int, int] | None = None  # time, done, total
        self._waiting: tuple[float, str] | None = None  # since when, what (no count yet)
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self.setTextVisible(True)
        self.setRange(0, 1)
        self.setValue(0)
        self._set_text("Ready")

    def _set_text(self, text: str) -> None:
        # QProgressBar expands %p, %v and %m and shows "%%" as two signs: break
        # every "%" from the next character with a zero-width space instead.
        self.setFormat(text.replace("%", "%\u200b"))

    def text_shown(self) -> str:
        return self.format().replace("%\u200b", "%")

    def start(self, name: str) -> None:
        self.name = name
        self._eta_start = None
        self.setRange(0, 1)
        self.setValue(0)
        self._wait("starting")
        self._clock.start()

    def _wait(self, what: str) -> None:
        since = self._waiting[0] if self._waiting is not None else time.monotonic()
        self._waiting = (since, what)
        self._tick()

    def _tick(self) -> None:
        if self._waiting is None:
            return
        since, what = self._waiting
        seconds = int(time.monotonic() - since)
        self._set_text(f"{self.name}: {what}…" + (f" ({seconds} s)" if seconds >= 1 else ""))

    def show_progress(self, done: int, total: int, message: str) -> None:
        if total <= 0 or (done == 0 and total == 1 and self._eta_start is None):
            # No count yet: say what is going on, with the seconds it has taken.
            if self._waiting is not None and self._waiting[1] != (message or "working"):
                self._waiting = None  # a new step: its own seconds
            self._wait(message.rstrip("…. ") or "working")
            return
        self._waiting = None
        now = time.monotonic()
        if self._eta_start is None or self._eta_start[2] != total or done < self._eta_start[1]:
            self._eta_start = (now, done, total)
        eta = ""
        elapsed = now - self._eta_start[0]
        advanced = done - self._eta_start[1]
        if 0 < done < total and advanced > 0 and elapsed > 0.5:
            eta = f" · ETA {format_duration(elapsed / advanced * (total - done))}"
        text = f"{self.name}: {done}/{total} ({100.0 * done / total:.0f} %){eta}"
        self._set_text(text + (f" · {message}" if message else ""))
        self.setRange(0, total)
        self.setValue(min(done, total))

    def stopping(self) -> None:
        self._waiting = None
        self._wait("stopping")

    def finish(self, state: str) -> None:
        """``state``: "done" fills the bar; anything else leaves it as it was."""
        self._clock.stop()
        self._waiting = None
        self._set_text(f"{self.name}: {state}")
        if self.maximum() == 0:
            self.setRange(0, 1)
            self.setValue(1 if state == "done" else 0)
        elif state == "done":
            self.setValue(self.maximum())
