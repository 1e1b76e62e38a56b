"""The Training tab: live loss and per-class IoU curves, one point per
epoch, with the best epoch (lowest validation loss) marked, and the batch
progress of the running epoch.

Curves are drawn with QPainter: nothing to import when training starts, and
a redraw costs well under a millisecond, so the window stays responsive.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from PyQt5.QtCore import QPointF, QRectF, Qt
from PyQt5.QtGui import QColor, QFont, QPainter, QPen
from PyQt5.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

SERIES_COLOURS = [QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(214, 39, 40),
                  QColor(148, 103, 189), QColor(140, 86, 75), QColor(227, 119, 194), QColor(127, 127, 127)]
BEST_COLOUR = QColor(200, 0, 0)


def tick_labels(ticks: list[float]) -> list[str]:
    """Labels with just enough decimals to tell the ticks apart (1.925, 1.95, 1.975)."""
    for decimals in range(0, 9):
        if all(abs(round(t, decimals) - t) < 1e-9 * max(1.0, abs(t)) for t in ticks):
            break
    return [f"{t:.{decimals}f}" for t in ticks]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, value = [], first
    while value <= hi + 1e-9 * step:
        ticks.append(round(value, 12))
        value += step
    return ticks


class CurvePlot(QWidget):
    """Line plot of a few named series over epochs, with an optional marker."""

    def __init__(self, title: str, *, y_range: tuple[float, float] | None = None, parent=None) -> None:
        super().__init__(parent)
        self.title = title
        self.y_range = y_range
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.marker: float | None = None
        self.setMinimumSize(200, 160)

    def clear(self) -> None:
        self.series.clear()
        self.marker = None
        self.update()

    def add_point(self, name: str, x: float, y: float) -> None:
        if y is None or not math.isfinite(y):
            return
        self.series.setdefault(name, []).append((float(x), float(y)))
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.fillRect(self.rect(), QColor(255, 255, 255))
        fm = p.fontMetrics()
        left, right, top, bottom = fm.horizontalAdvance("0.0000") + 12, 12, fm.height() + 10, fm.height() + 26
        plot = QRectF(left, top, max(10, self.width() - left - right), max(10, self.height() - top - bottom))
        title_font = QFont(p.font())
        title_font.setBold(True)
        p.setFont(title_font)
        p.setPen(QColor(30, 30, 30))
        # Title on the left of the top line, the best epoch on its right:
        # outside the plot, so neither covers a curve.
        p.drawText(QRectF(plot.left(), 2, plot.width(), fm.height() + 4), Qt.AlignLeft, self.title)
        p.setFont(self.font())
        points = [pt for s in self.series.values() for pt in s]
        if not points:
            p.setPen(QColor(120, 120, 120))
            p.drawRect(plot)
            p.drawText(plot, Qt.AlignCenter, "No epochs yet")
            return
        xs = [x for x, _ in points]
        x0, x1 = min(xs), max(xs)
        pad = max(0.25, 0.03 * (x1 - x0))  # keeps first and last points off the frame
        x0, x1 = x0 - pad, x1 + pad
        if self.y_range is not None:
            y0, y1 = self.y_range
        else:
            ys = [y for _, y in points]
            y0, y1 = min(ys), max(ys)
            pad = (y1 - y0) * 0.08 or abs(y1) * 0.1 or 1.0
            y0, y1 = y0 - pad, y1 + pad

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(plot.left() + (x - x0) / (x1 - x0) * plot.width(),
                           plot.bottom() - (y - y0) / (y1 - y0) * plot.height())

        grid = QPen(QColor(225, 225, 225))
        y_ticks = nice_ticks(y0, y1)
        for ty, label in zip(y_ticks, tick_labels(y_ticks)):
            pt = to_px(x0, ty)
            p.setPen(grid)
            p.drawLine(QPointF(plot.left(), pt.y()), QPointF(plot.right(), pt.y()))
            p.setPen(QColor(80, 80, 80))
            p.drawText(QRectF(0, pt.y() - fm.height() / 2, left - 4, fm.height()),
                       Qt.AlignRight | Qt.AlignVCenter, label)
        for tx in nice_ticks(x0, x1, 6):
            if abs(tx - round(tx)) > 1e-9:
                continue  # epochs are whole numbers
            pt = to_px(tx, y0)
            p.drawText(QRectF(pt.x() - 20, plot.bottom() + 2, 40, fm.height()), Qt.AlignHCenter, f"{tx:.0f}")
        p.drawText(QRectF(plot.left(), plot.bottom() + fm.height() + 4, plot.width(), fm.height()),
                   Qt.AlignHCenter, "epoch")
        p.setPen(QColor(120, 120, 120))
        p.drawRect(plot)

        # The legend goes to the right-hand corner the curves end away from.
        ends_high = [to_px(*pts[-1]).y() < plot.center().y() for pts in self.series.values() if pts]
        legend_at_bottom = sum(ends_high) * 2 > len(ends_high)
        line_h = fm.height() + 2
        if self.marker is not None:
            p.setPen(QPen(BEST_COLOUR, 1, Qt.DashLine))
            mx = to_px(self.marker, y0).x()
            p.drawLine(QPointF(mx, plot.top()), QPointF(mx, plot.bottom()))
            p.setPen(BEST_COLOUR)
            p.drawText(QRectF(plot.left(), 2, plot.width(), fm.height() + 4), Qt.AlignRight,
                       f"best: epoch {self.marker:g}")

        for i, pts in enumerate(self.series.values()):
            p.setPen(QPen(SERIES_COLOURS[i % len(SERIES_COLOURS)], 2))
            px = [to_px(x, y) for x, y in pts]
            for a, b in zip(px, px[1:]):
                p.drawLine(a, b)
            for pt in px:
                p.drawEllipse(pt, 2.5, 2.5)

        text_w = max(fm.horizontalAdvance(name) for name in self.series)
        box = QRectF(plot.right() - text_w - 34, 0, text_w + 30, line_h * len(self.series) + 4)
        box.moveTop(plot.bottom() - box.height() - 4 if legend_at_bottom else plot.top() + 4)
        p.setPen(QColor(200, 200, 200))
        p.setBrush(QColor(255, 255, 255, 220))
        p.drawRect(box)
        p.setBrush(Qt.NoBrush)
        legend_y = box.top() + 2
        for i, name in enumerate(self.series):
            lx = box.left() + 4
            p.setPen(QPen(SERIES_COLOURS[i % len(SERIES_COLOURS)], 2))
            p.drawLine(QPointF(lx, legend_y + fm.height() / 2), QPointF(lx + 18, legend_y + fm.height() / 2))
            p.setPen(QColor(30, 30, 30))
            p.drawText(QRectF(lx + 22, legend_y, text_w + 4, fm.height()), Qt.AlignLeft, name)
            legend_y += line_h


class TrainingView(QWidget):
    """Live training curves. Feed it with :meth:`add_epoch` (from the
    training stage's per-epoch hook) and :meth:`set_batch_progress`."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.loss_plot = CurvePlot("Loss")
        self.iou_plot = CurvePlot("IoU per class (validation)", y_range=(0.0, 1.0))
        self.epochs: list[tuple[int, dict]] = []
        self.best_epoch: int | None = None
        self.state = QLabel("No training yet. Press Train to start; curves appear after each epoch.")
        self.state.setWordWrap(True)
        self.best = QLabel("")
        self.batch = QProgressBar()
        self.batch.setFormat("batch %v / %m")
        self.batch.setRange(0, 1)
        self.batch.setValue(0)
        self.batch.setVisible(False)  # shown while a training runs
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        row = QHBoxLayout()
        row.addWidget(self.batch, 1)
        row.addWidget(self.best)
        layout.addLayout(row)
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot, 1)
        plots.addWidget(self.iou_plot, 1)
        layout.addLayout(plots, 1)

    def clear(self) -> None:
        self.epochs.clear()
        self.best_epoch = None
        self.loss_plot.clear()
        self.iou_plot.clear()
        self.best.setText("")
        self.batch.setRange(0, 1)
        self.batch.setValue(0)

    def start(self, epochs: int, history: str | Path | None = None) -> None:
        """Clear the curves for a new run; a model being continued shows its
        earlier epochs (from ``history``) before the new ones arrive."""
        self.clear()
        if history is not None:
            self.load_history(history)
        self.batch.setVisible(True)
        self.state.setText(f"Training for up to {epochs} epochs…")

    def set_batch_progress(self, done: int, total: int, message: str) -> None:
        if total > 0:
            self.batch.setRange(0, total)
            self.batch.setValue(min(done, total))
        if message:
            self.state.setText(message)

    def add_epoch(self, epoch: int, metrics: dict) -> None:
        """Add one epoch's metrics: ``loss``, ``val_loss`` and any key with
        ``iou`` in its name (one curve per class)."""
        numbers = {k: float(v) for k, v in metrics.items() if _is_number(v)}
        self.epochs.append((epoch, numbers))
        for key in ("loss", "val_loss"):
            if key in numbers:
                self.loss_plot.add_point(key, epoch, numbers[key])
        for key, value in numbers.items():
            if "iou" in key.lower() and (key.startswith("val") or not any(
                    k.startswith("val") and "iou" in k.lower() for k in numbers)):
                self.iou_plot.add_point(_short_name(key), epoch, value)
        self._mark_best()

    def _mark_best(self) -> None:
        key = "val_loss" if any("val_loss" in m for _, m in self.epochs) else "loss"
        scored = [(m[key], e) for e, m in self.epochs if key in m]
        if not scored:
            return
        value, epoch = min(scored)
        self.best_epoch = epoch
        self.loss_plot.marker = self.iou_plot.marker = epoch
        self.loss_plot.update()
        self.iou_plot.update()
        self.best.setText(f"Best epoch: {epoch} ({key} {value:.4g})")

    def finished(self, text: str) -> None:
        self.state.setText(text)

    def load_history(self, path: str | Path) -> bool:
        """Show the curves of a model folder's history.csv (one row per epoch)."""
        path = Path(path)
        if not path.is_file():
            return False
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, csv.Error):
            return False
        self.clear()
        for i, row in enumerate(rows):
            epoch = int(float(row.get("epoch", i))) if _is_number(row.get("epoch", i)) else i
            self.add_epoch(epoch + 1 if "epoch" in row and _zero_based(rows) else epoch, row)
        self.state.setText(f"Curves of {path.parent.name} ({len(rows)} epochs, from {path.name}).")
        return True


def _zero_based(rows: list[dict]) -> bool:
    """Keras' CSVLogger counts epochs from 0; shown to users from 1."""
    return bool(rows) and _is_number(rows[0].get("epoch")) and float(rows[0]["epoch"]) == 0


def _is_number(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _short_name(key: str) -> str:
    """"val_iou_grain" -> "grain": the curve is named after its class."""
    for prefix in ("val_", "iou_"):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key
