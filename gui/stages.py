"""What each button of the window runs, in the worker thread.

Each job imports its stage module when it runs (never at start-up: the
window must open fast and TensorFlow loads only for training and
segmentation) and calls the stage function with plain arguments. A stage
that this version does not ship yet raises ``ModuleNotFoundError`` for one
of the application's packages, which the worker turns into a clear
"not available yet" message.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

SEGMENT_FOLDER = "segmented"
CCD_FOLDER = "synthetic_ccd"


def settings_for(cls, **values):
    """An instance of the settings dataclass ``cls`` with ``values`` for
    the fields it has; the names it lacks are returned so they can be logged."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names}), sorted(set(values) - names)


def _log_unused(progress, stage: str, unused: list[str]) -> None:
    if unused:
        progress.log(f"{stage}: this version does not use the setting(s) {', '.join(unused)}.")


def autoseg_job(images_dir: str, workdir: str, *, polarity: str, seed: int, progress):
    from segmentation.autoseg import AutosegSettings, run_autoseg

    settings, unused = settings_for(AutosegSettings, polarity=polarity, seed=seed)
    _log_unused(progress, "Auto-segment", unused)
    return run_autoseg(images_dir, workdir, settings=settings, progress=progress)


def synthesize_job(workdir: str, *, count: int, size: int, seed: int, objects_per_image: int, progress):
    from synthetic.compose import SynthesisSettings, run_synthesize

    settings, unused = settings_for(SynthesisSettings, count=count, size=size, seed=seed,
                                    objects_per_image=objects_per_image)
    _log_unused(progress, "Create synthetic data", unused)
    return run_synthesize(workdir, settings=settings, progress=progress)


def simulate_ccd_job(out_dir: str, *, values: dict, progress):
    from synthetic.ccd import CCDSettings, run_simulate_ccd

    settings, unused = settings_for(CCDSettings, **values)
    _log_unused(progress, "Simulate CCD frames", unused)
    return run_simulate_ccd(out_dir, settings=settings, progress=progress)


def ccd_settings_class():
    """The CCD simulator's settings dataclass (imported on demand)."""
    from synthetic.ccd import CCDSettings

    return CCDSettings


def train_job(data_dir: str, model_dir: str, *, epochs: int, batch_size: int, seed: int,
              patch_size: int | None = None, progress):
    import inspect

    from training.train import TrainSettings, run_training

    values = {"epochs": epochs, "batch_size": batch_size, "seed": seed}
    if patch_size:
        values["patch_size"] = patch_size
    settings, unused = settings_for(TrainSettings, **values)
    _log_unused(progress, "Train", unused)
    extra = {}
    # Per-epoch metrics reach the training view through this hook.
    if "on_epoch_end" in inspect.signature(run_training).parameters and hasattr(progress, "epoch_end"):
        extra["on_epoch_end"] = progress.epoch_end
    return run_training(data_dir, model_dir, settings=settings, progress=progress, **extra)


@dataclass
class SegmentOutcome:
    """The segment stage's result plus, for a single photo, the review
    session loaded in the worker so the window only has to draw it."""

    result: object
    out_dir: Path
    review: object | None = None

    def summary(self) -> str:
        return self.result.summary() if hasattr(self.result, "summary") else str(self.result)

    @property
    def cancelled(self) -> bool:
        return bool(getattr(self.result, "cancelled", False))


def segment_job(model_dir: str, images: str, out_dir: str, *, progress):
    from evaluation.segment import run_segment

    result = run_segment(model_dir, images, out_dir, progress=progress)
    outcome = SegmentOutcome(result, Path(out_dir))
    photo = first_photo(images)
    if photo is not None and not outcome.cancelled:
        outcome.review = load_review(photo, out_dir, model_dir)
    return outcome


def first_photo(images: str) -> Path | None:
    """The photo to review after segmenting ``images`` (a file, or the first
    photo of a folder)."""
    from core.imageio import list_images

    try:
        return list_images(images)[0]
    except Exception:  # noqa: BLE001 - nothing to review is not an error
        return None


def load_review(photo: str | Path, out_dir: str | Path, model_dir: str | Path | None = None):
    from gui.review import ReviewSession

    return ReviewSession.from_segment_output(photo, out_dir, model_dir=model_dir)


def open_review_job(photo: str, out_dir: str, model_dir: str, *, progress):
    progress.update(0, 1, "loading")
    review = load_review(photo, out_dir, model_dir)
    progress.update(1, 1, "loaded")
    return SegmentOutcome(None, Path(out_dir), review)


def save_picked_job(review, workdir: str, *, progress):
    progress.update(0, 1, "saving")
    names = review.save_selected(workdir)
    progress.update(1, 1, f"{len(names)} saved")
    return names


def delete_pool_job(workdir: str, files: list[str], *, progress):
    from segmentation.pool import delete_objects

    progress.update(0, 1, "deleting")
    removed = delete_objects(workdir, files)
    progress.update(1, 1, f"{removed} deleted")
    return removed
