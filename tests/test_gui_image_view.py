"""The image view: clicks land on the right image pixel at every zoom and
image shape, 16-bit and float frames are visible, overlays are drawn."""

import numpy as np
import pytest
from PyQt5.QtCore import QEvent, QPoint, QPointF, Qt
from PyQt5.QtGui import QMouseEvent
from PyQt5.QtWidgets import QApplication

from gui.image_view import ImageView, boundary, class_colour, overlay_rgba


@pytest.fixture
def view(qtbot):
    v = ImageView()
    v.resize(400, 300)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    return v


def click_pixel(qtbot, view, row, col):
    clicks = []
    view.pixelClicked.connect(lambda r, c, _m: clicks.append((r, c)))
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.viewport_pos_of(row, col))
    return clicks


@pytest.mark.parametrize("shape", [(37, 91), (120, 45), (64, 64), (9, 300)])
@pytest.mark.parametrize("zoom", [1.0, 2.0, 3.7, 8.0, 0.5, 0.3])
def test_click_maps_to_the_image_pixel(qtbot, view, shape, zoom):
    view.set_image(np.zeros(shape, np.uint8))
    view.set_zoom(zoom)
    h, w = shape
    rng = np.random.default_rng(int(zoom * 10) + h)
    # Below 1:1 a screen pixel covers several image pixels; stay that far
    # from the edges so the pixel under the click is still on the photo.
    tol = 0 if zoom >= 1 else int(np.ceil(1 / zoom))
    lo, hi = np.array([tol, tol]), np.array([h - 1 - tol, w - 1 - tol])
    checked = 0
    points = [lo, hi, (lo + hi) // 2, *rng.integers(lo, hi + 1, size=(5, 2))]
    for row, col in (tuple(int(v) for v in p) for p in points):
        view.centerOn(col + 0.5, row + 0.5)  # bring the pixel on screen
        pos = view.viewport_pos_of(row, col)
        if not view.viewport().rect().contains(pos):
            continue
        clicks = click_pixel(qtbot, view, row, col)
        assert len(clicks) == 1
        got = clicks[0]
        assert abs(got[0] - row) <= tol and abs(got[1] - col) <= tol  # exact at zoom >= 1
        checked += 1
    assert checked >= 3


def test_pixel_mapping_after_fit_matches_the_expected_scale(view):
    view.set_image(np.zeros((50, 200), np.uint16))
    vp = view.viewport().rect()
    expected = min(vp.width() / 200, vp.height() / 50)
    assert view.zoom() == pytest.approx(expected, rel=0.05)
    # The view's top-left image pixel, mapped by hand from the transform.
    t = view.viewportTransform()
    x, y = t.dx() + 0.1, t.dy() + 0.1
    assert view.pixel_at(QPoint(int(np.ceil(x)), int(np.ceil(y)))) == (0, 0)


def test_clicks_outside_the_photo_are_ignored(qtbot, view):
    view.set_image(np.zeros((20, 200), np.uint8))  # wide and thin: blank bands above and below
    clicks = []
    view.pixelClicked.connect(lambda r, c, _m: clicks.append((r, c)))
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=QPoint(200, 2))
    assert clicks == []
    assert view.pixel_at(QPoint(200, 2)) is None


def test_a_drag_pans_instead_of_clicking(qtbot, view):
    view.set_image(np.zeros((400, 400), np.uint8))
    view.set_zoom(4)
    clicks = []
    view.pixelClicked.connect(lambda r, c, _m: clicks.append((r, c)))
    before = view.horizontalScrollBar().value()
    qtbot.mousePress(view.viewport(), Qt.LeftButton, pos=QPoint(200, 150))
    # QTest's mouseMove sends no event on the offscreen platform: send real ones.
    for x in (150, 100):
        move = QMouseEvent(QEvent.MouseMove, QPointF(x, 150), Qt.NoButton, Qt.LeftButton, Qt.NoModifier)
        QApplication.sendEvent(view.viewport(), move)
    qtbot.mouseRelease(view.viewport(), Qt.LeftButton, pos=QPoint(100, 150))
    assert clicks == []
    assert view.horizontalScrollBar().value() == before + 100


def test_zoom_buttons_keys_and_limits(qtbot, view):
    view.set_image(np.zeros((100, 100), np.uint8))
    view.actual_size()
    assert view.zoom() == 1.0
    view.zoom_in()
    assert view.zoom() == pytest.approx(1.25)
    qtbot.keyClick(view, Qt.Key_Minus)
    assert view.zoom() == pytest.approx(1.0)
    for _ in range(100):
        view.zoom_in()
    assert view.zoom() == pytest.approx(64)
    qtbot.keyClick(view, Qt.Key_0)
    assert view.zoom() < 64


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_16_bit_and_float_frames_are_not_black(view, dtype):
    frame = (1000 + 30 * np.arange(60 * 80).reshape(60, 80) % 900).astype(dtype)  # a 12-bit-like range
    view.set_image(frame)
    shown = view._photo.pixmap().toImage()
    values = [shown.pixelColor(x, y).red() for x in range(0, 80, 7) for y in range(0, 60, 7)]
    assert max(values) > 200 and min(values) < 60


def test_overlay_draws_each_class_in_its_colour():
    mask = np.zeros((10, 10), np.uint8)
    mask[1:5, 1:5] = 1
    mask[6:9, 6:9] = 3
    filled = overlay_rgba(mask, outline=False)
    assert tuple(filled[2, 2, :3]) == class_colour(1)
    assert tuple(filled[7, 7, :3]) == class_colour(3)
    assert filled[0, 0, 3] == 0 and filled[2, 2, 3] > 0
    outline = overlay_rgba(mask, outline=True)
    assert outline[2, 2, 3] == 0 and outline[1, 1, 3] == 255  # inside hidden, edge drawn
    assert boundary(mask)[1, 3] and not boundary(mask)[3, 3]
    assert len({class_colour(i) for i in range(1, 30)}) == 29


def test_picked_objects_are_drawn_and_removed(view):
    view.set_image(np.zeros((30, 30), np.uint8))
    patch = np.ones((4, 5), bool)
    view.set_picked({3: (2, 6, patch), 8: (20, 20, patch)})
    assert view.picked_ids() == [3, 8]
    item = view._picked_items[3]
    assert (item.pos().x(), item.pos().y()) == (6, 2)
    view.set_picked({8: (20, 20, patch)})
    assert view.picked_ids() == [8]
    view.set_image(np.zeros((30, 30), np.uint8))
    assert view.picked_ids() == []
