"""What each button of the window runs, in the worker thread.

Each job imports its stage module when it runs (never at start-up: the
window must open fast and TensorFlow loads only for training and
segmentation) and calls the stage function with plain arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def autoseg_job(images_dir: str, workdir: str, *, polarity: str, seed: int, progress):
    from segmentation.autoseg import AutosegSettings, run_autoseg

    settings = AutosegSettings(polarity=polarity, seed=seed)
    return run_autoseg(images_dir, workdir, settings=settings, progress=progress)


def synthesize_job(workdir: str, *, count: int, size: int, seed: int, objects_per_image: int, progress):
    from synthetic.compose import SynthesisSettings, run_synthesize

    settings = SynthesisSettings(count=count, size=size, seed=seed, objects_per_image=objects_per_image)
    return run_synthesize(workdir, settings=settings, progress=progress)


def simulate_ccd_job(out_dir: str, *, values: dict, progress):
    from synthetic.ccd import CCDSettings, run_simulate_ccd

    settings = CCDSettings(**values)
    return run_simulate_ccd(out_dir, settings=settings, progress=progress)


def fit_ccd_job(frames: str, out_file: str, *, progress):
    from detector.fit import run_fit_ccd

    return run_fit_ccd(frames, out_file, progress=progress)


def label_ccd_job(frames: str, out_dir: str, *, progress):
    from detector.label_frames import run_label_ccd

    return run_label_ccd(frames, out_dir, progress=progress)


def train_job(data_dir: str, model_dir: str, *, epochs: int, batch_size: int, seed: int,
              patch_size: int | None = None, start_from: str | None = None, progress):
    from training.settings import TrainSettings
    from training.train import run_training

    values = {"epochs": epochs, "batch_size": batch_size, "seed": seed}
    if patch_size:
        values["patch_size"] = patch_size
    settings = TrainSettings(**values)
    # Per-epoch metrics reach the Training tab through this hook.
    return run_training(data_dir, model_dir, settings=settings, progress=progress, start_from=start_from,
                        on_epoch_end=getattr(progress, "epoch_end", None))


@dataclass
class SegmentOutcome:
    """The segment stage's result plus, for a single photo, the review
    session loaded in the worker so the window only has to draw it."""

    result: object
    out_dir: Path
    review: object | None = None

    def summary(self) -> str:
        if self.result is None:  # a photo segmented before, opened for review
            review = self.review
            return (f"Opened {Path(review.photo_path).name} for review ({review.object_count} objects)."
                    if review is not None else "")
        return self.result.summary() if hasattr(self.result, "summary") else str(self.result)

    @property
    def cancelled(self) -> bool:
        return bool(getattr(self.result, "cancelled", False))


def segment_job(model_dir: str, images: str, out_dir: str, *, calibration=None, review: bool = True, progress):
    """Segment a photo or a folder; with a ``calibration`` (the Scale box's)
    the sizes are measured in its unit. ``review`` loads the first photo's
    result for the Review tab."""
    from core.imageio import list_images
    from inference.batch import local_workers
    from inference.settings import SegmentSettings
    from inference.stage import run_segment

    settings = SegmentSettings(calibration=calibration)
    workers = local_workers(len(list_images(images, what="photos folder or photo")))
    result = run_segment(model_dir, images, out_dir, settings=settings, progress=progress, workers=workers)
    outcome = SegmentOutcome(result, Path(out_dir))
    photo = first_photo(images) if review else None
    if photo is not None and not outcome.cancelled:
        outcome.review = load_review(photo, out_dir, model_dir)
    return outcome


# Its child process does not load TensorFlow first: a model whose checked
# conversion is kept runs without it (inference.runtime.cached_network).
segment_job.tensorflow_where_needed = True


def read_photo_job(path: str, *, progress):
    from core.imageio import read_image

    progress.update(0, 1, "reading")
    image = read_image(path)
    progress.update(1, 1, "read")
    return image


def refine_job(photos: str, workdir: str, model_dir: str, *, rounds: int, epochs: int, count: int, size: int,
               seed: int, start_from: str | None = None, progress):
    """Self-training rounds; ``start_from`` (a bundled or read-only model) is
    the starting point for ``model_dir`` and never changes itself."""
    from loop.refine import run_refine
    from loop.settings import RefineSettings

    settings = RefineSettings(epochs=epochs, synthetic_count=count, synthetic_size=size, seed=seed)
    return run_refine(photos, workdir, model_dir, rounds=rounds, settings=settings, progress=progress,
                      start_from=start_from, on_epoch_end=getattr(progress, "epoch_end", None))


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
    saved = review.save_selected(workdir)
    progress.update(1, 1, f"{len(saved.written)} saved")
    return saved


def delete_pool_job(workdir: str, files: list[str], *, progress):
    from segmentation.pool import delete_objects

    progress.update(0, 1, "deleting")
    removed = delete_objects(workdir, files)
    progress.update(1, 1, f"{removed} deleted")
    return removed
