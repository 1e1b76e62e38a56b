"""The Scale box: how long one pixel is, typed or measured on the scale bar
burned into a photo.

The scale is kept per working directory (``<workdir>/calibration.json``,
through :mod:`measurement.calibration`), shown in the window ("1 px =
0.52 µm") and passed to segmentation, so that sizes are reported in nm, µm
or mm instead of pixels. Measuring a scale bar: press *Measure scale bar*,
click both ends of the bar in the Review tab's photo, type the length
printed on it.
"""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import QObject, pyqtSignal
from PyQt5.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from core.errors import UserInputError
from gui import dialogs
from measurement.calibration import (
    UNITS,
    Calibration,
    calibration_from_pixel_size,
    calibration_from_scale_bar,
    load_calibration,
    save_calibration,
)

NOT_CALIBRATED = "not set: sizes in pixels"


def describe(calibration: Calibration | None) -> str:
    """"1 px = 0.52 µm", the way the window shows a scale."""
    if calibration is None:
        return NOT_CALIBRATED
    return f"1 px = {calibration.pixel_size:.4g} {calibration.unit}"


def origin(calibration: Calibration | None) -> str:
    """Where the scale came from, for tooltips."""
    if calibration is None:
        return "No scale is set: sizes are measured in pixels."
    if calibration.source == "scale bar" and calibration.scale_bar:
        bar = calibration.scale_bar
        return (f"Measured on a scale bar: {bar.get('length', 0):g} {calibration.unit} over "
                f"{bar.get('length_px', 0):.1f} pixels.")
    if calibration.source not in ("typed", "scale bar"):
        return f"Read from the photo's {calibration.source}."
    return "Typed pixel size."


def _number_text(text: str) -> str:
    return text.strip().replace(",", ".")  # "0,52" as typed with a decimal comma


def typed_calibration(text: str, unit: str) -> Calibration:
    """The calibration for a typed pixel size; :class:`UserInputError` names the field."""
    if not text.strip():
        raise UserInputError("Pixel size: the field is empty. Type the length of one pixel side "
                             "(from the microscope's metadata), or measure the scale bar.")
    return calibration_from_pixel_size(_number_text(text), unit)


def bar_calibration(p0, p1, text: str, unit: str) -> Calibration:
    """The calibration for a scale bar from ``p0`` to ``p1`` (x, y) that is
    ``text`` long; :class:`UserInputError` names the field."""
    if not text.strip():
        raise UserInputError("Scale bar length: the field is empty. Type the length printed on the bar.")
    return calibration_from_scale_bar(p0, p1, _number_text(text), unit)


def _unit_box(unit: str) -> QComboBox:
    box = QComboBox()
    box.addItems(list(UNITS))
    box.setCurrentText(unit if unit in UNITS else "µm")
    return box


