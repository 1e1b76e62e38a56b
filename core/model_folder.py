"""A model folder: its files, reading it safely, and whether it may be written to.

A model folder holds ``model.keras`` (weights and architecture),
``model.json`` (what the model needs at prediction time: classes,
normalisation, tile size, the object size it was trained at),
``history.csv`` and ``curves.png``. Every package reads a model folder
through this module.

Models are loaded with Keras' ``safe_mode=True``: a model file that carries
Python code (a ``Lambda`` layer with a pickled function, for instance) is
refused instead of being run, so opening a model someone sent you cannot
execute anything. Every problem becomes one :class:`UserInputError`
sentence naming the file.

The model bundled with the application (``checkpoints/``) and any model
folder the user cannot write to are starting points only: training and
self-training work on a copy elsewhere and never change them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from core.errors import UserInputError, first_line
from core.jsonfile import read_json

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MODEL = ROOT / "checkpoints"
MODEL_FILE = "model.keras"
META_FILE = "model.json"
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
META_FORMAT = "segloop-unet"
META_VERSION = 1  # of model.json's layout; a folder without one was written before versions were kept
NORMALIZATION_MODES = ("percentile", "detector")  # see training.normalize


def holds_model(folder: str | os.PathLike | None) -> bool:
    """True when ``folder`` holds a trained model."""
    return bool(folder) and (Path(folder) / MODEL_FILE).is_file()


def saved_epoch(folder: str | os.PathLike) -> int | None:
    """The epoch whose weights ``folder``'s model.keras holds (from its
    model.json), or None when there is no model."""
    if not holds_model(folder):
        return None
    try:
        epoch = json.loads((Path(folder) / META_FILE).read_text(encoding="utf-8")).get("best_epoch")
    except (OSError, ValueError, AttributeError):
        return None
    return int(epoch) if isinstance(epoch, (int, float)) else None


def read_only_reason(folder: str | os.PathLike) -> str | None:
    """Why ``folder`` must not be written to ("the bundled model",
    "read-only"), or None when training may write there."""
    path = Path(folder).expanduser()
    try:
        if path.resolve() == BUNDLED_MODEL.resolve():
            return "the bundled model"
    except OSError:
        return None
    probe = path if path.exists() else next((p for p in path.parents if p.exists()), None)
    if probe is not None and not os.access(probe, os.W_OK):
        return "read-only"
    if path.is_dir() and any(not os.access(p, os.W_OK) for p in path.iterdir() if p.is_file()):
        return "read-only"
    return None


def check_writable(folder: str | os.PathLike, *, option: str = "--model") -> None:
    """Raise :class:`UserInputError` when training must not write into
    ``folder``, saying how to start from it instead."""
    reason = read_only_reason(folder)
    if reason is None:
        return
    bundled = reason == "the bundled model"
    what = "is the model bundled with the application" if bundled else "is read-only"
    raise UserInputError(
        f"The model folder {folder} {what} and is never changed: give another folder as {option} "
        f"(e.g. <working directory>/model) and add --start-from {'bundled' if bundled else folder} "
        f"to start from this model")


MODEL_FOLDER_FILES = (MODEL_FILE, META_FILE, HISTORY_FILE, CURVES_FILE)


def copy_model(source: str | os.PathLike, target: str | os.PathLike) -> list[Path]:
    """Copy the model in ``source`` into ``target`` (created if missing),
    each file written atomically; returns the files written."""
    import shutil

    from core.atomic import atomic_path

    source, target = Path(source), Path(target)
    if not holds_model(source):
        raise UserInputError(f"There is no trained model ({MODEL_FILE}) in {source} to start from")
    written = []
    for name in MODEL_FOLDER_FILES:
        if (source / name).is_file():
            with atomic_path(target / name) as tmp:
                shutil.copyfile(source / name, tmp)
            written.append(target / name)
    return written


# -- reading a model folder ---------------------------------------------------
def read_meta(model_dir: str | Path) -> dict:
    """The contents of ``model_dir/model.json``.

    Raises :class:`UserInputError` when the folder or the file is missing
    or the file is not a model description.
    """
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise UserInputError(f"The model folder does not exist: {model_dir}")
    if not model_dir.is_dir():
        raise UserInputError(f"The model folder is not a folder: {model_dir}")
    path = model_dir / META_FILE
    if not path.is_file():
        raise UserInputError(f"The model folder has no {META_FILE} (is it a trained model folder?): {model_dir}")
    meta = read_json(path, what=f"model description ({META_FILE})")
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        raise UserInputError(f"{path} does not describe a model of this application")
    version = meta.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version > META_VERSION:
        raise UserInputError(f"{path} was written by a newer version of this application (model description "
                             f"version {version}; this one reads up to {META_VERSION}): update the application")
    for key in ("classes", "normalization", "architecture"):
        if key not in meta:
            raise UserInputError(f"{path} lacks the '{key}' entry")
    problem = meta_problem(meta)
    if problem:
        raise UserInputError(f"{path} is not a valid model description: {problem}")
    return meta


def read_trained_meta(model_dir: str | Path) -> dict:
    """:func:`read_meta` of a folder that must also hold a trained model: a
    missing, unreadable or misplaced ``model.keras`` (a folder of that name)
    is refused here, before TensorFlow loads."""
    meta = read_meta(model_dir)
    path = Path(model_dir) / MODEL_FILE
    if not path.exists():
        raise UserInputError(f"The model folder has no trained model ({MODEL_FILE}; is it still training, or "
                             f"was the file moved?): {model_dir}")
    if not path.is_file():
        raise UserInputError(f"{path} is not a file: the model folder holds no trained model")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise UserInputError(f"The model file cannot be read ({exc.strerror or exc}): {path}") from None
    return meta


def write_meta(model_dir: str | Path, meta: dict) -> None:
    """Write ``model_dir/model.json`` (atomically), stamped with the format and
    the version of its layout; refused if the description is not valid."""
    from core.atomic import write_json_atomic

    meta = {**meta, "format": META_FORMAT, "version": META_VERSION}
    problem = meta_problem(meta)
    if problem:
        raise ValueError(f"not a valid model description: {problem}")
    write_json_atomic(Path(model_dir) / META_FILE, meta)


# -- what prediction reads from a description: the keys live here only -------
def class_names(meta: dict) -> list[str]:
    """The model's class names, background first."""
    return list(meta["classes"])


