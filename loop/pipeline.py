"""``pipeline``: auto-segmentation, synthesis, training and segmentation in one go."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from core.errors import UserInputError
from core.imageio import list_images
from core.model_folder import check_writable
from core.progress import Progress, SubProgress
from core.workdir import WorkingDirectory
from loop.settings import PipelineSettings
from training.settings import TrainSettings


@dataclass
class PipelineResult:
    steps: dict = field(default_factory=dict)
    segmented: str = ""
    cancelled: bool = False

    @property
    def failed(self) -> list[str]:
        """Photos that could not be read (by auto-segmentation or segmentation)."""
        names = [n for result in self.steps.values() for n in getattr(result, "failed", None) or []]
        return list(dict.fromkeys(names))

    def summary(self) -> str:
        lines = [f"{name}: {result.summary()}" for name, result in self.steps.items()]
        if self.cancelled:
            lines.append("Cancelled; everything finished before that is kept.")
        return "\n".join(lines)


def run_pipeline(images: str | Path, workdir: str | Path, model_dir: str | Path, *,
                 epochs: int | None = None, settings: PipelineSettings | None = None,
                 progress: Progress | None = None) -> PipelineResult:
    """Run every stage on a folder of photos; the photos are segmented into
    ``<workdir>/segmented``."""
    from inference.stage import run_segment
    from segmentation.autoseg import AutosegSettings, run_autoseg
    from synthetic.compose import SynthesisSettings, run_synthesize
    from training.train import run_training

    settings = settings or PipelineSettings()
    if epochs is not None:  # the caller's settings are left as they are
        settings = replace(settings, epochs=epochs)
    progress = progress or Progress()
    list_images(images)  # a missing or empty folder is reported before any work
    if Path(model_dir).resolve() == Path(workdir).resolve():
        raise UserInputError("The model folder must differ from the working directory")
    check_writable(model_dir)
    wd = WorkingDirectory(workdir)
    result = PipelineResult(segmented=str(wd.segmented))

    def step(name, start, stop):
        return SubProgress(progress, start, stop, name)

    result.steps["auto-segmentation"] = run_autoseg(
        images, workdir, settings=AutosegSettings(polarity=settings.polarity, seed=settings.seed),
        progress=step("auto-segmentation", 0.0, 0.1))
    if progress.cancelled:
        result.cancelled = True
        return result
    result.steps["synthesis"] = run_synthesize(
        workdir, settings=SynthesisSettings(count=settings.synthetic_count, size=settings.synthetic_size,
                                            seed=settings.seed, fit_size=True),
        progress=step("synthesis", 0.1, 0.2))
    if progress.cancelled:
        result.cancelled = True
        return result
    train_settings = replace(settings.train or TrainSettings(seed=settings.seed), epochs=settings.epochs)
    trained = run_training(wd.synthetic, model_dir, settings=train_settings, progress=step("training", 0.2, 0.9))
    result.steps["training"] = trained
    if trained.cancelled or progress.cancelled:
        result.cancelled = True
        return result
    result.steps["segmentation"] = run_segment(model_dir, images, wd.segmented,
                                               progress=step("segmentation", 0.9, 1.0))
    result.cancelled = result.steps["segmentation"].cancelled
    return result
