"""The left-hand panel: folders, the few settings a user needs, and the
stage buttons, with validation that names the field to fix."""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import QSettings, pyqtSignal
from PyQt5.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.fits import split_unit
from core.imageio import IMAGE_EXTENSIONS
from core.model_folder import ModelFolder
from core.workdir import WorkingDirectory
from gui.calibration_panel import CalibrationPanel
from gui.settings import read_value
from loop.settings import RefineSettings
from synthetic.settings import SynthesisSettings
from training.settings import TrainSettings

AUTOSEG, SYNTHESIZE, TRAIN, SEGMENT = "autoseg", "synthesize", "train", "segment"
SEGMENT_ALL, REFINE = "segment_all", "refine"
REVIEW = "review"  # opening a segmented photo: no model needed
PHOTOS_SOURCE, CCD_SOURCE, FRAMES_SOURCE = "photos", "ccd", "frames"
DETECTOR_SOURCES = (CCD_SOURCE, FRAMES_SOURCE)  # training data of a detector model
SYNTHESIZE_ACTIONS = {PHOTOS_SOURCE: "Create synthetic data", CCD_SOURCE: "Simulate CCD frames",
                      FRAMES_SOURCE: "Label my frames"}
STAGE_TITLES = {AUTOSEG: "Auto-segment", SYNTHESIZE: "Create synthetic data", TRAIN: "Train",
                SEGMENT: "Segment", SEGMENT_ALL: "Segment folder", REFINE: "Improve model"}


class PathField(QWidget):
    """A path line edit with a Browse… button (folder or image file)."""

    def __init__(self, label: str, *, kind: str, tip: str, parent=None) -> None:
        super().__init__(parent)
        self.label, self.kind = label, kind
        self.edit = QLineEdit()
        self.edit.setToolTip(tip)
        self.edit.setPlaceholderText("choose a file or folder…" if kind == "file" else "choose a folder…")
        self.button = QPushButton("Browse…")
        self.button.setToolTip(f"Choose the {label.lower()}")
        self.button.clicked.connect(self.browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.button)

    def text(self) -> str:
        return self.edit.text().strip()

    def set_text(self, text: str) -> None:
        self.edit.setText(text)

    def browse(self) -> None:
        start = self.text() or str(Path.home())
        if self.kind == "file":
            pattern = "Images (" + " ".join(f"*{e}" for e in IMAGE_EXTENSIONS) + ");;All files (*)"
            path, _ = QFileDialog.getOpenFileName(self, f"Choose the {self.label.lower()}", start, pattern)
        else:
            path = QFileDialog.getExistingDirectory(self, f"Choose the {self.label.lower()}", start)
        if path:
            self.edit.setText(path)
            self.edit.editingFinished.emit()  # the window reloads what depends on the folder

    def mark(self, bad: bool) -> None:
        self.edit.setStyleSheet("border: 2px solid #d04040;" if bad else "")


def _spin(low: int, high: int, value: int, tip: str, step: int = 1) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setValue(value)
    spin.setToolTip(tip)
    spin.setAccelerated(True)
    return spin


