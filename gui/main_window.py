"""The main window: the controls on the left; Review, Training, Pool and
Results tabs on the right; one progress bar with Cancel and a log below.

Every stage runs in a :class:`gui.workers.StageWorker` thread. The window
only validates fields, starts the worker, shows its progress and draws its
result.
"""

from __future__ import annotations

import time
from pathlib import Path

from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import (
    QAction,
    QHBoxLayout,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core import model_folder
from core.model_folder import ModelFolder
from core.workdir import WorkingDirectory
from gui import dialogs, stages
from gui.calibration_panel import CalibrationController
from gui.controls import (
    AUTOSEG,
    CCD_SOURCE,
    FRAMES_SOURCE,
    REFINE,
    SEGMENT_ALL,
    STAGE_TITLES,
    SYNTHESIZE,
    TRAIN,
    ControlsPanel,
)
from gui.loop_actions import LoopActions
from gui.pool_view import CCD, LABELLED, POOL, SYNTHETIC, PoolView
from gui.progress_bar import StageProgressBar
from gui.results_view import ResultsView
from gui.review_actions import ReviewActions
from gui.review_panel import ReviewPanel
from gui.settings import app_settings, restore_window, save_window
from gui.training_view import TrainingView
from gui.workers import StageFailure, StageRunner, StageWorker


class MainWindow(ReviewActions, QMainWindow):
    def __init__(self, workdir: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("SegLoop")
        self.runner = StageRunner(self)
        self.runner.stopped.connect(self._stage_stopped)
        self._quit_when_stopped = False
        self.messages: list[str] = []  # every message shown, for the log and for tests

        self.controls = ControlsPanel()
        self.controls.stageRequested.connect(self.start_stage)
        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.controls.sizeHint().width() + 24)

        self.review = ReviewPanel()
        self.review.message.connect(self.log)
        self.review.saveRequested.connect(self.save_picked)
        self.training = TrainingView()
        self.pool = PoolView()
        self.pool.deleteRequested.connect(self.delete_pool_objects)
        self.results = ResultsView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.review, "Review")
        self.tabs.addTab(self.training, "Training")
        self.tabs.addTab(self.pool, "Pool")
        self.tabs.addTab(self.results, "Results")

        self.progress = StageProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running stage cleanly; files already written are kept")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_stage)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setPlaceholderText("Messages from the stages appear here.")

        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        bl.addLayout(row)
        bl.addWidget(self.log_view, 1)
        self.right = QSplitter(Qt.Vertical)
        self.right.addWidget(self.tabs)
        self.right.addWidget(bottom)
        self.right.setStretchFactor(0, 4)
        self.right.setStretchFactor(1, 1)
        self.split = QSplitter(Qt.Horizontal)
        self.split.addWidget(scroll)
        self.split.addWidget(self.right)
        self.split.setStretchFactor(1, 1)
        self.setCentralWidget(self.split)
        self._build_menus()

        self.settings = app_settings()
        self.controls.restore(self.settings)
        restore_window(self, self.settings)
        if workdir:
            self.controls.workdir.set_text(str(Path(workdir).expanduser().resolve()))
        self._fill_defaults()
        self.calibration = CalibrationController(self)
        self.loop = LoopActions(self)
        self.controls.workdir.edit.editingFinished.connect(self._workdir_changed)
        self.controls.model.edit.editingFinished.connect(self._model_changed)
        self._workdir_changed()
        self.calibration.load()
        self.statusBar().showMessage("Ready")

    # -- construction -------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_review = QAction("Open segmented photo for review", self)
        open_review.setToolTip("Show the segmentation of the photo to segment, from the working directory")
        open_review.triggered.connect(self.open_review)
        file_menu.addAction(open_review)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        edit_menu = self.menuBar().addMenu("&Edit")
        self.undo_action = QAction("Undo fill or pick", self)
        self.undo_action.setShortcut(QKeySequence.Undo)
        self.undo_action.triggered.connect(self.review.undo)
        edit_menu.addAction(self.undo_action)
        view_menu = self.menuBar().addMenu("&View")
        for text, key, slot in (("Zoom in", "+", self.review.view.zoom_in),
                                ("Zoom out", "-", self.review.view.zoom_out),
                                ("Fit to window", "0", self.review.view.fit_to_window),
                                ("Actual size (1:1)", "1", self.review.view.actual_size)):
            action = QAction(text, self)
            action.setShortcut(QKeySequence(key))
            action.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.review.addAction(action)
            view_menu.addAction(action)

    def _fill_defaults(self) -> None:
        c = self.controls
        if not c.model.text():
            if model_folder.holds_model(model_folder.BUNDLED_MODEL):
                c.model.set_text(str(model_folder.BUNDLED_MODEL))
            elif c.workdir.text():
                c.model.set_text(str(WorkingDirectory(c.workdir.text()).model))
        if not c.photos.text() and c.workdir.text():
            for name in ("photos", "images"):
                folder = Path(c.workdir.text()) / name
                if folder.is_dir():
                    c.photos.set_text(str(folder))
                    break
        if not c.photo.text() and c.photos.text():  # so that Segment works on first launch
            photo = stages.first_photo(c.photos.text())
            c.photo.set_text(str(photo) if photo is not None else "")

    def _workdir_changed(self) -> None:
        text = self.controls.workdir.text()
        if text and not self.runner.running and Path(text).is_dir():
            # A stage killed while it saved its results (a crash, a power cut)
            # is finished now, before anything of the folder is shown.
            from core.transaction import recover

            try:
                for line in recover(text):
                    self.log(f"{text}: {line}")
            except OSError as exc:
                self.log(f"Could not tidy the working directory yet ({exc}); the next stage will.")
        self.pool.set_workdir(text or None)
        if text:
            out = WorkingDirectory(text).segmented
            if (out / "objects.csv").is_file():
                self.results.load(out)
        self._model_changed()

    def _model_changed(self) -> None:
        if self.controls.model.text() and not self.runner.running:
            self.training.load_history(ModelFolder(self.controls.model.text()).history)

    # -- log and messages ---------------------------------------------------------
    def log(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        for line in str(text).rstrip().splitlines() or [""]:
            self.log_view.appendPlainText(f"{stamp}  {line}")
        self.show_status(str(text).splitlines()[0] if text else "", 10000)

    def show_status(self, text: str, msecs: int = 10000) -> None:
        """A message in the status bar, shortened with "…" to the room left
        of the scale shown there (the whole text is in the log)."""
        bar = self.statusBar()
        room = bar.width() - self.calibration.status_label.sizeHint().width() - 40 \
            if hasattr(self, "calibration") else bar.width() - 40
        bar.showMessage(bar.fontMetrics().elidedText(text, Qt.ElideRight, max(80, room)), msecs)

    def message(self, kind: str, title: str, text: str) -> None:
        """One message box ("inform", "warn" or "error"), recorded in ``messages``."""
        self.messages.append(text)
        {"inform": dialogs.inform, "warn": dialogs.warn, "error": dialogs.error}[kind](self, title, text)

    # -- starting stages ----------------------------------------------------------
    def start_stage(self, stage: str) -> bool:
        """Validate the fields and start ``stage``; False if it did not start."""
        if self.runner.running:
            return False
        problem = self.controls.validate(stage)
        if problem is not None:
            field, text = problem
            self.log(text)
            self.message("warn", "Check the fields", text)
            field.edit.setFocus()
            return False
        if stage in (SEGMENT_ALL, REFINE):
            return self.loop.start(stage)
        c = self.controls
        workdir = c.workdir.text()
        title = STAGE_TITLES[stage]
        if stage == AUTOSEG:
            return self.run_job(title, stages.autoseg_job, c.photos.text(), workdir,
                                polarity=c.polarity.currentData(), seed=c.seed.value(),
                                on_done=lambda _r: self._show_pool(POOL))
        if stage == SYNTHESIZE and c.source == FRAMES_SOURCE:
            frames = dialogs.choose_folder(self, "Folder of your detector frames (FITS, TIFF, …) to label")
            if not frames:
                return False
            return self.run_job("Label my frames", stages.label_ccd_job, frames,
                                str(WorkingDirectory(workdir).labelled_ccd),
                                on_done=lambda _r: self._show_pool(LABELLED))
        if stage == SYNTHESIZE and c.source == CCD_SOURCE:
            values = dialogs.ask_ccd_settings(self)
            if values is None:
                return False
            if values == dialogs.MATCH_FRAMES:
                return self.match_frames(workdir)
            out = str(WorkingDirectory(workdir).ccd)
            return self.run_job("Simulate CCD frames", stages.simulate_ccd_job, out, values=values,
                                on_done=lambda _r: self._show_pool(CCD))
        if stage == SYNTHESIZE:
            return self.run_job(title, stages.synthesize_job, workdir, count=c.count.value(),
                                size=c.size.value(), seed=c.seed.value(), objects_per_image=c.objects.value(),
                                on_done=lambda _r: self._show_pool(SYNTHETIC))
        if stage == TRAIN:
            model, start_from = self.loop.writable_model(title)
            self.training.start(c.epochs.value(), ModelFolder(start_from or model).history)
            self.tabs.setCurrentWidget(self.training)
            return self.run_job(title, stages.train_job, str(c.training_data_dir()), model,
                                epochs=c.epochs.value(), batch_size=c.batch.value(), seed=c.seed.value(),
                                patch_size=max(32, c.size.value() // 32 * 32), start_from=start_from,
                                on_done=self._training_done, isolated=True)
        out = str(WorkingDirectory(workdir).segmented)
        return self.run_job(title, stages.segment_job, c.model.text(), c.photo.text(), out,
                            on_done=self.show_segmentation, isolated=True, **self.calibration.segment_values())

    def match_frames(self, workdir: str) -> bool:
        """Measure the user's detector frames into simulator settings
        (``ccd_detector.json`` in the working directory), then open the CCD
        settings again with them filled in."""
        frames = dialogs.choose_folder(self, "Folder of your detector frames (FITS, TIFF, …)")
        if not frames:
            return False
        out = str(WorkingDirectory(workdir).ccd_detector)

        def done(result) -> None:
            if result is None or getattr(result, "cancelled", False):
                return
            from dataclasses import asdict

            fitted = asdict(result.settings)
            for name in ("count", "size", "seed"):  # the window's fields keep these
                fitted.pop(name)
            dialogs.remember_values(self.settings, "ccd", fitted)
            self.log("The CCD settings now hold what was measured; check them and press OK to simulate.")
            self._after_stage(lambda: self.start_stage(SYNTHESIZE))

        return self.run_job("Measure my frames", stages.fit_ccd_job, frames, out, on_done=done)

    def _after_stage(self, action) -> None:
        """Run ``action`` once the running stage's thread has ended (at once
        if none is running)."""
        if not self.runner.running:
            action()
            return

        def once(_name: str) -> None:
            self.runner.stopped.disconnect(once)
            QTimer.singleShot(0, action)
        self.runner.stopped.connect(once)

    def run_job(self, name: str, fn, *args, on_done=None, isolated: bool = False, **kwargs) -> bool:
        """Run ``fn(*args, progress=..., **kwargs)`` in a worker thread (in a
        child process if ``isolated``) with the progress bar, Cancel and the
        log wired to it; ``on_done(result)`` runs on the GUI thread when it
        finishes."""
        if self.runner.running:
            return False
        worker = StageWorker(name, fn, *args, isolated=isolated, **kwargs)
        worker.progress.connect(self._on_progress)
        worker.log.connect(self.log)
        worker.epoch.connect(self.training.add_epoch)
        worker.finished.connect(lambda result: self._on_finished(worker, result, on_done))
        worker.failed.connect(self._on_failed)
        self.progress.start(name)
        self.log(f"{name}: started.")
        # Focus goes to what the user looks at, not to the next field of the
        # controls that are about to be disabled (it would land in Epochs,
        # its text selected, where a key press changes it).
        (self.review.view if self.tabs.currentWidget() is self.review else self.log_view).setFocus()
        self._set_busy(True)
        return self.runner.start(worker)

    def cancel_stage(self) -> None:
        if self.runner.running:
            self.runner.cancel()
            self.cancel_button.setEnabled(False)
            self.progress.stopping()
            name = self.runner.worker.name
            if name == STAGE_TITLES[TRAIN]:
                kept = ("training stops within the running batch; the best epoch saved so far stays in "
                        f"{self.controls.model.text()}.")
            elif name == STAGE_TITLES[REFINE]:
                kept = ("the round in progress is dropped; the working directory and the model stay as "
                        "the last completed round left them.")
            else:
                kept = "what it wrote so far is dropped; your files stay as they were before it started."
            self.log(f"{name}: cancelling: {kept}")

    def _set_busy(self, busy: bool) -> None:
        self.controls.set_busy(busy)
        self.review.set_busy(busy)
        self.pool.set_busy(busy)
        self.cancel_button.setEnabled(busy)

    # -- stage feedback -----------------------------------------------------------
    def _on_progress(self, done: int, total: int, message: str) -> None:
        worker = self.runner.worker
        if worker is not None and worker.name == STAGE_TITLES[TRAIN]:
            self.training.set_batch_progress(done, total, message)
        self.progress.show_progress(done, total, message)

    def _on_finished(self, worker: StageWorker, result, on_done) -> None:
        summary = result.summary() if hasattr(result, "summary") else ""
        cancelled = bool(getattr(result, "cancelled", False)) or worker.cancelled
        if summary:
            self.log(summary)
        self.log(f"{worker.name}: {'cancelled' if cancelled else 'finished'}.")
        self.progress.finish("cancelled" if cancelled else "done")
        if on_done is not None:
            try:
                on_done(result)
            except Exception as exc:  # noqa: BLE001 - drawing a result must not close the window
                import traceback

                self.log(traceback.format_exc())
                self.message("error", "Could not show the result", f"{worker.name} finished, but its "
                              f"result could not be shown ({type(exc).__name__}: {exc}).")

    def _on_failed(self, failure: StageFailure) -> None:
        if failure.kind in ("cancelled", "error") and self.controls.workdir.text():
            # A stage ended from outside leaves its staged copy behind: nothing
            # of it is used, and it goes now rather than with the next stage.
            from core.transaction import recover

            try:
                recover(self.controls.workdir.text())
            except OSError as exc:
                self.log(f"Could not tidy the working directory yet ({exc}); the next stage will.")
        self.progress.finish({"input": "stopped", "cancelled": "cancelled", "error": "failed"}[failure.kind])
        worker = self.runner.worker
        message = failure.message
        if failure.kind == "cancelled" and worker is not None and worker.name == STAGE_TITLES[TRAIN]:
            folder = self.controls.model.text()
            epoch = model_folder.saved_epoch(folder)
            message += (f" The best epoch saved so far (epoch {epoch}) is in {folder}." if epoch is not None
                        else " No epoch was completed, so nothing was saved.")
        self.log(message)
        if worker is not None and worker.name in (STAGE_TITLES[TRAIN], STAGE_TITLES[REFINE]):
            self.training.finished(message)
        if failure.details and failure.kind == "error":
            self.log(failure.details)
        if failure.kind == "input":
            self.message("warn", "Please check", failure.message)
        elif failure.kind == "error":
            self.message("error", "Something went wrong",
                          failure.message + " The details are in the log.")

    def _stage_stopped(self, _name: str) -> None:
        self.loop.stage_stopped()
        self._set_busy(False)
        if self._quit_when_stopped:
            self.close()

    # -- results ------------------------------------------------------------------
    def _show_pool(self, mode: str) -> None:
        self.pool.set_mode(mode)
        self.pool.refresh()
        self.tabs.setCurrentWidget(self.pool)

    def _training_done(self, result) -> None:
        self.training.finished(result.summary() if hasattr(result, "summary") else "Training finished.")
        if not self.training.epochs:
            self.training.load_history(ModelFolder(self.controls.model.text()).history)

    # -- closing ------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.runner.running:
            if self._quit_when_stopped or dialogs.ask(
                    self, "A stage is running",
                    f"{self.runner.worker.name} is still running. Stop it and quit? "
                    "Everything written so far is kept."):
                self._quit_when_stopped = True
                self.cancel_stage()
            event.ignore()
            return
        save_window(self, self.settings)
        self.pool.model.shutdown()
        event.accept()
