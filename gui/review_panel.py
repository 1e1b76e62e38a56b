"""The Review tab: the segmented photo, the two click tools (fill closed
contours, pick objects), undo, legend, overlay controls and saving picked
objects into the pool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QColor, QKeySequence, QPixmap
from PyQt5.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.image_view import PICKED_COLOUR, ImageView, class_colour

if TYPE_CHECKING:  # scipy loads with the first review, not at start-up
    from gui.review import ReviewSession

FILL, PICK = "fill", "pick"  # same values as gui.review.FILL / PICK


class ReviewPanel(QWidget):
    """Shows a :class:`gui.review.ReviewSession` and turns clicks into edits.

    Signals
    -------
    message(text) : a sentence for the log (fills, picks, explanations).
    saveRequested() : the user asked to save the picked objects.
    """

    message = pyqtSignal(str)
    saveRequested = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.session: ReviewSession | None = None
        # While set (e.g. measuring a scale bar), clicks on the photo go to
        # this callable(row, col) instead of the fill and pick tools.
        self.capture = None
        self.view = ImageView(self)
        self.view.pixelClicked.connect(self._clicked)

        self.fill_button = self._tool("Fill background", "F",
                                      "Click the open background: every closed contour (an outline the "
                                      "model did not fill, a hole in an object) becomes object.")
        self.pick_button = self._tool("Pick objects", "P",
                                      "Click an object to pick it for the object pool; click again to "
                                      "un-pick it. Picked objects are drawn in yellow.")
        self.fill_button.setChecked(True)
        self.tools = QButtonGroup(self)
        self.tools.setExclusive(True)
        self.tools.addButton(self.fill_button)
        self.tools.addButton(self.pick_button)

        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Undo the last fill or pick (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo)
        self.save_button = QPushButton("Save picked to pool")
        self.save_button.setToolTip("Write each picked object (crop + mask) into the working "
                                    "directory's object pool, marked as picked")
        self.save_button.clicked.connect(self.saveRequested)

        zoom_row = QHBoxLayout()
        for text, slot, tip in (("−", self.view.zoom_out, "Zoom out (−, mouse wheel)"),
                                ("+", self.view.zoom_in, "Zoom in (+, mouse wheel)"),
                                ("Fit", self.view.fit_to_window, "Fit the photo to the window (0)"),
                                ("1:1", self.view.actual_size, "One screen pixel per image pixel (1)")):
            button = QToolButton()
            button.setText(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            zoom_row.addWidget(button)
        self.zoom_label = QLabel("")
        self.zoom_label.setMinimumWidth(48)
        self.view.zoomChanged.connect(lambda z: self.zoom_label.setText(f"{100 * z:.0f} %"))
        zoom_row.addWidget(self.zoom_label)

        self.opacity = QSlider(Qt.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setMaximumWidth(120)
        self.opacity.setToolTip("Opacity of the segmentation drawn over the photo")
        self.opacity.valueChanged.connect(lambda v: self.view.set_overlay_opacity(v / 100))
        self.view.set_overlay_opacity(0.6)
        self.outline = QCheckBox("Outlines only")
        self.outline.setToolTip("Draw object outlines instead of filled objects")
        self.outline.toggled.connect(lambda _on: self._redraw_overlay())

        self.info = QLabel("")
        tools_row = QHBoxLayout()
        for w in (self.fill_button, self.pick_button, self.undo_button, self.save_button):
            tools_row.addWidget(w)
        tools_row.addStretch(1)
        tools_row.addWidget(self.info)

        self.legend = QHBoxLayout()
        self.legend.setSpacing(8)
        legend_box = QWidget()
        legend_box.setLayout(self.legend)
        self.status = QLabel("Segment a photo to review it here.")
        self.status.setWordWrap(True)
        self.status.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        # A fixed height (three lines): a message of one line or of three must
        # not resize the photo above it, which would change its zoom.
        self.status.setFixedHeight(3 * self.status.fontMetrics().lineSpacing() + 4)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(tools_row)
        layout.addWidget(self.view, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(legend_box)
        bottom.addStretch(1)
        bottom.addLayout(zoom_row)
        bottom.addWidget(QLabel("Overlay"))
        bottom.addWidget(self.opacity)
        bottom.addWidget(self.outline)
        layout.addLayout(bottom)
        layout.addWidget(self.status)
        self._update_buttons()

    def _tool(self, text: str, key: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setCheckable(True)
        button.setShortcut(QKeySequence(key))
        button.setToolTip(f"{tip} ({key})")
        button.setToolButtonStyle(Qt.ToolButtonTextOnly)
        return button

    # -- state ------------------------------------------------------------------
    @property
    def tool(self) -> str:
        return PICK if self.pick_button.isChecked() else FILL

    def set_tool(self, tool: str) -> None:
        (self.pick_button if tool == PICK else self.fill_button).setChecked(True)

    def set_session(self, session: ReviewSession | None) -> None:
        self.session = session
        self.view.set_image(None if session is None else session.image,
                            stretch="detector" if session is not None and session.detector_frame else "percentile")
        self._redraw_overlay()
        self._redraw_picked(redraw=True)
        self._rebuild_legend()
        if session is not None:
            h, w = session.shape
            self._say(f"Reviewing {session.photo_path.name} ({w} x {h}, {session.object_count} objects). "
                      "Fill background: click the open background to fill closed contours. "
                      "Pick objects: click good objects, then save them to the pool.", log=False)
        self._update_buttons()

    def set_busy(self, busy: bool) -> None:
        """While a stage runs, saving (which writes the pool) waits."""
        self._busy = busy
        self._update_buttons()

    # -- actions ----------------------------------------------------------------
    def _clicked(self, row: int, col: int, _modifiers) -> None:
        if self.capture is not None:
            self.capture(row, col)
            return
        if self.session is None:
            return
        outcome = self.session.click(row, col, self.tool)
        if outcome.changed:
            if self.tool == FILL:
                self._redraw_overlay(self.session.changed_boxes)
                self._redraw_picked(redraw=True)
            else:
                self._redraw_picked()
        self._say(outcome.message, warn=outcome.explained)
        self._update_buttons()

    def undo(self) -> None:
        if self.session is None:
            return
        what = self.session.undo()
        if what is None:
            self._say("Nothing to undo.")
            return
        if what == "Undid the last fill.":
            self._redraw_overlay(self.session.changed_boxes)
            self._redraw_picked(redraw=True)
        else:
            self._redraw_picked()
        self._say(what)
        self._update_buttons()

    def picked_saved(self, saved) -> None:
        """Called with a :class:`gui.review.SavedPicks` once the picked
        objects are in the pool."""
        if self.session is not None:
            self.session.mark_saved(saved.ids)
            self._redraw_picked()
        self._say(saved.summary(), log=False)  # the window logs the stage's summary itself
        self._update_buttons()
        self.view.setFocus()

    # -- drawing ----------------------------------------------------------------
    def _redraw_overlay(self, boxes: list | None = None) -> None:
        """Redraw the overlay, all of it or only inside ``boxes``."""
        if self.session is None:
            self.view.set_overlay(None)
            return
        if boxes is None:
            self.view.set_overlay(self.session.class_mask, outline=self.outline.isChecked())
        else:
            self.view.update_overlay(self.session.class_mask, boxes, outline=self.outline.isChecked())
        self.info.setText(f"{self.session.object_count} objects")

    def _redraw_picked(self, redraw: bool = False) -> None:
        if self.session is None:
            self.view.clear_picked()
            return
        patches = {}
        for oid in self.session.selected_ids():
            patch = self.session.object_patch(oid)
            if patch is not None:
                patches[oid] = patch
        self.view.set_picked(patches, redraw=redraw)

    def _rebuild_legend(self) -> None:
        while self.legend.count():
            item = self.legend.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        if self.session is None:
            return
        n = max(int(self.session.class_mask.max()), len(self.session.class_names) - 1, 1)
        entries = [(self.session.class_name(i), class_colour(i)) for i in range(1, n + 1)]
        entries.append(("picked", PICKED_COLOUR))
        for name, rgb in entries:
            swatch = QPixmap(12, 12)
            swatch.fill(QColor(*rgb))
            icon = QLabel()
            icon.setPixmap(swatch)
            self.legend.addWidget(icon)
            self.legend.addWidget(QLabel(name))

    def _say(self, text: str, *, warn: bool = False, log: bool = True) -> None:
        self.status.setText(text)
        self.status.setToolTip(text)
        self.status.setStyleSheet("color: #b35900;" if warn else "")
        if log:
            self.message.emit(text)

    def _update_buttons(self) -> None:
        has = self.session is not None
        busy = getattr(self, "_busy", False)
        self.undo_button.setEnabled(has and self.session.can_undo)
        self.save_button.setEnabled(has and bool(self.session.selected) and not busy)
        self.fill_button.setEnabled(has)
        self.pick_button.setEnabled(has)