# The classes of a detector model (simulated or threshold-labelled CCD frames).
DETECTOR_CLASSES = ("background", "glowing", "hot pixel", "cluster")


def is_detector_model(classes) -> bool:
    """Whether a model's class names are the detector classes (:data:`DETECTOR_CLASSES`)."""
    return classes is not None and tuple(classes) == DETECTOR_CLASSES


def object_diameter(meta: dict) -> float:
    """The median object diameter (pixels) the model was trained at; 0.0
    when the description records none (photos are then not resampled)."""
    return float(meta.get("object_diameter") or 0.0)


def normalization(meta: dict) -> dict:
    """How a photo becomes the network's input (see training.normalize)."""
    return dict(meta["normalization"])


def architecture(meta: dict) -> dict:
    return dict(meta["architecture"])


def pad_multiple(meta: dict) -> int:
    """What every input side must be a multiple of (2 ** depth unless recorded)."""
    arch = meta["architecture"]
    return int(arch.get("pad_multiple", 2 ** int(arch["depth"])))


def training_record(meta: dict) -> dict:
    """The settings the model was trained with (empty when not recorded)."""
    return dict(meta.get("training") or {})


def tile_size(meta: dict, default: int) -> int:
    """The tile side the model was trained to predict with, else ``default``."""
    return int(meta.get("tile_size") or default)


