"""Training from the window for real (tiny TensorFlow model on simulated
CCD frames): live curves per epoch, batch progress, best epoch marked."""


import pytest
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QMessageBox

from gui.controls import AUTOSEG, SEGMENT, TRAIN
from gui.main_window import MainWindow
from gui.settings import SETTINGS_DIR_VARIABLE
from gui.training_view import TrainingView, nice_ticks


def test_training_view_marks_the_best_epoch_and_plots_iou_per_class(qtbot):
    view = TrainingView()
    qtbot.addWidget(view)
    view.start(5)
    for epoch, val_loss in enumerate([0.9, 0.5, 0.6, 0.4, 0.45], start=1):
        view.add_epoch(epoch, {"loss": val_loss + 0.1, "val_loss": val_loss, "iou_grain": 0.1,
                               "val_iou_grain": 0.5, "val_iou_background": 0.9, "learning_rate": 1e-3})
    assert view.best_epoch == 4 and view.loss_plot.marker == 4
    assert "Best epoch: 4" in view.best.text()
    assert set(view.loss_plot.series) == {"loss", "val_loss"}
    assert set(view.iou_plot.series) == {"grain", "background"}  # validation IoU, one curve per class
    assert view.iou_plot.series["grain"][0] == (1.0, 0.5)
    view.set_batch_progress(3, 12, "epoch 5/5, batch 3/12")
    assert (view.batch.value(), view.batch.maximum()) == (3, 12)
    image = view.grab().toImage()  # paints without error
    assert image.width() > 0


def test_training_view_reads_history_csv(tmp_path, qtbot):
    view = TrainingView()
    qtbot.addWidget(view)
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss,val_iou_object\n1,0.8,0.7,0.3\n"
                                          "2,0.6,0.65,0.4\n3,0.5,0.66,0.5\n")
    assert view.load_history(tmp_path / "history.csv")
    assert view.best_epoch == 2 and len(view.epochs) == 3
    assert not view.load_history(tmp_path / "missing.csv")


def test_nice_ticks():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.31, 0.52)[0] >= 0.31


def test_train_button_trains_with_live_curves(qtbot, tmp_path, monkeypatch):
    from synthetic import CCDSettings, run_simulate_ccd

    monkeypatch.setenv(SETTINGS_DIR_VARIABLE, str(tmp_path / "settings"))
    shown = []
    for kind in ("information", "warning", "critical"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(lambda *a, **k: shown.append(a[2])))
    workdir = tmp_path / "wd"
    run_simulate_ccd(workdir / "synthetic_ccd", settings=CCDSettings(count=6, size=32, seed=1))
    window = MainWindow(workdir=str(workdir))
    qtbot.addWidget(window)
    window.show()
    c = window.controls
    c.source_ccd.setChecked(True)
    c.model.set_text(str(tmp_path / "model"))
    c.epochs.setValue(2)
    c.batch.setValue(2)
    c.size.setValue(32)
    with qtbot.waitSignal(window.runner.stopped, timeout=240000):
        qtbot.mouseClick(c.buttons[TRAIN], Qt.LeftButton)
    assert shown == []
    assert window.tabs.currentWidget() is window.training
    assert [e for e, _ in window.training.epochs] == [1, 2]
    assert "val_loss" in window.training.loss_plot.series
    assert len(window.training.iou_plot.series) == 4  # background, glowing, hot pixel, cluster
    assert window.training.best_epoch in (1, 2)
    assert window.training.batch.value() == window.training.batch.maximum() > 0
    assert (tmp_path / "model" / "model.keras").is_file()
    assert "Train: finished." in window.log_view.toPlainText()
    # The trained model segments a frame, which opens in the Review tab.
    frame = sorted((workdir / "synthetic_ccd" / "images").iterdir())[0]
    c.photo.set_text(str(frame))
    with qtbot.waitSignal(window.runner.stopped, timeout=240000):
        qtbot.mouseClick(c.buttons[SEGMENT], Qt.LeftButton)
    assert shown == []
    out = workdir / "segmented"
    assert (out / f"{frame.stem}_mask.png").is_file()
    session = window.review.session
    assert session is not None and session.shape == (32, 32)
    assert window.tabs.currentWidget() is window.review
    assert window.progress.text_shown() == "Segment: done"
    assert window.results.folder == out and (out / "objects.csv").is_file()


