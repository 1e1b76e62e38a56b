"""The two actions that work on the whole photos folder: *Segment all
photos* and *Improve model* (self-training rounds).

Both run in a child process (they load TensorFlow) through the window's
:meth:`gui.main_window.MainWindow.run_job`, with the progress bar and
Cancel; the fields were validated by the window before they are called.
"""

from __future__ import annotations

from pathlib import Path

from gui import stages
from gui.controls import REFINE, SEGMENT_ALL, STAGE_TITLES


class LoopActions:
    """Starts *Segment all photos* and *Improve model* for ``window``."""

    def __init__(self, window) -> None:
        self.window = window

    def start(self, stage: str) -> bool:
        """Start ``SEGMENT_ALL`` or ``REFINE``; False if it did not start."""
        return self.segment_folder() if stage == SEGMENT_ALL else self.improve_model()

    def segment_folder(self) -> bool:
        """Segment every photo of the photos folder into <workdir>/segmented
        and show the measurements of all of them in the Results tab."""
        w = self.window
        c = w.controls
        out = str(Path(c.workdir.text()) / stages.SEGMENT_FOLDER)
        return w.run_job(STAGE_TITLES[SEGMENT_ALL], stages.segment_job, c.model.text(), c.photos.text(), out,
                         review=False, on_done=w._segment_done, isolated=True,
                         **w.calibration.segment_values())

    def improve_model(self) -> bool:
        """Run the rounds of self-training on the model in the Model folder
        (on a copy in <workdir>/model when it is the bundled model)."""
        w = self.window
        c = w.controls
        workdir = Path(c.workdir.text())
        model, start_from = w.writable_model(STAGE_TITLES[REFINE])
        history = Path(start_from or model) / "history.csv"
        rounds, epochs = c.rounds.value(), c.epochs.value()
        w.training.start(rounds * epochs, history)
        w.training.batch.setVisible(False)  # the progress bar below follows the whole round
        w.training.state.setText(f"Self-training: {rounds} round(s) of {epochs} more epochs; the curves "
                                 "continue the model's history.")
        w.tabs.setCurrentWidget(w.training)
        return w.run_job(STAGE_TITLES[REFINE], stages.refine_job, c.photos.text(), str(workdir), str(model),
                         rounds=rounds, epochs=epochs, count=c.count.value(), size=c.size.value(),
                         seed=c.seed.value(), start_from=start_from, on_done=self._refined, isolated=True)

    def _refined(self, result) -> None:
        w = self.window
        w.training.finished(result.summary() if hasattr(result, "summary") else "Self-training finished.")
        w.pool.refresh()
        segmented = Path(getattr(result, "segmented", "") or "")
        if getattr(result, "rounds", 0) and (segmented / "objects.csv").is_file():
            w.results.load(segmented)
            w.log("The Results tab shows the photos segmented by the improved model.")
