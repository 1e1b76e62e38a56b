"""Training a U-Net on a folder of images and class masks.

``run_training(data, model_dir, settings=TrainSettings(...), progress=...)``
checks the data (pairs by name, sizes, class indices), computes class
weights from the masks, builds a U-Net (or continues the one in
``model_dir``), and trains it on streamed, augmented patches. After every
epoch the model folder is brought up to date (see
:mod:`training.callbacks`): ``model.keras`` holds the best model so far by
validation loss, so a cancel or a crash never loses it.

Live curves: pass ``on_epoch_end=callable(epoch, logs)`` to
:func:`run_training`, or parse the ``epoch N/M: key=value ...`` lines that
arrive through ``progress.log`` (:func:`training.history.parse_epoch_line`).

TensorFlow is imported inside :func:`run_training` only.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import UserInputError
from core.model_folder import ModelFolder
from core.progress import Progress, format_duration
from training.history import read_history
from training.settings import TrainSettings


@dataclass
class TrainResult:
    """What a training run did."""

    model_dir: Path
    class_names: list[str]
    train_images: int
    val_images: int
    epochs_run: int  # epochs completed in this run
    epochs_done: int  # epochs completed in total (with earlier runs)
    best_epoch: int | None  # epoch of model.keras (from 1), None if no model was saved
    metrics: dict = field(default_factory=dict)  # validation figures of the best epoch
    seconds: float = 0.0
    cancelled: bool = False
    resumed: bool = False
    stopped_early: bool = False

    def summary(self) -> str:
        how = "resumed" if self.resumed else "trained"
        status = "cancelled" if self.cancelled else ("stopped early" if self.stopped_early else "finished")
        text = (f"Model {how} on {self.train_images} images ({self.val_images} for validation): "
                f"{self.epochs_run} epochs in {format_duration(self.seconds)} ({status}), "
                f"{self.epochs_done} in total.")
        if self.best_epoch is None:
            return text + f" No epoch completed, so no model was saved in {self.model_dir}."
        ious = ", ".join(f"{name} {self.metrics[key]:.3f}" for name, key in
                         ((n, f"val_iou_{_metric(n)}") for n in self.class_names) if key in self.metrics)
        loss = self.metrics.get("val_loss")
        loss_text = f", validation loss {loss:.4f}" if loss is not None else ""
        return (text + f" Best model (epoch {self.best_epoch}{loss_text}) in {self.model_dir / 'model.keras'}; "
                f"validation IoU per class: {ious}.")


def _metric(name: str) -> str:
    from training.losses import metric_name

    return metric_name(name)


def run_training(
    data: str | Path,
    model_dir: str | Path,
    *,
    settings: TrainSettings | None = None,
    progress: Progress | None = None,
    validation: str | Path | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    start_from: str | Path | None = None,
) -> TrainResult:
    """Train (or continue training) a U-Net on ``data/images`` + ``data/masks``.

    Parameters
    ----------
    data : path
        Folder with ``images/`` and ``masks/`` (class indices, same stems).
    model_dir : path
        Model folder; created if missing. When it already holds a model,
        training continues from it (from the epoch after the last recorded
        one, up to ``settings.epochs``; a finished model gets
        ``settings.epochs`` more epochs). The continued model keeps its
        architecture, classes, normalisation and optimiser state; the class
        weights come from the new data, and the saved model, scored on the
        new validation data, is the one a new epoch must beat.
    settings : TrainSettings, optional
    progress : core.progress.Progress, optional
        Per-batch ``update``, one ``log`` line per epoch; ``cancelled`` is
        polled every batch.
    validation : path, optional
        A separate folder (images/ + masks/) to validate on; otherwise a
        seeded random ``settings.val_fraction`` of ``data`` is held out.
    on_epoch_end : callable, optional
        Called as ``on_epoch_end(epoch, logs)`` after each completed epoch
        (``epoch`` from 1; ``logs`` maps "loss", "val_loss", "val_iou_<class>",
        "learning_rate", ... to floats).
    start_from : path, optional
        A model folder to start from when ``model_dir`` holds no model yet
        (the bundled model, a colleague's read-only one). It is never
        changed: it is copied into ``model_dir`` when the first epoch is
        recorded, so a run stopped before that writes nothing at all.

    Returns
    -------
    TrainResult

    Raises
    ------
    UserInputError
        Bad settings, a missing or inconsistent data folder, a model
        folder whose model does not fit the data, or a ``model_dir`` that
        must not be written to (the bundled model, a read-only folder), or
        that another run is training or changing (it is held while this one
        trains, see :func:`core.transaction.hold`); raised before anything
        is written.
    """
    from core.atomic import remove_stale_parts
    from core.model_folder import check_writable
    from core.overlap import refuse_overlap
    from core.transaction import hold

    settings = dataclasses.replace(settings) if settings is not None else TrainSettings()
    settings.check()
    progress = progress if progress is not None else Progress()
    model_dir = Path(model_dir)
    if model_dir.exists() and not model_dir.is_dir():
        raise UserInputError(f"The model folder is a file, not a folder: {model_dir}")
    check_writable(model_dir)
    refuse_overlap(model_dir, [data, validation], output_kind="the model folder", input_kind="the training data",
                   remedy="choose a model folder apart from the training data")
    with hold(model_dir):
        # Held, nothing else writes here: every temporary file is a leftover
        # of a run that was killed while it saved.
        remove_stale_parts(model_dir, older_than_s=0)
        return _checked_start(data, model_dir, settings, progress, validation, on_epoch_end, start_from)


def _checked_start(data, model_dir: Path, settings: TrainSettings, progress: Progress, validation, on_epoch_end,
                   start_from) -> TrainResult:
    from core.model_folder import holds_model

    if start_from is not None and holds_model(model_dir):
        start_from = None  # the model already there is continued
    if start_from is not None:
        if not holds_model(start_from):
            raise UserInputError(f"There is no trained model (model.keras) in {start_from} to start from")
        progress.log(f"Training starts from the model in {start_from} and saves into {model_dir}; "
                     f"{start_from} itself is left as it is.")
    return _train(Path(data), model_dir, settings, progress, validation, on_epoch_end,
                  Path(start_from) if start_from is not None else None)


def _train(data: Path, model_dir: Path, settings: TrainSettings, progress: Progress, validation,
           on_epoch_end, start_from: Path | None) -> TrainResult:
    from training import session

    t0 = time.monotonic()
    plan = session.prepare(data, model_dir, settings, progress, validation, start_from)
    progress.log(plan.describe())
    state = session.fit(plan, settings, progress, on_epoch_end)
    metrics, best_epoch = _best_metrics(model_dir, plan)
    result = TrainResult(
        model_dir=model_dir, class_names=plan.data.class_names, train_images=len(plan.train_indices),
        val_images=len(plan.val_indices), epochs_run=state.epochs_run,
        epochs_done=plan.initial_epoch + state.epochs_run, best_epoch=best_epoch, metrics=metrics,
        seconds=time.monotonic() - t0, cancelled=progress.cancelled, resumed=plan.resumed,
        stopped_early=state.stopped_early,
    )
    if best_epoch is not None and (state.epochs_run or not plan.resumed):
        session.write_meta(plan, settings, result.epochs_done, metrics, best_epoch,
                           finished=not result.cancelled, seconds=result.seconds)
    return result


def _best_metrics(model_dir: Path, plan) -> tuple[dict, int | None]:
    """Figures of the epoch whose weights are in model.keras."""
    if not ModelFolder(model_dir).holds_model():
        return {}, None
    best_epoch = plan.best_epoch
    rows = read_history(ModelFolder(model_dir).history)
    for row in rows:
        if best_epoch is not None and int(float(row["epoch"])) == best_epoch:
            return {k: float(v) for k, v in row.items() if k != "epoch" and v not in ("", None)
                    and math.isfinite(float(v))}, best_epoch
    return dict(plan.previous_metrics), best_epoch