class CalibrationPanel(QGroupBox):
    """The Scale box of the left-hand panel.

    Signals
    -------
    problem(text) : a value to fix, in one sentence naming the field.
    changed(calibration) : a new scale was stored in the working directory.
    measureToggled(on) : *Measure scale bar* pressed or released.
    """

    problem = pyqtSignal(str)
    changed = pyqtSignal(object)
    measureToggled = pyqtSignal(bool)

    def __init__(self, parent=None) -> None:
        super().__init__("Scale", parent)
        self.workdir: Path | None = None
        self.calibration: Calibration | None = None
        self.size = QLineEdit()
        self.size.setPlaceholderText("e.g. 0.52")
        self.size.setToolTip("Length of one pixel side, from the microscope's metadata. Press Enter or "
                             "Set to store it in the working directory.")
        self.unit = _unit_box("µm")
        self.unit.setToolTip("Unit of the pixel size; measurements are reported in it")
        self.set_button = QPushButton("Set")
        self.set_button.setToolTip("Store this pixel size in the working directory (calibration.json)")
        self.measure_button = QPushButton("Measure scale bar…")
        self.measure_button.setCheckable(True)
        self.measure_button.setToolTip("Click both ends of the scale bar burned into the photo (Review "
                                       "tab), then type the length printed on it. Press again to stop.")
        self.shown = QLabel(NOT_CALIBRATED)
        self.shown.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.size, 1)
        row.addWidget(self.unit)
        row.addWidget(self.set_button)
        measure = QHBoxLayout()
        measure.addWidget(self.measure_button)
        measure.addWidget(self.shown, 1)
        form = QFormLayout(self)
        form.addRow("Pixel size", row)
        form.addRow(measure)
        self.size.returnPressed.connect(self.apply_typed)
        self.set_button.clicked.connect(self.apply_typed)
        self.measure_button.toggled.connect(self.measureToggled)

    def set_workdir(self, workdir: str | Path | None) -> str | None:
        """Show the scale stored in ``workdir``; returns what is wrong with
        its calibration.json, or None (segmentation then uses pixels)."""
        self.workdir = Path(workdir) if workdir else None
        calibration, problem = None, None
        if self.workdir is not None:
            try:
                calibration = load_calibration(self.workdir)
            except UserInputError as exc:
                problem = str(exc)
        self._show(calibration, problem)
        return problem

    def apply_typed(self) -> bool:
        """Store the typed pixel size; False (with a message) if it is unusable."""
        try:
            calibration = typed_calibration(self.size.text(), self.unit.currentText())
        except UserInputError as exc:
            self.problem.emit(str(exc))
            self.size.setFocus()
            return False
        return self.store(calibration)

    def store(self, calibration: Calibration) -> bool:
        if self.workdir is None:
            self.problem.emit("Working directory: the field is empty. The scale is kept in the working "
                              "directory: choose one first.")
            return False
        try:
            save_calibration(self.workdir, calibration)
        except OSError as exc:
            self.problem.emit(f"The scale could not be saved in {self.workdir} ({exc}).")
            return False
        self._show(calibration)
        self.changed.emit(calibration)
        return True

    def segment_values(self) -> dict:
        """The calibration for the segment stage ({} when not calibrated)."""
        return {} if self.calibration is None else {"calibration": self.calibration}

    def set_busy(self, busy: bool) -> None:
        self.measure_button.setEnabled(not busy or self.measure_button.isChecked())

    def _show(self, calibration: Calibration | None, problem: str | None = None) -> None:
        self.calibration = calibration
        if calibration is not None:
            self.size.setText(f"{calibration.pixel_size:.6g}")
            self.unit.setCurrentText(calibration.unit)
        self.shown.setText("calibration.json unreadable: sizes in pixels" if problem else describe(calibration))
        self.shown.setToolTip(f"{problem} Set a scale to replace it." if problem else origin(calibration))
        self.shown.setStyleSheet("color: #b00020;" if problem else "")


