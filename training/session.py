"""The TensorFlow side of :func:`training.train.run_training`: preparing the
data pipeline and the model (new or continued), fitting with callbacks,
and writing model.json. Imported only when training starts."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import UserInputError
from core.model_folder import ModelFolder, architecture, class_names, load_keras_model, read_meta
from core.model_folder import normalization as model_normalization
from core.model_folder import write_meta as write_model_meta
from core.workdir import now_iso, software_versions
from training import dataset as ds
from training.data_files import DataSet, read_description, scan_data
from training.history import read_history
from training.losses import class_weights_from_counts, metric_name, per_class_iou_metrics, weighted_loss
from training.normalize import default_spec, mode_for_dtype


@dataclass
class Plan:
    """Everything decided before the first batch."""

    data: DataSet
    val_data: DataSet
    train_indices: list[int]
    val_indices: list[int]
    model_dir: Path
    normalization: dict
    architecture: dict
    class_weights: np.ndarray
    model: object
    train_ds: object
    val_ds: object
    steps: int
    val_steps: int
    patch_size: int = 256
    initial_epoch: int = 0
    epochs: int = 0
    resumed: bool = False
    best: float = math.inf
    best_epoch: int | None = None
    previous_metrics: dict = field(default_factory=dict)
    created: str = ""
    start_from: Path | None = None  # copied into model_dir when the first epoch is recorded
    replicas: int = 1  # devices trained on at once (tf.distribute.MirroredStrategy)
    # The row of the saved epoch when history.csv lacks it (a stop between saving the model and its row).
    missing_rows: list = field(default_factory=list)

    def describe(self) -> str:
        weights = ", ".join(f"{n} {w:.3g}" for n, w in zip(self.data.class_names, self.class_weights))
        what = (f"continuing the model in {self.model_dir} from epoch {self.initial_epoch + 1}" if self.resumed
                else f"new U-Net (depth {self.architecture['depth']}, {self.architecture['base_filters']} "
                     f"base filters)")
        return (f"Training: {what}; {len(self.train_indices)} training and {len(self.val_indices)} "
                f"validation images, {self.data.num_classes} classes, {self.normalization['mode']} "
                f"normalisation, class weights: {weights}; {self.steps} batches per epoch, "
                f"epochs {self.initial_epoch + 1}..{self.epochs}.")


@dataclass
class FitState:
    epochs_run: int
    stopped_early: bool


def _architecture(settings, tf) -> dict:
    from training.unet import preset

    name = settings.preset
    if name == "auto":
        name = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    arch = preset(name)
    if settings.depth is not None:
        arch["depth"] = int(settings.depth)
    if settings.base_filters is not None:
        arch["base_filters"] = int(settings.base_filters)
    arch.update(preset=name, precision=settings.precision, pad_multiple=2 ** arch["depth"])
    return arch


# Memory a training step takes per patch pixel and first-level filter on the
# processor: activations and their gradients, about 100 bytes (peak resident
# memory measured over batches of 4 to 64 patches of 256 pixels, 8 and 32
# filters); TensorFlow and the model take about 0.7 GB besides.
STEP_BYTES_PER_PIXEL_FILTER = 100
TRAINING_BASE_BYTES = 700_000_000


def check_training_memory(batch: int, patch: int, base_filters: int, cache_mb: float) -> None:
    """Refuse a batch that would not fit in this computer's free memory
    (training on the processor), naming the largest that would."""
    from core.machine import available_memory, gigabytes

    free = available_memory()
    if free is None:
        return
    per_patch = STEP_BYTES_PER_PIXEL_FILTER * base_filters * patch * patch
    fixed = TRAINING_BASE_BYTES + cache_mb * 1e6
    needed = fixed + batch * per_patch
    if needed <= free:
        return
    largest = int((free - fixed) // per_patch)
    advice = (f"choose a batch size of at most {largest}" if largest >= 1
              else "close other programs to free memory first")
    raise UserInputError(f"A batch of {batch} patches of {patch} x {patch} pixels needs about {gigabytes(needed)} "
                         f"of memory to train on the processor, and {gigabytes(free)} is free: {advice}")


def distribution(tf):
    """``tf.distribute.MirroredStrategy`` over this machine's GPUs when it has
    several (or over the logical CPU devices it was split into, see
    ``tf.config.set_logical_device_configuration``); None for one device.
    Each device takes a batch of the training settings' size, so a batch of
    the whole is that many times larger."""
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus if len(gpus) > 1 else ([] if gpus else tf.config.list_logical_devices("CPU"))
    if len(devices) < 2:
        return None
    return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])


def _compile(model, optimizer, settings, class_weights, names) -> None:
    model.compile(optimizer=optimizer, loss=weighted_loss(class_weights, dice_weight=settings.dice_weight),
                  metrics=per_class_iou_metrics(names))


def _optimizer(settings):
    import keras

    from training.settings import OPTIMIZERS

    rate = settings.learning_rate if settings.learning_rate is not None else OPTIMIZERS[settings.optimizer]
    if settings.optimizer == "adadelta":
        return keras.optimizers.Adadelta(learning_rate=rate)
    return keras.optimizers.Adam(learning_rate=rate)


def prepare(data_dir: Path, model_dir: Path, settings, progress, validation,
            start_from: Path | None = None) -> Plan:
    """Check the data and build (or load) the model; writes nothing.

    ``start_from``: a model folder to continue instead of ``model_dir``
    (which holds no model yet); it is copied there only when the first
    epoch is recorded, so a run stopped before that leaves no trace."""
    meta = None
    origin = start_from if start_from is not None else model_dir
    if ModelFolder(origin).model_file.exists() or ModelFolder(origin).meta_file.exists():
        meta = read_meta(origin)
    num_classes = len(class_names(meta)) if meta else settings.num_classes
    data = scan_data(data_dir, num_classes=num_classes, progress=progress)
    if meta and data.class_names != class_names(meta) and len(class_names(meta)) == data.num_classes:
        data.class_names = class_names(meta)
    if validation is not None:
        val_data = scan_data(validation, num_classes=data.num_classes, what="validation data", progress=progress)
        val_data.class_names = data.class_names
        train_indices, val_indices = list(range(len(data.pairs))), list(range(len(val_data.pairs)))
    else:
        val_data = data
        train_indices, val_indices = ds.split_indices(len(data.pairs), settings.val_fraction, settings.seed)
        if train_indices == val_indices:
            progress.log("Only one training image: it is used for validation too.")

    # TensorFlow only now: bad data is reported without the start-up wait.
    progress.update(0, 0, "building the U-Net")
    import keras
    import tensorflow as tf

    if meta:
        normalization, arch = model_normalization(meta), architecture(meta)
    else:
        mode = settings.normalization
        if mode == "auto":
            mode = mode_for_dtype(np.float32 if data.image_kind == "float" else np.uint8)
        normalization, arch = default_spec(mode), _architecture(settings, tf)
    if settings.patch_size % arch["pad_multiple"]:
        raise UserInputError(f"The patch size ({settings.patch_size}) must be a multiple of "
                             f"{arch['pad_multiple']} for a U-Net of depth {arch['depth']}")

    train_counts = np.sum([data.pairs[i].counts for i in train_indices], axis=0)
    class_weights = class_weights_from_counts(train_counts, method=settings.class_weighting,
                                              max_ratio=settings.max_class_weight_ratio)
    keras.utils.set_random_seed(settings.seed)
    strategy = distribution(tf)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        if meta:
            from training.losses import keras_objects

            keras_objects()  # registers the loss so the compiled model can be rebuilt
            model = load_keras_model(ModelFolder(origin).model_file, compile=True)
            # A model saved for segmenting only (the bundled one) has no optimiser: a fresh one.
            optimizer = getattr(model, "optimizer", None) or _optimizer(settings)
        else:
            from training.unet import get_model

            model = get_model((None, None, 1), data.num_classes, depth=arch["depth"],
                              base_filters=arch["base_filters"], precision=arch["precision"])
            optimizer = _optimizer(settings)
        _compile(model, optimizer, settings, class_weights, data.class_names)
    if replicas > 1:
        progress.log(f"Training on {replicas} devices at once: batches of {settings.batch_size * replicas} "
                     f"images, {settings.batch_size} per device.")

    # Images smaller than the patch: a smaller patch, not mostly padding.
    largest = max(max(p.shape) for p in data.pairs + val_data.pairs)
    size = min(settings.patch_size, -(-largest // arch["pad_multiple"]) * arch["pad_multiple"])
    batch = settings.batch_size * replicas
    if not tf.config.list_physical_devices("GPU"):
        check_training_memory(batch, size, arch["base_filters"], settings.cache_mb)
    train_source = ds.SampleSource(data, normalization, cache_mb=settings.cache_mb * 0.8)
    val_source = train_source if val_data is data else ds.SampleSource(val_data, normalization,
                                                                       cache_mb=settings.cache_mb * 0.2)
    aug = ds.Augmentation.for_mode(normalization["mode"], settings.augment)
    rng = np.random.default_rng(settings.seed)
    train_ds = ds.make_tf_dataset(lambda: ds.training_patches(train_source, train_indices, size, rng, aug),
                                  size, batch)
    val_ds = ds.make_tf_dataset(lambda: ds.validation_patches(val_source, val_indices, size), size, batch,
                                repeat=True)
    steps = ds.steps_for(ds.count_training_patches(train_source, train_indices, size), batch)
    val_steps = ds.steps_for(ds.count_validation_patches(val_source, val_indices, size), batch)

    plan = Plan(data, val_data, train_indices, val_indices, model_dir, normalization, arch, class_weights,
                model, train_ds, val_ds, steps, val_steps, patch_size=size, created=now_iso(),
                start_from=start_from, replicas=replicas)
    if meta:
        rows = read_history(ModelFolder(origin).history)
        recorded = max([int(float(r["epoch"])) for r in rows], default=0)
        done = max(recorded, int(meta.get("epochs_done", 0)))
        if done > recorded and meta.get("metrics"):
            plan.missing_rows = [{"epoch": done, **meta["metrics"]}]
        plan.resumed, plan.initial_epoch = True, done
        plan.epochs = settings.epochs if (not meta.get("finished") and done < settings.epochs) \
            else done + settings.epochs
        plan.best_epoch = meta.get("best_epoch")
        plan.previous_metrics = dict(meta.get("metrics", {}))
        plan.created = meta.get("created", plan.created)
        progress.update(0, 1, "checking the saved model on the validation data")
        # The saved model is the one to beat, on this run's data and class weights.
        from training.callbacks import ProgressCallback, TrainingCancelled

        try:
            plan.best = float(model.evaluate(val_ds, steps=val_steps, verbose=0, return_dict=True, callbacks=[
                ProgressCallback(progress, steps=steps, initial_epoch=done, epochs=plan.epochs)])["loss"])
        except TrainingCancelled:
            pass  # fit() does not start after a cancel
    else:
        plan.epochs = settings.epochs
    return plan


def fit(plan: Plan, settings, progress, on_epoch_end) -> FitState:
    """Run ``model.fit`` with the application's callbacks."""
    import keras

    from core.model_folder import copy_model, holds_model
    from training.callbacks import EpochRecorder, ProgressCallback, TrainingCancelled

    names = [f"iou_{metric_name(n)}" for n in plan.data.class_names]

    def record_best(epoch: int, logs: dict) -> None:
        plan.best_epoch = epoch
        write_meta(plan, settings, epoch, logs, epoch, finished=False, seconds=None)

    def copy_start() -> None:
        if plan.start_from is not None and not holds_model(plan.model_dir):
            copy_model(plan.start_from, plan.model_dir)

    recorder = EpochRecorder(plan.model_dir, epochs=plan.epochs, best=plan.best, write_meta=record_best,
                             progress=progress, on_epoch_end=on_epoch_end, class_metric_names=names,
                             before_first_record=copy_start, missing_rows=plan.missing_rows)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience)
    callbacks = [
        ProgressCallback(progress, steps=plan.steps, initial_epoch=plan.initial_epoch, epochs=plan.epochs),
        recorder,
        stopper,
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=settings.lr_patience,
                                          min_lr=1e-6),
    ]
    if plan.initial_epoch < plan.epochs and not progress.cancelled:
        progress.update(0, 0, "first batch (TensorFlow prepares the model, a few seconds)")
        try:
            plan.model.fit(plan.train_ds, validation_data=plan.val_ds, epochs=plan.epochs,
                           initial_epoch=plan.initial_epoch, steps_per_epoch=plan.steps,
                           validation_steps=plan.val_steps, shuffle=False, callbacks=callbacks, verbose=0)
        except TrainingCancelled:
            pass  # model.keras holds the best epoch saved before the cancel
    return FitState(recorder.epochs_recorded, stopped_early=stopper.stopped_epoch > 0 and not progress.cancelled)


