"""The Pool and Results tabs, and reviewing + saving picked objects from
the window (keyboard undo included)."""

import numpy as np
import pytest
import tifffile
from PyQt5.QtCore import QItemSelectionModel, Qt
from PyQt5.QtWidgets import QMessageBox

from core.imageio import write_image
from core.workdir import WorkingDirectory
from gui.main_window import MainWindow
from gui.pool_view import PoolView
from gui.results_view import ResultsView
from gui.settings import SETTINGS_DIR_VARIABLE
from segmentation import add_objects


@pytest.fixture
def quiet(monkeypatch, tmp_path):
    monkeypatch.setenv(SETTINGS_DIR_VARIABLE, str(tmp_path / "settings"))
    shown = []
    for kind in ("information", "warning", "critical"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(lambda *a, _k=kind, **kw: shown.append((_k, a[2]))))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.Yes))
    return shown


def make_pool(workdir, n):
    """``n`` small objects in the pool of ``workdir``."""
    image = np.full((40, 40 * n), 200, np.uint8)
    labels = np.zeros(image.shape, np.int32)
    for i in range(n):
        labels[10:30, 40 * i + 10:40 * i + 30] = i + 1
        image[labels == i + 1] = 40
    return add_objects(workdir, image, labels, range(1, n + 1), source_image="p.png", margin=2)


def test_pool_thumbnails_load_lazily_and_bad_objects_can_be_deleted(qtbot, tmp_path, quiet):
    names = make_pool(tmp_path / "wd", 400)
    view = PoolView()
    view.resize(500, 400)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    view.set_workdir(tmp_path / "wd")
    assert view.model.rowCount() == 400 and "400 objects" in view.count.text()
    captions = [view.model.data(view.model.index(i), Qt.DisplayRole) for i in range(400)]
    assert len(set(captions)) == 400  # the photo and the number: no two objects look alike
    assert captions[0].endswith(" #1") and names[0] in view.model.data(view.model.index(0), Qt.ToolTipRole)
    qtbot.waitUntil(lambda: view.model.requested > 0, timeout=5000)
    assert view.model.wait_idle()
    qtbot.waitUntil(lambda: len(view.model._cache) == view.model.requested, timeout=5000)
    assert 0 < view.model.requested < 100  # only what is on screen
    first = view.model.data(view.model.index(0), Qt.DecorationRole)
    assert first.width() == 96 or first.height() == 96
    image = first.toImage()
    assert any(image.pixelColor(x, y).red() > 200 and image.pixelColor(x, y).green() < 80
               for x in range(first.width()) for y in range(first.height()))  # red mask outline

    deleted = []
    view.deleteRequested.connect(deleted.append)
    sel = view.list.selectionModel()
    for row in (0, 2):
        sel.select(view.model.index(row), QItemSelectionModel.Select)
    assert view.delete_button.isEnabled()
    view.delete_button.click()
    assert deleted == [[names[0], names[2]]]


def test_synthetic_preview_pairs_images_and_masks_by_name(qtbot, tmp_path, quiet):
    syn = WorkingDirectory(tmp_path / "wd").ensure()
    for stem in ("b", "a"):
        write_image(syn.synthetic_images / f"{stem}.png", np.zeros((16, 16), np.uint8))
    write_image(syn.synthetic_masks / "a.png", np.ones((16, 16), np.uint8))
    view = PoolView()
    qtbot.addWidget(view)
    view.set_workdir(syn.root)
    view.set_mode("synthetic")
    assert [(n, m.name if m else None) for n, _i, m in view.model.items] == [("a.png", "a.png"), ("b.png", None)]
    assert not view.delete_button.isVisible()