class ScaleBarDialog(QDialog):
    """Asks how long the clicked scale bar is; ``calibration`` holds the
    result once accepted (a bad length is explained and the dialog stays)."""

    def __init__(self, p0, p1, unit: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Scale bar length")
        self.p0, self.p1 = p0, p1
        self.calibration: Calibration | None = None
        pixels = ((p1[0] - p0[0]) ** 2 + (p1[1] - p0[1]) ** 2) ** 0.5
        self.info = QLabel(f"The bar you clicked is {pixels:.1f} pixels long. Type the length printed on it.")
        self.info.setWordWrap(True)
        self.length = QLineEdit()
        self.length.setPlaceholderText("e.g. 500")
        self.unit = _unit_box(unit)
        row = QHBoxLayout()
        row.addWidget(self.length, 1)
        row.addWidget(self.unit)
        form = QFormLayout()
        form.addRow("Scale bar length", row)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def accept(self) -> None:
        try:
            self.calibration = bar_calibration(self.p0, self.p1, self.length.text(), self.unit.currentText())
        except UserInputError as exc:
            dialogs.warn(self, "Check the scale bar length", str(exc))
            self.length.setFocus()
            return
        super().accept()


class ScaleBarTool(QObject):
    """Two clicks on the photo of the Review tab: the ends of the scale bar.

    Signals
    -------
    measured(p0, p1) : both ends, (x, y) at the clicked pixels' centres.
    problem(text) : the second click is not a usable end.
    status(text) : what to click next.
    """

    measured = pyqtSignal(object, object)
    problem = pyqtSignal(str)
    status = pyqtSignal(str)

    def __init__(self, review, parent=None) -> None:
        super().__init__(parent)
        self.review = review
        self.points: list[tuple[float, float]] = []
        self.active = False

    def start(self) -> None:
        self.active, self.points = True, []
        self.review.capture = self._clicked
        self.review.view.set_marks([])
        self.status.emit("Scale bar: click one end of the bar in the photo (the mouse wheel zooms in "
                         "for a precise click).")

    def stop(self) -> None:
        if self.review.capture == self._clicked:
            self.review.capture = None
        self.active, self.points = False, []
        self.review.view.set_marks([])

    def _clicked(self, row: int, col: int) -> None:
        point = (col + 0.5, row + 0.5)
        if len(self.points) == 1:
            try:  # the two ends alone decide whether the bar is usable
                calibration_from_scale_bar(self.points[0], point, 1.0)
            except UserInputError as exc:
                self.problem.emit(f"{exc} Click the other end of the bar.")
                return
            self.points.append(point)
            self.review.view.set_marks(self.points)
            self.status.emit("Scale bar: both ends clicked; type the length printed on the bar.")
            self.measured.emit(self.points[0], self.points[1])
            return
        self.points = [point]
        self.review.view.set_marks(self.points)
        self.status.emit("Scale bar: now click the other end of the bar.")


class CalibrationController(QObject):
    """Connects the Scale box to the main window: loads the working
    directory's scale, shows it in the status bar, runs the scale bar
    measurement on the Review tab's photo and passes the scale to
    segmentation."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.panel: CalibrationPanel = window.controls.calibration
        self.tool = ScaleBarTool(window.review, self)
        self.status_label = QLabel()
        # A rule and some room keep long status messages from running into it.
        self.status_label.setStyleSheet("QLabel { padding: 0 6px; border-left: 1px solid #a0a0a0; }")
        window.statusBar().addPermanentWidget(self.status_label)
        self.panel.problem.connect(self._problem)
        self.panel.changed.connect(self._changed)
        self.panel.measureToggled.connect(self._measure_toggled)
        self.tool.problem.connect(self._problem)
        self.tool.status.connect(self._status)
        self.tool.measured.connect(self._ask_length)
        window.controls.workdir.edit.editingFinished.connect(self.load)

    # -- the working directory's scale --------------------------------------------
    def load(self) -> None:
        problem = self.panel.set_workdir(self.window.controls.workdir.text() or None)
        if problem:
            self.window.log(problem)
        self._show_status(self.panel.calibration)

    def _show_status(self, calibration: Calibration | None) -> None:
        self.status_label.setText(f"Scale: {describe(calibration)}")
        self.status_label.setToolTip(origin(calibration) + " Change it in the Scale box on the left.")

    def segment_values(self) -> dict:
        """The scale of the working directory in the field, for the segment stage."""
        text = self.window.controls.workdir.text()
        if text and self.panel.workdir != Path(text):
            self.load()
        values = self.panel.segment_values()
        if not values:
            self.window.log("No scale is set: sizes are measured in pixels, or in the pixel size the photos "
                            "carry in their metadata (set one in the Scale box to decide).")
        return values

    def _changed(self, calibration: Calibration) -> None:
        self._show_status(calibration)
        self.window.log(f"Scale set: {describe(calibration)}, stored in {self.panel.workdir}. "
                        "Segment again to measure in this unit.")

    def _problem(self, text: str) -> None:
        self.window.log(text)
        self.window.message("warn", "Check the scale", text)

    def _status(self, text: str) -> None:
        self.window.review.status.setText(text)
        self.window.show_status(text, 15000)

    # -- measuring a scale bar ----------------------------------------------------
    def _measure_toggled(self, on: bool) -> None:
        if not on:
            self.tool.stop()
            return
        w = self.window
        w.tabs.setCurrentWidget(w.review)
        if w.review.view.image_shape is not None:
            self.tool.start()
            return
        photo = self._photo_to_measure()
        if photo is None:
            self.panel.measure_button.setChecked(False)
            self._problem("Photo to segment: choose a photo (or a Photos folder) first; the scale bar "
                          "is measured on it.")
            return
        from gui import stages

        if not w.run_job("Open photo for the scale bar", stages.read_photo_job, str(photo),
                         on_done=self._photo_read):
            self.panel.measure_button.setChecked(False)

    def _photo_to_measure(self) -> Path | None:
        from gui.stages import first_photo

        c = self.window.controls
        for field in (c.photo, c.photos):
            if field.text() and Path(field.text()).exists():
                photo = first_photo(field.text())
                if photo is not None:
                    return photo
        return None

    def _photo_read(self, image) -> None:
        if not self.panel.measure_button.isChecked():
            return  # stopped meanwhile
        self.window.review.view.set_image(image)
        self.tool.start()

    def _ask_length(self, p0, p1) -> None:
        dialog = ScaleBarDialog(p0, p1, self.panel.unit.currentText(), self.window)
        accepted = dialog.exec_() == QDialog.Accepted and dialog.calibration is not None
        self.panel.measure_button.setChecked(False)  # ends the measurement
        if accepted and self.panel.store(dialog.calibration):
            self._status(f"Scale set from the scale bar: {describe(dialog.calibration)}.")
        elif not accepted:
            self._status("Scale bar measurement cancelled; the scale is unchanged.")
            self.window.log("Scale bar measurement cancelled; the scale is unchanged.")
