"""The Scale box: a typed pixel size or two clicks on a scale bar plus its
length, stored in <workdir>/calibration.json, shown, reloaded by a new
window; bad values give one message naming the field. Message boxes and the
length dialog are driven by the test, never shown."""

import json

import numpy as np
import pytest
from PyQt5.QtCore import Qt

from core.imageio import write_image
from gui.calibration_panel import NOT_CALIBRATED, ScaleBarDialog
from helpers import open_window, record_message_boxes


@pytest.fixture
def boxes(tmp_path, monkeypatch):
    return record_message_boxes(monkeypatch, tmp_path / "settings")


def answer_length(monkeypatch, length, unit="µm"):
    """The length dialog, answered as a user would: type, press OK."""
    asked = []

    def exec_(self):
        asked.append(self)
        self.length.setText(length)
        self.unit.setCurrentText(unit)
        self.accept()
        return self.result()
    monkeypatch.setattr(ScaleBarDialog, "exec_", exec_)
    return asked


def bar_photo(folder):
    """A gray photo with a white scale bar from x=20 to x=119 on row 90."""
    photo = np.full((100, 140), 90, np.uint8)
    photo[88:93, 20:120] = 255
    write_image(folder / "bar.png", photo)
    return folder / "bar.png"


def click(qtbot, view, row, col):
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=view.viewport_pos_of(row, col))


def test_typed_pixel_size_is_stored_shown_and_reloaded(qtbot, tmp_path, boxes):
    wd = tmp_path / "wd"
    window = open_window(qtbot, wd)
    panel = window.controls.calibration
    assert panel.shown.text() == NOT_CALIBRATED and window.calibration.segment_values() == {}
    panel.size.setText("0.52")
    panel.unit.setCurrentText("µm")
    qtbot.mouseClick(panel.set_button, Qt.LeftButton)
    data = json.loads((wd / "calibration.json").read_text(encoding="utf-8"))
    assert data["pixel_size"] == pytest.approx(0.52) and data["unit"] == "µm" and data["source"] == "typed"
    assert panel.shown.text() == "1 px = 0.52 µm"
    assert window.calibration.status_label.text() == "Scale: 1 px = 0.52 µm"  # status bar
    given = window.calibration.segment_values()["calibration"]
    assert (given.pixel_size, given.unit) == (pytest.approx(0.52), "µm")
    window.close()

    again = open_window(qtbot, wd)
    panel = again.controls.calibration
    assert panel.shown.text() == "1 px = 0.52 µm" and panel.size.text() == "0.52"
    assert again.calibration.segment_values()["calibration"].pixel_size == pytest.approx(0.52)
    panel.size.setText("2,5")  # decimal comma, confirmed with Enter
    panel.unit.setCurrentText("nm")
    qtbot.keyClick(panel.size, Qt.Key_Return)
    data = json.loads((wd / "calibration.json").read_text(encoding="utf-8"))
    assert (data["pixel_size"], data["unit"]) == (pytest.approx(2.5), "nm")
    assert again.calibration.status_label.text() == "Scale: 1 px = 2.5 nm"
    assert boxes == []


def test_bad_pixel_sizes_name_the_field_and_store_nothing(qtbot, tmp_path, boxes):
    wd = tmp_path / "wd"
    window = open_window(qtbot, wd)
    panel = window.controls.calibration
    for text, expected in (("", "Pixel size: the field is empty"),
                           ("0", "pixel size must be a positive number"),
                           ("-0.3", "pixel size must be a positive number"),
                           ("abc", "pixel size must be a number")):
        before = len(boxes)
        panel.size.setText(text)
        qtbot.mouseClick(panel.set_button, Qt.LeftButton)
        assert len(boxes) == before + 1, text  # one message per mistake
        kind, message = boxes[-1]
        assert kind == "warning" and expected in message, (text, message)
    assert not (wd / "calibration.json").exists()
    assert panel.shown.text() == NOT_CALIBRATED
    # The window stays usable.
    with qtbot.waitSignal(window.runner.stopped, timeout=10000):
        window.run_job("Quick", lambda progress: progress.update(1, 1))
    assert window.progress.text_shown() == "Quick: done"


