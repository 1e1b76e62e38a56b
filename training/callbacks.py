"""Keras callbacks that connect training to the application.

:class:`ProgressCallback` reports every batch through the progress protocol
and stops training cleanly when the user cancels. :class:`EpochRecorder`
keeps the model folder current after each epoch: history.csv, the best
checkpoint (written atomically, only when the validation loss improves),
model.json and curves.png, and hands the epoch's figures to an optional
``on_epoch_end(epoch, logs)`` callable (the GUI plots live curves with it).

Each finished epoch is also logged as one parseable line::

    epoch 3/30: loss=0.4123 iou_object=0.7012 val_loss=0.3810 val_iou_object=0.7344 learning_rate=0.001

(``epoch <number, from 1>/<last>: `` then space-separated ``key=value``;
:func:`training.history.parse_epoch_line` reads it back).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import keras

from core.atomic import atomic_path
from core.model_folder import ModelFolder
from training.history import format_epoch_line, plot_curves, read_history, write_history


class TrainingCancelled(Exception):
    """Raised from inside ``fit`` when the user cancels, so training stops
    after the current batch instead of finishing the epoch's validation."""


class ProgressCallback(keras.callbacks.Callback):
    """Per-batch progress and cooperative cancel: a cancel stops training at
    the end of the running batch (or validation batch) by raising
    :class:`TrainingCancelled`, which :func:`training.session.fit` catches;
    the interrupted epoch is neither recorded nor saved."""

    def __init__(self, progress, *, steps: int, initial_epoch: int, epochs: int) -> None:
        super().__init__()
        self.progress = progress
        self.steps = steps
        self.initial_epoch = initial_epoch
        self.epochs = epochs
        self.epoch = initial_epoch

    @property
    def cancelled(self) -> bool:
        return self.progress is not None and self.progress.cancelled

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    # Inside a batch nothing is being written: the stage may be ended there
    # at once (see core.progress.Progress.set_interruptible).
    def on_train_batch_begin(self, batch, logs=None):
        if self.progress is not None:
            self.progress.set_interruptible(True)

    def on_test_batch_begin(self, batch, logs=None):
        if self.progress is not None:
            self.progress.set_interruptible(True)

    def on_train_batch_end(self, batch, logs=None):
        if self.progress is None:
            return
        self.progress.set_interruptible(False)
        if self.progress.cancelled:
            self.progress.wait_to_be_ended()  # nothing written since the last epoch: may end here
            raise TrainingCancelled
        done = (self.epoch - self.initial_epoch) * self.steps + batch + 1
        total = (self.epochs - self.initial_epoch) * self.steps
        loss = (logs or {}).get("loss")
        loss_text = f", loss {float(loss):.4f}" if loss is not None else ""
        self.progress.update(done, total, f"epoch {self.epoch + 1}/{self.epochs}, "
                                          f"batch {batch + 1}/{self.steps}{loss_text}")

    def on_test_batch_end(self, batch, logs=None):
        if self.progress is not None:
            self.progress.set_interruptible(False)
        # A cancel during validation must not wait for the whole pass.
        if self.cancelled:
            self.progress.wait_to_be_ended()
            raise TrainingCancelled


class EpochRecorder(keras.callbacks.Callback):
    """Writes history.csv, the best checkpoint, model.json and curves.png."""

    def __init__(self, model_dir: Path, *, epochs: int, best: float, write_meta: Callable[[int, dict], None],
                 progress=None, on_epoch_end: Callable[[int, dict], None] | None = None,
                 class_metric_names: list[str] | None = None,
                 before_first_record: Callable[[], None] | None = None,
                 missing_rows: list[dict] | None = None) -> None:
        super().__init__()
        self.missing_rows = list(missing_rows or [])  # rows history.csv lacks, written with the first row
        self.before_first_record = before_first_record  # e.g. copy the model trained on into model_dir
        self.model_dir = Path(model_dir)
        self.epochs = epochs
        self.best = best
        self.best_epoch: int | None = None
        self.write_meta = write_meta
        self.progress = progress
        self.hook = on_epoch_end
        self.class_metric_names = class_metric_names or []
        self.epochs_recorded = 0

    @property
    def history_path(self) -> Path:
        return ModelFolder(self.model_dir).history

    def on_epoch_end(self, epoch, logs=None):
        if self.progress is not None and self.progress.cancelled:
            return  # an interrupted epoch is neither recorded nor saved
        logs = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if self.before_first_record is not None:
            self.before_first_record()
            self.before_first_record = None
        # A new best is saved before its history row is written: a kill in
        # between leaves a model at least as new as its history, so a resume
        # never records a lost epoch's figures against other weights.
        val_loss = logs.get("val_loss", logs.get("loss"))
        if val_loss is not None and math.isfinite(val_loss) and val_loss < self.best:
            self.best, self.best_epoch = val_loss, epoch + 1
            with atomic_path(ModelFolder(self.model_dir).model_file) as tmp:
                self.model.save(tmp)
            self.write_meta(epoch + 1, logs)
        rows = read_history(self.history_path)
        rows = [r for r in rows if int(float(r.get("epoch", -1))) < epoch + 1]
        known = {int(float(r.get("epoch", -1))) for r in rows}
        rows += [r for r in self.missing_rows if r["epoch"] not in known and r["epoch"] < epoch + 1]
        self.missing_rows = []
        rows.append({"epoch": epoch + 1, **logs})
        write_history(self.history_path, rows)
        self.epochs_recorded += 1
        try:
            plot_curves(rows, ModelFolder(self.model_dir).curves, class_metric_names=self.class_metric_names)
        except Exception as exc:  # noqa: BLE001 - a failed plot must not stop training
            if self.progress is not None:
                self.progress.log(f"curves.png not updated: {exc}")
        if self.progress is not None:
            self.progress.log(format_epoch_line(epoch + 1, self.epochs, logs))
        if self.hook is not None:
            self.hook(epoch + 1, dict(logs))


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False
