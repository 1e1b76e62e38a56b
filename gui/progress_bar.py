"""The window's one progress bar: the running stage's name, count,
percentage, estimated time left and current item."""

from __future__ import annotations

import time

from PyQt5.QtWidgets import QProgressBar

from core.progress import format_duration


class StageProgressBar(QProgressBar):
    """``start(name)``, then ``show_progress(done, total, message)`` from the
    stage, then ``finish(state)`` with "done", "cancelled", "failed"...

    The ETA counts from the first update of the current total, so a stage's
    set-up time and earlier sub-stages do not distort it.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.name = ""
        self._eta_start: tuple[float, int, int] | None = None  # time, done, total
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
        self.setRange(0, 0)  # busy until the first update
        self._set_text(f"{name}: starting…")

    def show_progress(self, done: int, total: int, message: str) -> None:
        if total <= 0:
            self.setRange(0, 0)
            self._set_text(f"{self.name}: {message}" if message else f"{self.name}…")
            return
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
        self._set_text(f"{self.name}: stopping…")

    def finish(self, state: str) -> None:
        """``state``: "done" fills the bar; anything else leaves it as it was."""
        self._set_text(f"{self.name}: {state}")
        if self.maximum() == 0:
            self.setRange(0, 1)
            self.setValue(1 if state == "done" else 0)
        elif state == "done":
            self.setValue(self.maximum())