def test_scale_bar_by_two_clicks_and_its_length(qtbot, tmp_path, boxes, monkeypatch):
    wd = tmp_path / "wd"
    window = open_window(qtbot, wd)
    window.controls.photo.set_text(str(bar_photo(tmp_path)))
    panel, review = window.controls.calibration, window.review
    asked = answer_length(monkeypatch, "50", "µm")
    with qtbot.waitSignal(window.runner.stopped, timeout=10000):
        qtbot.mouseClick(panel.measure_button, Qt.LeftButton)  # the photo is read in a worker
    assert window.tabs.currentWidget() is review and review.view.image_shape == (100, 140)
    assert "click one end" in review.status.text()
    click(qtbot, review.view, 90, 20)
    assert review.view.marks_count() == 2  # a cross at the first end
    click(qtbot, review.view, 90, 20)  # the same point again
    assert len(boxes) == 1 and "same point" in boxes[0][1] and asked == []
    click(qtbot, review.view, 90, 120)
    assert len(asked) == 1 and "100.0 pixels" in asked[0].info.text()
    data = json.loads((wd / "calibration.json").read_text(encoding="utf-8"))
    assert data["source"] == "scale bar" and data["unit"] == "µm"
    assert data["pixel_size"] == pytest.approx(0.5)  # 50 µm over 100 pixels
    assert data["scale_bar"]["length_px"] == pytest.approx(100.0)
    assert panel.shown.text() == "1 px = 0.5 µm" and "50 µm over 100.0 pixels" in panel.shown.toolTip()
    assert "Scale set from the scale bar" in review.status.text()
    assert not panel.measure_button.isChecked() and review.capture is None
    assert review.view.marks_count() == 0 and len(boxes) == 1
    window.close()

    again = open_window(qtbot, wd)
    assert again.controls.calibration.shown.text() == "1 px = 0.5 µm"
    assert "scale bar" in again.calibration.status_label.toolTip()
    given = again.calibration.segment_values()["calibration"]
    assert (given.pixel_size, given.unit) == (pytest.approx(0.5), "µm")


def test_bad_scale_bar_length_is_explained_and_nothing_stored(qtbot, tmp_path, boxes, monkeypatch):
    wd = tmp_path / "wd"
    window = open_window(qtbot, wd)
    window.controls.photos.set_text(str(tmp_path))  # the first photo of the folder is measured
    bar_photo(tmp_path)
    panel, review = window.controls.calibration, window.review
    for length, expected in (("0", "scale bar length must be a positive number"),
                             ("", "Scale bar length: the field is empty")):
        answer_length(monkeypatch, length)
        if review.view.image_shape is None:
            with qtbot.waitSignal(window.runner.stopped, timeout=10000):
                panel.measure_button.click()
        else:
            panel.measure_button.click()  # the photo shown is measured
        click(qtbot, review.view, 90, 20)
        click(qtbot, review.view, 90, 120)
        assert expected in boxes[-1][1], boxes
        assert not panel.measure_button.isChecked()  # the dialog was not accepted: measurement over
    assert len(boxes) == 2
    assert not (wd / "calibration.json").exists() and panel.calibration is None
    assert "cancelled" in window.log_view.toPlainText()


def test_measuring_without_a_photo_names_the_field(qtbot, tmp_path, boxes):
    window = open_window(qtbot, tmp_path / "wd")
    window.controls.photo.set_text("")
    window.controls.photos.set_text("")
    window.controls.calibration.measure_button.click()
    assert len(boxes) == 1 and boxes[0][1].startswith("Photo to segment")
    assert not window.controls.calibration.measure_button.isChecked() and not window.runner.running


def test_unreadable_calibration_file_is_reported_and_pixels_are_used(qtbot, tmp_path, boxes):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "calibration.json").write_text("{not json", encoding="utf-8")
    window = open_window(qtbot, wd)
    panel = window.controls.calibration
    assert "unreadable" in panel.shown.text() and "pixels" in panel.shown.text()
    assert str(wd / "calibration.json") in panel.shown.toolTip()
    assert "unreadable" in window.log_view.toPlainText()
    assert window.calibration.segment_values() == {}
    panel.size.setText("1.5")
    panel.set_button.click()  # a new scale replaces the broken file
    assert json.loads((wd / "calibration.json").read_text(encoding="utf-8"))["pixel_size"] == 1.5
    assert boxes == []


def test_a_pixel_size_in_the_photo_is_used_until_one_is_set(qtbot, tmp_path, boxes):
    """A photo whose TIFF carries its pixel size (ImageJ metadata), the
    Segment button with the fields as they come: without a scale set the
    objects are measured in its unit and the log says where it came from;
    a typed scale then wins."""
    import tifffile
    from PyQt5.QtCore import Qt

    from gui.controls import SEGMENT
    from synthetic.scenes import render_particle_scene

    image, _ = render_particle_scene((96, 128), count=6, polarity="dark", seed=1)
    photo = tmp_path / "sem.tif"
    tifffile.imwrite(photo, image, imagej=True, resolution=(4.0, 4.0), metadata={"unit": "micron"})
    w = open_window(qtbot, tmp_path / "wd")
    w.controls.photo.set_text(str(photo))
    out = tmp_path / "wd" / "segmented"
    with qtbot.waitSignal(w.runner.stopped, timeout=240000):
        qtbot.mouseClick(w.controls.buttons[SEGMENT], Qt.LeftButton)
    assert "equivalent_diameter_um" in (out / "objects.csv").read_text().splitlines()[0]
    assert "ImageJ metadata" in w.log_view.toPlainText()
    w.controls.calibration.size.setText("2")
    w.controls.calibration.unit.setCurrentText("nm")
    assert w.controls.calibration.apply_typed()
    with qtbot.waitSignal(w.runner.stopped, timeout=240000):
        qtbot.mouseClick(w.controls.buttons[SEGMENT], Qt.LeftButton)
    header = (out / "objects.csv").read_text().splitlines()[0]
    assert "equivalent_diameter_nm" in header and "equivalent_diameter_um" not in header
    assert boxes == []
