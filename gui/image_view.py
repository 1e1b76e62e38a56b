"""A zoomable, pannable view of a photo with its segmentation drawn over it.

One scene unit is one image pixel: the photo's pixel (row, col) covers the
scene square [col, col+1) x [row, row+1), so a click maps to a pixel by
inverting the view transform and flooring, at every zoom and image size.

Mouse: wheel zooms around the cursor, a drag pans, a click (press and
release without moving) emits :attr:`ImageView.pixelClicked`.
"""

from __future__ import annotations

import math

import numpy as np
from PyQt5.QtCore import QPoint, QPointF, QRectF, Qt, pyqtSignal
from PyQt5.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPixmap, QTransform
from PyQt5.QtWidgets import (
    QGraphicsItemGroup,
    QGraphicsLineItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
)

from core.gray import to_display_uint8

# One colour per class index (0 = background, not drawn); chosen to stay
# apart from each other and from the yellow of picked objects.
CLASS_COLOURS = [
    (0, 0, 0), (255, 70, 70), (60, 150, 255), (60, 220, 90), (255, 150, 0),
    (200, 90, 255), (0, 220, 220), (255, 110, 200), (150, 120, 60), (160, 160, 160),
]
PICKED_COLOUR = (255, 230, 0)
MARK_COLOUR = (0, 255, 255)  # scale bar ends: cyan stands out on gray photos and class colours
MIN_ZOOM, MAX_ZOOM, ZOOM_STEP = 1 / 64, 64.0, 1.25
DRAG_THRESHOLD = 4  # screen pixels a press may move and still count as a click


def class_colour(index: int) -> tuple[int, int, int]:
    if 0 < index < len(CLASS_COLOURS):
        return CLASS_COLOURS[index]
    # Beyond the table: a deterministic, well-spread hue.
    colour = QColor.fromHsv(int(index * 137.5) % 360, 200, 255)
    return colour.red(), colour.green(), colour.blue()


def array_to_qimage(array: np.ndarray) -> QImage:
    """A QImage owning a copy of an 8-bit gray, RGB or RGBA array."""
    array = np.ascontiguousarray(array)
    h, w = array.shape[:2]
    if array.ndim == 2:
        fmt, channels = QImage.Format_Grayscale8, 1
    elif array.shape[2] == 3:
        fmt, channels = QImage.Format_RGB888, 3
    else:
        fmt, channels = QImage.Format_RGBA8888, 4
    return QImage(array.data, w, h, w * channels, fmt).copy()


