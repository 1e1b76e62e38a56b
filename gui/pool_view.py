"""The Pool tab: thumbnails of the object pool (with a way to delete bad
objects) and of the synthetic training images with their masks.

Thumbnails load lazily: the list asks only for the items it paints, and
each is read and shrunk in a background thread, so a pool of thousands of
objects neither delays the window nor freezes it while scrolling.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PyQt5.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    pyqtSignal,
)
from PyQt5.QtGui import QColor, QImage, QPixmap
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.gray import to_display_uint8
from core.imageio import IMAGE_EXTENSIONS, read_image
from core.workdir import WorkingDirectory
from gui import dialogs
from gui.image_view import array_to_qimage, boundary, class_colour

THUMB = 96
POOL, SYNTHETIC, CCD, LABELLED = "pool", "synthetic", "ccd", "labelled"


def thumbnail(image_path: Path, mask_path: Path | None, *, classes: bool) -> QImage:
    """A small RGB picture of an image with its mask drawn on it: the outline
    in red for a pool object, each class tinted in its colour for a
    synthetic image. Runs in a background thread (QImage, not QPixmap)."""
    image = read_image(image_path)
    step = max(1, math.ceil(max(image.shape[:2]) / (2 * THUMB)))
    rgb = to_display_uint8(image[::step, ::step])
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    rgb = np.array(rgb[..., :3], dtype=np.uint8)
    if mask_path is not None and mask_path.is_file():
        mask = read_image(mask_path)
        mask = (mask[..., 0] if mask.ndim == 3 else mask)[::step, ::step][: rgb.shape[0], : rgb.shape[1]]
        if classes:
            labels = mask.astype(np.int64)
            for value in np.unique(labels):
                if value == 0:
                    continue
                where = labels == value
                rgb[where] = (0.5 * rgb[where] + 0.5 * np.array(class_colour(int(value)))).astype(np.uint8)
        else:
            rgb[boundary((mask > 0).astype(np.uint8))] = (255, 40, 40)
    return array_to_qimage(rgb).scaled(THUMB, THUMB, Qt.KeepAspectRatio, Qt.SmoothTransformation)


class _LoadSignals(QObject):
    loaded = pyqtSignal(int, int, QImage)  # generation, row, thumbnail


class _ThumbnailJob(QRunnable):
    def __init__(self, model: ThumbnailModel, generation: int, row: int, image: Path,
                 mask: Path | None, classes: bool) -> None:
        super().__init__()
        self.model, self.generation, self.row = model, generation, row
        self.image, self.mask, self.classes = image, mask, classes

    def run(self) -> None:
        if self.generation != self.model.generation:  # the list was refreshed meanwhile
            return
        try:
            picture = thumbnail(self.image, self.mask, classes=self.classes)
        except Exception:  # noqa: BLE001 - an unreadable file shows as a grey square
            picture = QImage(THUMB, THUMB, QImage.Format_RGB888)
            picture.fill(QColor(90, 90, 90))
        try:
            self.model.signals.loaded.emit(self.generation, self.row, picture)
        except RuntimeError:  # the window closed while this thumbnail loaded
            pass


class ThumbnailModel(QAbstractListModel):
    """Image (+ mask) files shown as thumbnails, loaded on first paint."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.items: list[tuple[str, Path, Path | None]] = []  # name, image, mask
        self.tooltips: dict[str, str] = {}
        self.labels: dict[str, str] = {}  # name -> caption, where it differs from the name
        self.classes = False
        self.generation = 0
        self.requested = 0  # thumbnails asked for since the last refresh
        self._cache: dict[int, QPixmap] = {}
        self._pending: set[int] = set()
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # leave the other core to the running stage
        self.signals = _LoadSignals()
        self.signals.loaded.connect(self._loaded)
        self._placeholder = QPixmap(THUMB, THUMB)
        self._placeholder.fill(QColor(220, 220, 220))

    def set_items(self, items: list[tuple[str, Path, Path | None]], *, classes: bool,
                  tooltips: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> None:
        self.beginResetModel()
        self.labels = labels or {}
        self.generation += 1
        self.pool.clear()
        self.items, self.classes = items, classes
        self.tooltips = tooltips or {}
        self._cache.clear()
        self._pending.clear()
        self.requested = 0
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802,B008 - Qt override
        return 0 if parent.isValid() else len(self.items)

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid() or index.row() >= len(self.items):
            return None
        name, image, mask = self.items[index.row()]
        if role == Qt.DisplayRole:
            return self.labels.get(name, name)
        if role == Qt.ToolTipRole:
            return self.tooltips.get(name, name)
        if role == Qt.DecorationRole:
            row = index.row()
            if row in self._cache:
                return self._cache[row]
            if row not in self._pending:
                self._pending.add(row)
                self.requested += 1
                self.pool.start(_ThumbnailJob(self, self.generation, row, image, mask, self.classes))
            return self._placeholder
        return None

    def _loaded(self, generation: int, row: int, picture: QImage) -> None:
        if generation != self.generation:
            return
        self._pending.discard(row)
        self._cache[row] = QPixmap.fromImage(picture)
        index = self.index(row)
        self.dataChanged.emit(index, index, [Qt.DecorationRole])

    def wait_idle(self, msecs: int = 10000) -> bool:
        return self.pool.waitForDone(msecs)

    def shutdown(self) -> None:
        """Drop queued thumbnails and wait for the one being read (closing)."""
        self.generation += 1
        self.pool.clear()
        self.pool.waitForDone(5000)


def pool_items(workdir: Path) -> tuple[list[tuple[str, Path, Path | None]], dict[str, str], dict[str, str]]:
    """The pool's objects as (name, crop, mask), with a tooltip and a caption per name."""


    wd = WorkingDirectory(workdir)
    try:
        rows = wd.read_index()
        names, index = wd.pool_files(rows), {row.get("file", ""): row for row in rows}
    except Exception:  # noqa: BLE001 - a damaged index must not hide the pool
        names, index = wd.object_files(), {}
    tips, labels = {}, {}
    for name in names:
        row = index.get(name)
        if row:
            tips[name] = (f"{name}\nfrom {row.get('source_image', '?')} ({row.get('origin', '?')}), "
                          f"area {row.get('area', '?')} px")
            labels[name] = pool_label(name, row.get("source_image"))
    return [(n, wd.objects_images / n, wd.objects_masks / n) for n in names], tips, labels


def pool_label(name: str, source_image: str | None) -> str:
    """The caption under a pool thumbnail: the photo it came from and its
    number (``particles_01 #3``); the whole file name is in the tooltip."""
    number = Path(name).stem.rsplit("_", 1)[-1]
    if not source_image or not number.isdigit():
        return name
    return f"{Path(source_image).stem} #{int(number)}"


def paired_items(folder: Path) -> list[tuple[str, Path, Path | None]]:
    """images/ and masks/ of a synthetic set, paired by file stem."""
    images, masks = folder / "images", folder / "masks"
    if not images.is_dir():
        return []
    mask_by_stem = {p.stem: p for p in masks.iterdir()} if masks.is_dir() else {}
    return [(p.name, p, mask_by_stem.get(p.stem)) for p in sorted(images.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]


class PoolView(QWidget):
    """Thumbnail grid of the pool or of a synthetic set.

    Signals
    -------
    deleteRequested(files) : the user confirmed deleting these pool objects.
    """

    deleteRequested = pyqtSignal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.workdir: Path | None = None
        self.source = QComboBox()
        self.source.addItem("Object pool", POOL)
        self.source.addItem("Synthetic images", SYNTHETIC)
        self.source.addItem("Simulated CCD frames", CCD)
        self.source.addItem("Labelled frames", LABELLED)
        self.source.setToolTip("What to show: pool objects (red outline = mask) or synthetic "
                               "training images (masks tinted by class)")
        self.source.currentIndexChanged.connect(lambda _i: self.refresh())
        self.count = QLabel("")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(lambda: self.refresh())
        self.delete_button = QPushButton("Delete selected…")
        self.delete_button.setToolTip("Remove the selected objects from the pool (crop, mask and index row)")
        self.delete_button.clicked.connect(self._delete)
        self.model = ThumbnailModel(self)
        self.list = QListView()
        self.list.setViewMode(QListView.IconMode)
        self.list.setResizeMode(QListView.Adjust)
        self.list.setMovement(QListView.Static)
        self.list.setUniformItemSizes(True)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setGridSize(QSize(THUMB + 36, THUMB + 30))
        # Captions are "<photo> #<number>": the photo at the start and the
        # number at the end both matter, so a long caption loses its middle.
        self.list.setTextElideMode(Qt.ElideMiddle)
        self.list.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.list.setModel(self.model)
        self.list.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        top = QHBoxLayout()
        top.addWidget(QLabel("Show"))
        top.addWidget(self.source)
        top.addStretch(1)
        top.addWidget(self.refresh_button)
        top.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.count)
        self._busy = False
        self._update_buttons()

    @property
    def mode(self) -> str:
        return self.source.currentData()

    def set_mode(self, mode: str) -> None:
        self.source.setCurrentIndex(max(0, self.source.findData(mode)))

    def set_workdir(self, workdir: str | Path | None) -> None:
        self.workdir = Path(workdir) if workdir else None
        self.refresh()

    def refresh(self) -> None:
        tips: dict[str, str] = {}
        labels: dict[str, str] = {}
        items: list = []
        if self.workdir is not None and self.workdir.is_dir():
            if self.mode == POOL:
                items, tips, labels = pool_items(self.workdir)
            else:
                wd = WorkingDirectory(self.workdir)
                folder = {SYNTHETIC: wd.synthetic, CCD: wd.ccd, LABELLED: wd.labelled_ccd}[self.mode]
                items = paired_items(folder)
        self.model.set_items(items, classes=self.mode != POOL, tooltips=tips, labels=labels)
        what = {POOL: "objects in the pool", SYNTHETIC: "synthetic images", CCD: "simulated frames",
                LABELLED: "labelled frames"}[self.mode]
        self.count.setText(f"{len(items)} {what}")
        self._update_buttons()

    def selected_files(self) -> list[str]:
        rows = sorted(i.row() for i in self.list.selectionModel().selectedIndexes())
        return [self.model.items[r][0] for r in rows]

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.delete_button.setVisible(self.mode == POOL)
        self.delete_button.setEnabled(not self._busy and bool(self.list.selectionModel().selectedIndexes()))

    def _delete(self) -> None:
        files = self.selected_files()
        if not files:
            return
        if len(files) == 1:
            text = (f"Delete {files[0]} from the object pool? Its crop and mask are removed from the "
                    "working directory.")
        else:
            text = (f"Delete these {len(files)} objects from the object pool? Their crops and masks are "
                    "removed from the working directory.")
        if dialogs.ask(self, "Delete pool objects", text):
            self.deleteRequested.emit(files)
