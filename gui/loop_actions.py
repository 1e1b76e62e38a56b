"""The two actions that work on the whole photos folder: *Segment all
photos* and *Improve model* (self-training rounds), and the choice of the
model folder that training writes to (never the bundled or a read-only one).

Both run in a child process (they load TensorFlow) through the window's
:meth:`gui.main_window.MainWindow.run_job`, with the progress bar and
Cancel; the fields were validated by the window before they are called.
"""

from __future__ import annotations

from pathlib import Path

from core import model_folder
from core.model_folder import ModelFolder
from core.workdir import WorkingDirectory
from gui import stages
from gui.controls import DETECTOR_SOURCES, REFINE, SEGMENT_ALL, STAGE_TITLES


class LoopActions:
    """Starts *Segment all photos* and *Improve model* for ``window``."""

    def __init__(self, window) -> None:
        self.window = window
        self._model_before: tuple[str, Path] | None = None  # (field text, copy) while a copy is trained

    def writable_model(self, stage: str) -> tuple[str, str | None]:
        """The model folder ``stage`` may train into, and the model to start
        from (None: continue the one in that folder).

        The bundled model and read-only model folders are never written to:
        training works on a copy in <workdir>/model (or continues the model
        already there), the Model field switches to it and the log says so.
        If the stage ends without training the copy, the field switches back.
        """
        w = self.window
        c = w.controls
        model = Path(c.model.text()).expanduser()
        reason = model_folder.read_only_reason(model)
        if reason is None:
            return str(model), None
        fresh = c.source in DETECTOR_SOURCES and reason == "the bundled model"  # a photo model, not a detector one
        wd = WorkingDirectory(Path(c.workdir.text()).expanduser())
        target = wd.model_ccd if c.source in DETECTOR_SOURCES else wd.model
        what = "is the bundled model" if reason == "the bundled model" else "is read-only"
        c.model.set_text(str(target))
        if model_folder.holds_model(target):
            w.log(f"The Model folder {model} {what} and is never changed; {target} already holds the "
                  f"model trained here, so {stage} continues that one (the Model field now shows it).")
            return str(target), None
        self._model_before = (str(model), target)
        if fresh:
            w.log(f"The Model folder {model} {what} (for photos, not detector frames): {stage} trains a "
                  f"new detector model in {target} (the Model field now shows it).")
            return str(target), None
        w.log(f"The Model folder {model} {what} and is never changed: {stage} starts from a copy of it "
              f"in {target} (the Model field now shows it).")
        return str(target), str(model)

    def stage_stopped(self) -> None:
        """After any stage: if a copy of a read-only model was to be trained
        and nothing was, the Model field goes back to the model chosen."""
        if self._model_before is not None:
            before, copy = self._model_before
            self._model_before = None
            if not model_folder.holds_model(copy):
                self.window.controls.model.set_text(before)
                self.window.log(f"Nothing was trained, so the Model folder is {before} again.")

    def start(self, stage: str) -> bool:
        """Start ``SEGMENT_ALL`` or ``REFINE``; False if it did not start."""
        return self.segment_folder() if stage == SEGMENT_ALL else self.improve_model()

    def segment_folder(self) -> bool:
        """Segment every photo of the photos folder into <workdir>/segmented
        and show the measurements of all of them in the Results tab."""
        w = self.window
        c = w.controls
        out = str(WorkingDirectory(c.workdir.text()).segmented)
        return w.run_job(STAGE_TITLES[SEGMENT_ALL], stages.segment_job, c.model.text(), c.photos.text(), out,
                         review=False, on_done=w.show_segmentation, isolated=True,
                         **w.calibration.segment_values())

    def improve_model(self) -> bool:
        """Run the rounds of self-training on the model in the Model folder
        (on a copy in <workdir>/model when it is the bundled model)."""
        w = self.window
        c = w.controls
        workdir = Path(c.workdir.text())
        model, start_from = self.writable_model(STAGE_TITLES[REFINE])
        history = ModelFolder(start_from or model).history
        rounds, epochs = c.rounds.value(), c.round_epochs.value()
        w.training.start(rounds * epochs, history)
        w.training.batch.setVisible(False)  # the progress bar below follows the whole round
        w.training.state.setText(f"Self-training: {rounds} round(s) of {epochs} more epochs; the curves "
                                 "continue the model's history.")
        w.tabs.setCurrentWidget(w.training)
        return w.run_job(STAGE_TITLES[REFINE], stages.refine_job, c.photos.text(), str(workdir), str(model),
                         rounds=rounds, epochs=epochs, count=c.round_count.value(), size=c.size.value(),
                         seed=c.seed.value(), start_from=start_from, on_done=self._refined, isolated=True)

    def _refined(self, result) -> None:
        w = self.window
        w.training.finished(result.summary() if hasattr(result, "summary") else "Self-training finished.")
        w.pool.refresh()
        segmented = Path(getattr(result, "segmented", "") or "")
        if getattr(result, "rounds", 0) and (segmented / "objects.csv").is_file():
            w.results.load(segmented)
            w.log("The Results tab shows the photos segmented by the improved model.")