class ModelFolder:
    """A model folder on disk: its files, and reading it safely.

    ``ModelFolder(path).meta()`` is the checked description, ``.load()`` the
    model and its description, ``.history`` the per-epoch table, and so on.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"ModelFolder({str(self.path)!r})"

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def meta_file(self) -> Path:
        return self.path / META_FILE

    @property
    def history(self) -> Path:
        return self.path / HISTORY_FILE

    @property
    def curves(self) -> Path:
        return self.path / CURVES_FILE

    def holds_model(self) -> bool:
        return holds_model(self.path)

    def meta(self) -> dict:
        return read_meta(self.path)

    def write_meta(self, meta: dict) -> None:
        write_meta(self.path, meta)

    def load(self, *, compile: bool = False):
        return load_model(self.path, compile=compile)

    def saved_epoch(self) -> int | None:
        return saved_epoch(self.path)

    def read_only_reason(self) -> str | None:
        return read_only_reason(self.path)


def _is_int(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_number(value, low: float, high: float) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and low <= value <= high)


def meta_problem(meta: dict) -> str | None:
    """What is wrong with a model description (types and ranges of every key
    that prediction and training read), or None when nothing is."""
    classes = meta.get("classes")
    if not (isinstance(classes, list) and len(classes) >= 2
            and all(isinstance(c, str) and c.strip() for c in classes)):
        return "'classes' must be a list of at least two class names"
    if "num_classes" in meta and meta["num_classes"] != len(classes):
        return f"'num_classes' must be {len(classes)}, the number of classes listed"
    norm = meta.get("normalization")
    if not isinstance(norm, dict) or norm.get("mode") not in NORMALIZATION_MODES:
        return f"'normalization' must be an entry with a 'mode' of {' or '.join(NORMALIZATION_MODES)}"
    if norm["mode"] == "percentile":
        low, high = norm.get("low", 0.5), norm.get("high", 99.5)
        if not (_is_number(low, 0, 100) and _is_number(high, 0, 100) and low < high):
            return "the percentile normalisation needs 0 <= low < high <= 100"
    elif not _is_number(norm.get("softening", 3.0), 1e-6, 1e6):
        return "the detector normalisation needs a 'softening' above 0"
    arch = meta.get("architecture")
    if not isinstance(arch, dict) or not _is_int(arch.get("depth"), 1, 8):
        return "'architecture' must be an entry with a whole-number 'depth' from 1 to 8"
    if "pad_multiple" in arch and not _is_int(arch["pad_multiple"], 1, 1024):
        return "'pad_multiple' must be a whole number from 1 to 1024"
    ranges = {"tile_size": (64, 16384), "patch_size": (16, 16384), "epochs_done": (0, 10**6)}
    for key, (low, high) in ranges.items():
        if meta.get(key) is not None and not _is_int(meta[key], low, high):
            return f"'{key}' must be a whole number from {low} to {high}"
    if meta.get("object_diameter") is not None and not _is_number(meta["object_diameter"], 0, 1e5):
        return "'object_diameter' must be a number of pixels (0 or more)"
    if meta.get("best_epoch") is not None and not _is_int(meta["best_epoch"], 0, 10**6):
        return "'best_epoch' must be a whole number"
    for key in ("metrics", "training"):
        if key in meta and not isinstance(meta[key], dict):
            return f"'{key}' must be an entry of named values"
    return None


def load_keras_model(path: str | Path, *, compile: bool = False):
    """Load a ``.keras`` file in safe mode, turning every failure into a
    :class:`UserInputError` naming the file. With ``compile`` the loss must
    be registered with Keras first (:func:`training.losses.keras_objects`)."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"The model file is missing: {path}")
    import zipfile

    if not zipfile.is_zipfile(path):
        raise UserInputError(f"The model file {path} is damaged or is not a saved model "
                             "(a .keras file is a zip archive; this one is not)")
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except ValueError as exc:
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text or "lambda" in text:
            raise UserInputError(
                f"The model file {path} was refused: it contains Python code (such as a Lambda layer) "
                "that could run anything on this computer; only models saved by this application are loaded"
            ) from None
        raise UserInputError(f"The model file {path} could not be read: {first_line(text) or 'unknown error'}") from None
    except Exception as exc:  # noqa: BLE001 - corrupt zip, wrong format, truncated file...
        raise UserInputError(f"The model file {path} could not be read: {first_line(exc)}") from None


def load_model(model_dir: str | Path, *, compile: bool = False):
    """Load a trained model folder.

    Parameters
    ----------
    model_dir : path
        Folder holding ``model.keras`` and ``model.json``.
    compile : bool
        Also restore the loss and optimiser state (to continue training).

    Returns
    -------
    (keras.Model, dict)
        The model and its description (model.json).

    Raises
    ------
    UserInputError
        Missing folder or file, a file that is not a model, a model file
        refused by safe mode, or a model that does not match its model.json.
    """
    meta = read_meta(model_dir)
    model = load_keras_model(Path(model_dir) / MODEL_FILE, compile=compile)
    classes = len(meta["classes"])
    outputs = model.outputs[0].shape[-1] if model.outputs else None
    if outputs is not None and outputs != classes:
        raise UserInputError(
            f"The model in {model_dir} predicts {outputs} classes but its {META_FILE} lists {classes}")
    return model, meta