def write_meta(plan: Plan, settings, epochs_done: int, metrics: dict, best_epoch: int, *, finished: bool,
               seconds: float | None) -> None:
    """Write model.json describing model.keras."""
    previous = {}
    path = ModelFolder(plan.model_dir).meta_file
    if path.is_file():
        previous = read_meta(plan.model_dir)
    runs = list(previous.get("runs", []))
    if seconds is not None:
        runs.append({"finished": now_iso(), "data": str(plan.data.folder), "epochs_done": epochs_done,
                     "seconds": round(seconds, 1), "cancelled": not finished})
    meta = {
        "classes": list(plan.data.class_names),
        "num_classes": plan.data.num_classes,
        "input_channels": 1,
        "normalization": plan.normalization,
        "architecture": plan.architecture,
        "tile_size": int(settings.tile_size),
        "patch_size": int(plan.patch_size),
        "epochs_done": int(epochs_done),
        "best_epoch": int(best_epoch),
        "finished": bool(finished),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "training": {
            **dataclasses.asdict(settings),
            "data": str(plan.data.folder),
            "validation": str(plan.val_data.folder) if plan.val_data is not plan.data else None,
            "train_images": len(plan.train_indices),
            "val_images": len(plan.val_indices),
            "class_pixel_counts": [int(c) for c in np.sum([plan.data.pairs[i].counts for i in plan.train_indices],
                                                          axis=0)],
            "class_weights": [round(float(w), 6) for w in plan.class_weights],
            "devices": int(plan.replicas),
            "binary_255_masks": plan.data.binary_255,
        },
        "runs": runs,
        "created": plan.created,
        "updated": now_iso(),
        "versions": software_versions(),
    }
    # The median object size the model saw, so photos can be resampled to it.
    diameter = read_description(plan.data.folder).get("object_diameter") or previous.get("object_diameter")
    if isinstance(diameter, (int, float)) and diameter > 0:
        meta["object_diameter"] = float(diameter)
    write_model_meta(plan.model_dir, meta)