def test_the_best_epoch_label_stays_off_the_curves(qtbot):
    """The label is written on the title line; inside the plot the best
    epoch is only its dashed line."""
    from gui.training_view import BEST_COLOUR, CurvePlot

    plot = CurvePlot("Loss")
    qtbot.addWidget(plot)
    plot.resize(420, 260)
    for epoch, value in enumerate([0.9, 0.5, 0.52, 0.55, 0.6, 0.62], start=1):
        plot.add_point("val_loss", epoch, value)
    plot.marker = 2
    image = plot.grab().toImage()
    top = plot.fontMetrics().height() + 10  # where the plot area begins

    def reds(rows):
        found = []
        for y in rows:
            for x in range(image.width()):
                c = image.pixelColor(x, y)
                if abs(c.red() - BEST_COLOUR.red()) < 40 and c.green() < 60 and c.blue() < 60:
                    found.append(x)
        return found

    inside = reds(range(top + 2, image.height() - 40))
    assert inside and max(inside) - min(inside) <= 2  # the dashed line, one column
    assert len(reds(range(0, top))) > 20  # the label, above the plot


@pytest.mark.slow  # trains a model
def test_real_frames_source_labels_trains_and_segments_the_users_fits_frames(qtbot, tmp_path, monkeypatch):
    """The user's path with his own detector: Real frames (threshold labels),
    Label my frames… on a folder of FITS frames, Train, Segment one frame:
    the labelled set in the Pool tab, a four-class model, the frame in Review
    with the detector stretch and its cluster catalogue written."""
    import numpy as np
    from astropy.io import fits
    from other_detector import other_frame

    from gui import dialogs
    from gui.controls import SYNTHESIZE

    monkeypatch.setenv(SETTINGS_DIR_VARIABLE, str(tmp_path / "settings"))
    shown = []
    for kind in ("information", "warning", "critical"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(lambda *a, **k: shown.append(a[2])))
    frames = tmp_path / "my_frames"
    frames.mkdir()
    for i in range(4):
        fits.PrimaryHDU(other_frame(np.random.default_rng(i), 64)[0].astype(np.uint16)).writeto(
            frames / f"run{i}.fits")
    monkeypatch.setattr(dialogs, "choose_folder", lambda parent, title: str(frames))
    workdir = tmp_path / "wd"
    window = MainWindow(workdir=str(workdir))
    qtbot.addWidget(window)
    window.show()
    c = window.controls
    c.source_frames.setChecked(True)
    assert c.buttons[SYNTHESIZE].text() == "Label my frames…" and not c.buttons[AUTOSEG].isEnabled()
    with qtbot.waitSignal(window.runner.stopped, timeout=60000):
        qtbot.mouseClick(c.buttons[SYNTHESIZE], Qt.LeftButton)
    assert shown == []
    assert window.pool.mode == "labelled" and window.pool.model.rowCount() == 4
    assert sorted(p.name for p in (workdir / "labelled_ccd" / "masks").iterdir()) == [
        f"run{i}.png" for i in range(4)]
    c.epochs.setValue(1)
    c.batch.setValue(2)
    c.size.setValue(64)
    with qtbot.waitSignal(window.runner.stopped, timeout=240000):
        qtbot.mouseClick(c.buttons[TRAIN], Qt.LeftButton)
    assert shown == []
    model = workdir / "model_ccd"  # the bundled photo model is never a start for a detector model
    assert c.model.text() == str(model) and (model / "model.keras").is_file()
    assert len(window.training.iou_plot.series) == 4
    c.photo.set_text(str(frames / "run0.fits"))
    with qtbot.waitSignal(window.runner.stopped, timeout=240000):
        qtbot.mouseClick(c.buttons[SEGMENT], Qt.LeftButton)
    assert shown == []
    assert window.review.session is not None and window.review.session.detector_frame
    assert (workdir / "segmented" / "run0_clusters.csv").is_file()
    assert (workdir / "segmented" / "quality.csv").is_file()
