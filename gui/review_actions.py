"""What the window does with a segmented photo and the object pool: show a
segmentation's results and review, open a photo segmented before, save the
picked objects into the pool, delete pool objects. Each runs through the
window's :meth:`gui.main_window.MainWindow.run_job`."""

from __future__ import annotations

from core.workdir import WorkingDirectory
from gui import stages
from gui.controls import REVIEW


class ReviewActions:
    """Review and pool actions of :class:`gui.main_window.MainWindow` (a mixin)."""

    def show_segmentation(self, outcome) -> None:
        """Show a segment stage's results (Results tab) and its review (Review tab)."""
        self.results.load(outcome.out_dir)
        if outcome.review is not None:
            self.review.set_session(outcome.review)
            self.tabs.setCurrentWidget(self.review)
        else:
            self.tabs.setCurrentWidget(self.results)

    def open_review(self) -> None:
        c = self.controls
        problem = c.validate(REVIEW)
        if problem is not None:
            self.message("warn", "Check the fields", problem[1])
            return
        out = str(WorkingDirectory(c.workdir.text()).segmented)
        self.run_job("Open review", stages.open_review_job, c.photo.text(), out, c.model.text(),
                     on_done=self.show_segmentation)

    def save_picked(self) -> None:
        session = self.review.session
        if session is None or not session.selected:
            self.message("inform", "Nothing picked", "Pick objects first: choose Pick objects and click them.")
            return
        problem = self.controls.check(self.controls.workdir, "folder")
        if problem:
            self.message("warn", "Check the fields", problem)
            return

        def done(saved) -> None:
            self.review.picked_saved(saved)
            self.pool.refresh()

        self.run_job("Save picked objects", stages.save_picked_job, session, self.controls.workdir.text(),
                     on_done=done)

    def delete_pool_objects(self, files: list[str]) -> None:
        workdir = self.controls.workdir.text()
        self.run_job("Delete pool objects", stages.delete_pool_job, workdir, files,
                     on_done=lambda n: (self.log(f"Deleted {n} object{'s' if n != 1 else ''} from the pool."),
                                               self.pool.refresh()))