def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` (any non-zero) that touch a pixel of another value
    (4-neighbours): the outline drawn over the photo."""
    edge = np.zeros(mask.shape, bool)
    edge[1:, :] |= mask[1:, :] != mask[:-1, :]
    edge[:-1, :] |= mask[:-1, :] != mask[1:, :]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    return edge & (mask != 0)


def overlay_rgba(class_mask: np.ndarray, *, outline: bool) -> np.ndarray:
    """RGBA drawing of a class mask: each class in its colour, filled (with
    a solid outline) or outline only; background transparent."""
    n = max(int(class_mask.max()) + 1, 2)
    lut = np.zeros((n, 4), np.uint8)
    for i in range(1, n):
        lut[i, :3] = class_colour(i)
        lut[i, 3] = 0 if outline else 140
    rgba = lut[class_mask]
    rgba[boundary(class_mask), 3] = 255
    return rgba


def picked_rgba(mask: np.ndarray) -> np.ndarray:
    """RGBA drawing of one picked object's mask: yellow, solid outline."""
    rgba = np.zeros(mask.shape + (4,), np.uint8)
    rgba[..., :3] = PICKED_COLOUR
    rgba[mask, 3] = 120
    rgba[boundary(mask.astype(np.uint8)), 3] = 255
    return rgba


class ImageView(QGraphicsView):
    """Photo + class overlay + picked objects, with zoom and pan.

    Signals
    -------
    pixelClicked(row, col, modifiers) : a click on the photo, in image pixels.
    zoomChanged(zoom) : screen pixels per image pixel.
    """

    pixelClicked = pyqtSignal(int, int, object)
    zoomChanged = pyqtSignal(float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QBrush(QColor(40, 40, 40)))
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.AnchorViewCenter)
        self.setDragMode(QGraphicsView.NoDrag)
        self.setFocusPolicy(Qt.StrongFocus)
        self._photo = QGraphicsPixmapItem()
        self._overlay = QGraphicsPixmapItem()
        self._overlay.setZValue(1)
        for item in (self._photo, self._overlay):
            self.scene().addItem(item)
        self._picked_items: dict[int, QGraphicsPixmapItem] = {}
        self._marks: QGraphicsItemGroup | None = None
        self._image_shape: tuple[int, int] | None = None
        self._press: QPoint | None = None
        self._panning = False
        self._fit = True

    # -- content ----------------------------------------------------------------
    def set_image(self, image: np.ndarray | None, *, stretch: str = "percentile") -> None:
        """Show a photo of any dtype (16-bit and float are percentile-windowed,
        or stretched around the pedestal with ``stretch="detector"``)."""
        self.clear_picked()
        self.set_marks([])
        self._overlay.setPixmap(QPixmap())
        if image is None:
            self._photo.setPixmap(QPixmap())
            self._image_shape = None
            return
        display = to_display_uint8(image, stretch=stretch)
        self._photo.setPixmap(QPixmap.fromImage(array_to_qimage(display)))
        self._image_shape = image.shape[:2]
        self.scene().setSceneRect(QRectF(0, 0, image.shape[1], image.shape[0]))
        self.fit_to_window()

    @property
    def image_shape(self) -> tuple[int, int] | None:
        return self._image_shape

    def set_overlay(self, class_mask: np.ndarray | None, *, outline: bool = False) -> None:
        if class_mask is None:
            self._overlay.setPixmap(QPixmap())
            return
        rgba = overlay_rgba(class_mask, outline=outline)
        self._overlay.setPixmap(QPixmap.fromImage(array_to_qimage(rgba)))

    def update_overlay(self, class_mask: np.ndarray, boxes: list, *, outline: bool) -> None:
        """Redraw the overlay inside ``boxes`` only ((row slice, col slice)
        each, a pixel wider than what changed): a fill of a few contours
        on a large photo must not redraw the whole photo's overlay."""
        pixmap = self._overlay.pixmap()
        if pixmap.isNull() or len(boxes) > 3000 or pixmap.height() != class_mask.shape[0]:
            self.set_overlay(class_mask, outline=outline)
            return
        h, w = class_mask.shape
        painter = QPainter(pixmap)
        painter.setCompositionMode(QPainter.CompositionMode_Source)
        for rows, cols in boxes:
            # One pixel more around the box, so that outlines there are right.
            r0, r1 = max(0, rows.start - 1), min(h, rows.stop + 1)
            c0, c1 = max(0, cols.start - 1), min(w, cols.stop + 1)
            rgba = overlay_rgba(class_mask[r0:r1, c0:c1], outline=outline)
            inner = rgba[rows.start - r0:rgba.shape[0] - (r1 - rows.stop), cols.start - c0:rgba.shape[1] - (c1 - cols.stop)]
            painter.drawImage(cols.start, rows.start, array_to_qimage(inner))
        painter.end()
        self._overlay.setPixmap(pixmap)

    def set_overlay_opacity(self, opacity: float) -> None:
        self._overlay.setOpacity(max(0.0, min(1.0, opacity)))

    def overlay_opacity(self) -> float:
        return self._overlay.opacity()

    def set_picked(self, patches: dict[int, tuple[int, int, np.ndarray]], *, redraw: bool = False) -> None:
        """Draw picked objects: ``{id: (row, col, bool mask of its box)}``.
        Items are kept per object so a pick redraws one small patch only;
        ``redraw`` redraws them all (after a fill changed their shapes)."""
        for oid in list(self._picked_items):
            if redraw or oid not in patches:
                self.scene().removeItem(self._picked_items.pop(oid))
        for oid, (row, col, mask) in patches.items():
            if oid in self._picked_items:
                continue
            item = QGraphicsPixmapItem(QPixmap.fromImage(array_to_qimage(picked_rgba(mask))))
            item.setPos(col, row)
            item.setZValue(2)
            self.scene().addItem(item)
            self._picked_items[oid] = item

    def clear_picked(self) -> None:
        self.set_picked({})

    def set_marks(self, points: list[tuple[float, float]]) -> None:
        """Mark points (x, y in image pixels) with crosses joined by a line,
        e.g. the clicked ends of a scale bar; [] removes them. The pens are
        cosmetic, so the marks keep their screen size at every zoom."""
        if self._marks is not None:
            self.scene().removeItem(self._marks)  # takes the lines with it
            self._marks = None
        if not points:
            return
        pen = QPen(QColor(*MARK_COLOUR), 2)
        pen.setCosmetic(True)
        group = QGraphicsItemGroup()
        arm = max(2.0, 6.0 / max(self.zoom(), 1e-6))  # about 6 screen pixels
        lines = [(x - arm, y, x + arm, y) for x, y in points] + [(x, y - arm, x, y + arm) for x, y in points]
        lines += [(x0, y0, x1, y1) for (x0, y0), (x1, y1) in zip(points, points[1:])]
        for coords in lines:
            line = QGraphicsLineItem(*coords)
            line.setPen(pen)
            group.addToGroup(line)
        group.setZValue(3)
        self.scene().addItem(group)
        self._marks = group

    def marks_count(self) -> int:
        return 0 if self._marks is None else len(self._marks.childItems())

    def picked_ids(self) -> list[int]:
        return sorted(self._picked_items)

    # -- zoom -------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, zoom: float) -> None:
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        self._fit = False
        self.setTransform(QTransform.fromScale(zoom, zoom))
        self._zoom_changed()

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / ZOOM_STEP)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def fit_to_window(self) -> None:
        if self._image_shape is None:
            return
        self.fitInView(self.sceneRect(), Qt.KeepAspectRatio)
        self._fit = True
        self._zoom_changed()

    def _zoom_changed(self) -> None:
        # Smooth when shrinking a photo; crisp pixels when looking closely.
        mode = Qt.SmoothTransformation if self.zoom() < 1 else Qt.FastTransformation
        self._photo.setTransformationMode(mode)
        self.zoomChanged.emit(self.zoom())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._fit:
            self.fit_to_window()

    # -- pixel mapping ----------------------------------------------------------
    def pixel_at(self, pos: QPoint) -> tuple[int, int] | None:
        """The image pixel (row, col) under a viewport position, or None
        outside the photo. The position's pixel centre is mapped, so the
        answer is exact at every zoom."""
        if self._image_shape is None:
            return None
        inverse, ok = self.viewportTransform().inverted()
        if not ok:
            return None
        scene = inverse.map(QPointF(pos.x() + 0.5, pos.y() + 0.5))
        row, col = math.floor(scene.y()), math.floor(scene.x())
        h, w = self._image_shape
        if 0 <= row < h and 0 <= col < w:
            return row, col
        return None

    def viewport_pos_of(self, row: int, col: int) -> QPoint:
        """The viewport position of an image pixel's centre."""
        p = self.viewportTransform().map(QPointF(col + 0.5, row + 0.5))
        return QPoint(math.floor(p.x()), math.floor(p.y()))

    # -- mouse ------------------------------------------------------------------
    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.set_zoom(self.zoom() * ZOOM_STEP ** steps)
        event.accept()

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.button() in (Qt.LeftButton, Qt.MiddleButton):
            self._press = event.pos()
            self._panning = event.button() == Qt.MiddleButton
            self._last = event.pos()
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._press is not None:
            if not self._panning and (event.pos() - self._press).manhattanLength() > DRAG_THRESHOLD:
                self._panning = True
                self.viewport().setCursor(Qt.ClosedHandCursor)
            if self._panning:
                delta = event.pos() - self._last
                self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
                self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            self._last = event.pos()
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._press is not None:
            press, panned = self._press, self._panning
            self._press, self._panning = None, False
            self.viewport().unsetCursor()
            if not panned and event.button() == Qt.LeftButton:
                pixel = self.pixel_at(press)
                if pixel is not None:
                    self.pixelClicked.emit(pixel[0], pixel[1], event.modifiers())
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        key = event.key()
        if key in (Qt.Key_Plus, Qt.Key_Equal):
            self.zoom_in()
        elif key == Qt.Key_Minus:
            self.zoom_out()
        elif key == Qt.Key_1:
            self.actual_size()
        elif key == Qt.Key_0:
            self.fit_to_window()
        else:
            super().keyPressEvent(event)
