"""The Results tab: the measurements the segment stage wrote (objects.csv
as a sortable, filterable table, summary.csv, the size histogram)."""

from __future__ import annotations

import csv
from pathlib import Path

from PyQt5.QtCore import QSortFilterProxyModel, Qt
from PyQt5.QtGui import QPixmap, QStandardItem, QStandardItemModel
from PyQt5.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

MAX_ROWS = 200_000  # more than any photo series; keeps a runaway file from eating memory


def read_csv(path: Path, limit: int = MAX_ROWS) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows = [row for _, row in zip(range(limit), reader)]
    return header, rows


def table_model(header: list[str], rows: list[list[str]], parent=None) -> QStandardItemModel:
    """A model whose numeric cells sort as numbers (EditRole holds a float)."""
    model = QStandardItemModel(len(rows), len(header), parent)
    model.setHorizontalHeaderLabels(header)
    for r, row in enumerate(rows):
        for c, text in enumerate(row[: len(header)]):
            item = QStandardItem(text)
            try:
                item.setData(float(text), Qt.UserRole)
            except ValueError:
                item.setData(text.lower(), Qt.UserRole)
            item.setEditable(False)
            model.setItem(r, c, item)
    return model


class _NumberAwareProxy(QSortFilterProxyModel):
    def lessThan(self, left, right) -> bool:  # noqa: N802 - Qt override
        a, b = left.data(Qt.UserRole), right.data(Qt.UserRole)
        if isinstance(a, float) and isinstance(b, float):
            return a < b
        if isinstance(a, float) != isinstance(b, float):
            return isinstance(a, float)  # numbers before text
        return str(a) < str(b)


class PictureLabel(QLabel):
    """A picture scaled to fit the label, rescaled whenever the label resizes."""

    def __init__(self, empty_text: str, parent=None) -> None:
        super().__init__(empty_text, parent)
        self.empty_text = empty_text
        self.picture: QPixmap | None = None
        self.setAlignment(Qt.AlignCenter)
        # The picture follows the label's size, never the other way round.
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)

    def set_picture(self, picture: QPixmap | None) -> None:
        self.picture = picture if picture is not None and not picture.isNull() else None
        self._rescale()

    def _rescale(self) -> None:
        if self.picture is None:
            self.setText(self.empty_text)
            return
        self.setPixmap(self.picture.scaled(self.size(), Qt.KeepAspectRatio, Qt.SmoothTransformation))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._rescale()


class ResultsView(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.folder: Path | None = None
        self.heading = QLabel("Segment photos to see their measurements here.")
        self.heading.setWordWrap(True)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter rows (text in any column)")
        self.filter.setClearButtonEnabled(True)
        self.proxy = _NumberAwareProxy(self)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseInsensitive)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.table.setAlternatingRowColors(True)
        self.summary = QTableView()
        self.summary.setMaximumHeight(110)
        self.histogram = PictureLabel("No histogram yet.")
        self.histogram.setMinimumWidth(200)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Objects"))
        row.addWidget(self.filter, 1)
        lv.addLayout(row)
        lv.addWidget(self.table, 1)
        lv.addWidget(QLabel("Per photo"))
        lv.addWidget(self.summary)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(self.histogram)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([600, 400])
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(split, 1)

    def load(self, folder: str | Path) -> bool:
        """Show the measurements in a segment output folder; False if none."""
        folder = Path(folder)
        self.folder = folder
        objects = folder / "objects.csv"
        if not objects.is_file():
            self.heading.setText(f"No measurements in {folder} yet.")
            return False
        header, rows = read_csv(objects)
        model = table_model(header, rows, self)
        self.proxy.setSourceModel(model)
        self.table.resizeColumnsToContents()
        self.table.scrollToTop()  # a new table starts at its first rows
        summary = folder / "summary.csv"
        if summary.is_file():
            s_header, s_rows = read_csv(summary)
            self.summary.setModel(table_model(s_header, s_rows, self))
            self.summary.resizeColumnsToContents()
        hist = sorted(folder.glob("*hist*.png"))
        self.histogram.set_picture(QPixmap(str(hist[0])) if hist else None)
        self.heading.setText(f"{len(rows)} objects measured, from {folder}. Click a column to sort.")
        return True

    @property
    def row_count(self) -> int:
        return self.proxy.rowCount()