def test_results_table_sorts_numbers_as_numbers_and_filters(qtbot, tmp_path):
    out = tmp_path / "segmented"
    out.mkdir()
    (out / "objects.csv").write_text("image,object,area_px\nx.png,1,100\nx.png,2,9\ny.png,1,25\n")
    (out / "summary.csv").write_text("image,count\nx.png,2\ny.png,1\n")
    write_image(out / "size_histogram.png", np.full((50, 80, 3), 128, np.uint8))
    view = ResultsView()
    qtbot.addWidget(view)
    assert view.load(out)
    assert view.row_count == 3 and "3 objects" in view.heading.text()
    view.table.sortByColumn(2, Qt.AscendingOrder)
    areas = [view.proxy.index(r, 2).data() for r in range(3)]
    assert areas == ["9", "25", "100"]  # as text, "100" would come first
    view.filter.setText("y.png")
    assert view.row_count == 1
    assert view.histogram.picture is not None and view.histogram.pixmap() is not None
    assert not view.load(tmp_path / "empty")


def test_review_from_the_window_pick_save_and_ctrl_z(qtbot, tmp_path, quiet):
    photo = np.full((50, 70), 180, np.uint8)
    classes = np.zeros((50, 70), np.uint8)
    classes[5:15, 5:15] = 1
    classes[30:45, 40:60] = 1
    classes[34:40, 45:55] = 0  # a hole
    photo[classes > 0] = 60
    write_image(tmp_path / "shot.png", photo)
    out = tmp_path / "wd" / "segmented"
    write_image(out / "shot_mask.png", classes)
    tifffile.imwrite(out / "shot_labels.tif", (classes > 0).astype(np.int32) * np.where(
        np.arange(70) < 30, 1, 2)[None, :])

    window = MainWindow(workdir=str(tmp_path / "wd"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    window.controls.photo.set_text(str(tmp_path / "shot.png"))
    window.controls.model.set_text(str(tmp_path))
    with qtbot.waitSignal(window.runner.stopped, timeout=10000):
        window.open_review()
    review = window.review
    assert window.tabs.currentWidget() is review and review.session.object_count == 2
    logged = [line.split("  ", 1)[-1] for line in window.log_view.toPlainText().splitlines()]
    assert "None" not in logged and "Opened shot.png for review (2 objects)." in logged
    view = review.view

    def click(row, col):
        qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.viewport_pos_of(row, col))

    click(0, 0)
    assert review.session.class_mask[36, 50] == 1  # hole filled
    review.pick_button.click()
    click(10, 10)
    click(36, 50)
    assert view.picked_ids() == [1, 2]
    window.activateWindow()
    qtbot.waitActive(window)
    qtbot.keyClick(view, Qt.Key_Z, Qt.ControlModifier)
    assert view.picked_ids() == [1]
    assert "Undid the last pick." in window.log_view.toPlainText()

    with qtbot.waitSignal(window.runner.stopped, timeout=10000):
        qtbot.mouseClick(review.save_button, Qt.LeftButton)
    wd = WorkingDirectory(tmp_path / "wd")
    assert len(wd.pool_files()) == 1
    rows = wd.read_index()
    assert [r["origin"] for r in rows] == ["picked"] and rows[0]["source_image"] == "shot.png"
    assert "Saved 1 picked object to the pool." in review.status.text()
    assert view.picked_ids() == [] and not review.save_button.isEnabled()
    assert quiet == []


def test_deleting_pool_objects_from_the_window_asks_first(qtbot, tmp_path, quiet, monkeypatch):
    names = make_pool(tmp_path / "wd", 3)
    window = MainWindow(workdir=str(tmp_path / "wd"))
    qtbot.addWidget(window)
    window.show()
    pool = window.pool
    assert pool.model.rowCount() == 3
    pool.list.selectionModel().select(pool.model.index(1), QItemSelectionModel.Select)
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.No))
    pool.delete_button.click()
    assert not window.runner.running and len(WorkingDirectory(tmp_path / "wd").pool_files()) == 3
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.Yes))
    with qtbot.waitSignal(window.runner.stopped, timeout=10000):
        pool.delete_button.click()
    wd = WorkingDirectory(tmp_path / "wd")
    assert wd.pool_files() == [names[0], names[2]]
    assert [r["file"] for r in wd.read_index()] == [names[0], names[2]]
    assert pool.model.rowCount() == 2 and "Deleted 1 object from the pool." in window.log_view.toPlainText()