class ControlsPanel(QWidget):
    """Emits ``stageRequested(stage)`` when a stage button is pressed."""

    stageRequested = pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.photos = PathField("Photos folder", kind="dir",
                                tip="The folder holding your unlabelled photos (any size, 8/16-bit, "
                                    "gray or colour). They are only read, never changed.")
        self.workdir = PathField("Working directory", kind="dir",
                                 tip="Where this project's object pool, synthetic images and results "
                                     "go (created if missing).")
        self.model = PathField("Model folder", kind="dir",
                               tip="Where the trained model is saved (Train) and read from (Segment).")
        self.photo = PathField("Photo to segment", kind="file",
                               tip="One photo (or a folder of photos) to segment with the model; "
                                   "a single photo opens in the Review tab afterwards.")
        self.source_photos = QRadioButton("Objects from my photos")
        self.source_photos.setToolTip("Auto-segment your photos into an object pool, then composite "
                                      "synthetic training images from it")
        self.source_ccd = QRadioButton("Simulated CCD frames")
        self.source_ccd.setToolTip("Simulate detector frames (glowing, hot pixels, clusters) with exact "
                                   "labels; the simulator's settings open in a dialog")
        self.source_frames = QRadioButton("Real frames (threshold labels)")
        self.source_frames.setToolTip("Label a folder of your own detector frames (FITS, TIFF, …) by "
                                      "thresholds in each frame's noise sigma, no model needed, and train "
                                      "on them: a baseline on your own detector")
        self.sources = QButtonGroup(self)
        self.sources.addButton(self.source_photos)
        self.sources.addButton(self.source_ccd)
        self.sources.addButton(self.source_frames)
        self.source_photos.setChecked(True)
        self.polarity = QComboBox()
        for text, value in (("detect automatically", "auto"), ("darker than background", "dark"),
                            ("brighter than background", "bright")):
            self.polarity.addItem(text, value)
        self.polarity.setToolTip("Are the objects darker or brighter than the background?")
        synthesis, training = SynthesisSettings(), TrainSettings()  # the defaults the command line uses too
        self.count = _spin(1, 100_000, synthesis.count, "How many synthetic training images (or CCD frames) to create")
        self.size = _spin(32, 4096, synthesis.size, "Side in pixels of each synthetic image (square); training "
                                         "uses patches of this side (rounded down to a multiple of 32)",
                          step=32)
        self.objects = _spin(0, 1000, 0, "How many pool objects are pasted into each synthetic image; "
                                         "auto: as many as auto-segmentation saw in your photos")
        self.objects.setSpecialValueText("auto")
        self.epochs = _spin(1, 10_000, training.epochs, "Passes over the training images; training stops early when "
                                           "the validation loss stops improving")
        self.batch = _spin(1, 512, training.batch_size, "Images per training step; lower it if memory runs short")
        self.seed = _spin(0, 2_147_483_647, 0, "Random seed: the same seed gives the same synthetic data "
                                               "and training")
        self.rounds = _spin(1, 100, 1, "How many self-training rounds to run one after the other")
        rounds = RefineSettings()  # what a round does by default, as on the command line
        self.round_epochs = _spin(1, 10_000, rounds.epochs, "Training epochs each self-training round adds")
        self.round_count = _spin(1, 100_000, rounds.synthetic_count,
                                 "Synthetic images each self-training round composites from the pool")
        self.calibration = CalibrationPanel()

        self.buttons = {
            AUTOSEG: QPushButton("Auto-segment photos"),
            SYNTHESIZE: QPushButton("Create synthetic data"),
            TRAIN: QPushButton("Train"),
            SEGMENT: QPushButton("Segment"),
            SEGMENT_ALL: QPushButton("Segment all photos"),
            REFINE: QPushButton("Improve model (self-training round)"),
        }
        tips = {AUTOSEG: "Find confident objects in the photos (no learning) and save them into the pool",
                SYNTHESIZE: "Composite training images from the pool, or simulate CCD frames",
                TRAIN: "Train the U-Net on the synthetic images; the best epoch is kept",
                SEGMENT: "Segment the photo with the model, measure the objects and open it for review",
                SEGMENT_ALL: "Segment every photo of the photos folder with the model into "
                             "<working directory>/segmented and show the measurements of all of them",
                REFINE: "One self-training round: segments the photos with the current model, adds the "
                        "objects it is sure of to the pool, composites new synthetic images (as many as "
                        "'Synthetic images') and retrains the model for 'Epochs' more epochs. The photos "
                        "are segmented again at the end. A bundled model is copied into the working "
                        "directory first and improved there."}
        for key, button in self.buttons.items():
            button.setToolTip(tips[key])
            button.clicked.connect(lambda _=False, k=key: self.stageRequested.emit(k))

        folders = QGroupBox("Folders")
        f = QFormLayout(folders)
        f.addRow("Photos folder", self.photos)
        f.addRow("Working directory", self.workdir)
        f.addRow("Model folder", self.model)

        data = QGroupBox("Training data")
        d = QFormLayout(data)
        d.addRow(self.source_photos)
        d.addRow(self.source_ccd)
        d.addRow(self.source_frames)
        d.addRow("Objects are", self.polarity)
        d.addRow("Synthetic images", self.count)
        d.addRow("Image size (px)", self.size)
        d.addRow("Objects per image", self.objects)
        d.addRow(self.buttons[AUTOSEG])
        d.addRow(self.buttons[SYNTHESIZE])

        train = QGroupBox("Training")
        t = QFormLayout(train)
        t.addRow("Epochs", self.epochs)
        t.addRow("Batch size", self.batch)
        t.addRow("Random seed", self.seed)
        t.addRow(self.buttons[TRAIN])
        per_round = QHBoxLayout()
        per_round.addWidget(self.round_epochs)
        per_round.addWidget(QLabel("epochs,"))
        per_round.addWidget(self.round_count)
        per_round.addWidget(QLabel("images"))
        t.addRow("Each round", per_round)
        loop = QHBoxLayout()
        loop.addWidget(QLabel("Rounds"))
        loop.addWidget(self.rounds)
        loop.addWidget(self.buttons[REFINE], 1)
        t.addRow(loop)

        segment = QGroupBox("Segmentation")
        s = QFormLayout(segment)
        s.addRow("Photo to segment", self.photo)
        both = QHBoxLayout()
        both.addWidget(self.buttons[SEGMENT])
        both.addWidget(self.buttons[SEGMENT_ALL])
        s.addRow(both)

        layout = QVBoxLayout(self)
        for box in (folders, data, train, segment, self.calibration):
            layout.addWidget(box)
        layout.addStretch(1)
        self.sources.buttonToggled.connect(lambda *_: self._update_source())
        self._busy = False
        self._update_source()

    # -- values -------------------------------------------------------------------
    @property
    def source(self) -> str:
        if self.source_frames.isChecked():
            return FRAMES_SOURCE
        return CCD_SOURCE if self.source_ccd.isChecked() else PHOTOS_SOURCE

    def set_source(self, source: str) -> None:
        {CCD_SOURCE: self.source_ccd, FRAMES_SOURCE: self.source_frames}.get(source, self.source_photos).setChecked(True)

    def path_fields(self) -> dict[str, PathField]:
        return {"photos": self.photos, "workdir": self.workdir, "model": self.model, "photo": self.photo}

    def spins(self) -> dict[str, QSpinBox]:
        return {"count": self.count, "size": self.size, "objects": self.objects, "epochs": self.epochs,
                "batch": self.batch, "seed": self.seed, "rounds": self.rounds, "round_epochs": self.round_epochs,
                "round_count": self.round_count}

    def training_data_dir(self) -> Path:
        wd = WorkingDirectory(self.workdir.text())
        return {CCD_SOURCE: wd.ccd, FRAMES_SOURCE: wd.labelled_ccd}.get(self.source, wd.synthetic)

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.calibration.set_busy(busy)
        self._update_source()

    def _update_source(self) -> None:
        photos = self.source == PHOTOS_SOURCE
        for key, button in self.buttons.items():
            button.setEnabled(not self._busy and (key != AUTOSEG or photos))
        self.polarity.setEnabled(photos)
        self.objects.setEnabled(photos)
        self.buttons[SYNTHESIZE].setText(SYNTHESIZE_ACTIONS[self.source] + ("" if photos else "…"))

    # -- validation ---------------------------------------------------------------
    def validate(self, stage: str) -> tuple[PathField, str] | None:
        """The first field that stops ``stage`` from starting, with a message
        naming it; None when everything needed is filled in."""
        for field in self.path_fields().values():
            field.mark(False)
        checks = {
            AUTOSEG: [(self.photos, "photos"), (self.workdir, "folder")],
            SYNTHESIZE: [(self.workdir, "folder")],
            TRAIN: [(self.workdir, "folder"), (self.model, "folder"), (self.workdir, "training data")],
            SEGMENT: [(self.model, "model"), (self.photo, "photos"), (self.workdir, "folder")],
            SEGMENT_ALL: [(self.model, "model"), (self.photos, "photos"), (self.workdir, "folder")],
            REFINE: [(self.model, "model"), (self.photos, "photos"), (self.workdir, "folder")],
            REVIEW: [(self.photo, "existing"), (self.workdir, "folder")],
        }[stage]
        for field, rule in checks:
            problem = self.check(field, rule)
            if problem:
                field.mark(True)
                return field, problem
        return None

    def check(self, field: PathField, rule: str) -> str | None:
        """The problem with ``field`` under ``rule`` ("existing", "photos",
        "folder", "model", "training data"), or None."""
        text, name = field.text(), field.label
        if not text:
            return f"{name}: the field is empty. {field.edit.toolTip()}"
        path = Path(text).expanduser()
        if rule in ("existing", "photos") and not split_unit(path)[0].exists():  # frame.fits[2]: one unit
            return f"{name}: {path} does not exist."
        if rule == "photos":
            from core.errors import UserInputError
            from core.imageio import list_images

            try:
                list_images(path)
            except UserInputError as exc:
                return f"{name}: {exc}"
        if rule in ("folder", "model") and path.exists() and not path.is_dir():
            return f"{name}: {path} is a file, not a folder."
        if rule == "model" and not path.is_dir():
            return f"{name}: {path} does not exist. Train a model first, or choose the folder of one."
        if rule == "model" and not ModelFolder(path).holds_model():
            return (f"{name}: {path} holds no trained model (model.keras). Train a model first, "
                    "or choose the folder of one.")
        if rule == "training data":
            data = self.training_data_dir()
            if not (data / "images").is_dir():
                action = SYNTHESIZE_ACTIONS[self.source]
                return (f"{name}: it holds no training images yet ({data / 'images'} is missing). "
                        f"Press {action} first.")
        return None

    # -- remembering ----------------------------------------------------------------
    def save(self, settings: QSettings) -> None:
        for key, field in self.path_fields().items():
            settings.setValue(f"paths/{key}", field.text())
        for key, spin in self.spins().items():
            settings.setValue(f"numbers/{key}", spin.value())
        settings.setValue("data/source", self.source)
        settings.setValue("data/polarity", self.polarity.currentData())

    def restore(self, settings: QSettings) -> None:
        for key, field in self.path_fields().items():
            field.set_text(read_value(settings, f"paths/{key}", "", str))
        for key, spin in self.spins().items():
            spin.setValue(read_value(settings, f"numbers/{key}", spin.value(), int))
        self.set_source(read_value(settings, "data/source", PHOTOS_SOURCE, str))
        index = self.polarity.findData(read_value(settings, "data/polarity", "auto", str))
        self.polarity.setCurrentIndex(max(index, 0))
