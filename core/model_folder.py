"""Which model folders may be written to.

The model bundled with the application (``checkpoints/``) and any model
folder the user cannot write to are starting points only: training and
self-training work on a copy elsewhere and never change them.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import UserInputError

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_MODEL = ROOT / "checkpoints"
MODEL_FILE = "model.keras"


def holds_model(folder: str | os.PathLike | None) -> bool:
    """True when ``folder`` holds a trained model."""
    return bool(folder) and (Path(folder) / MODEL_FILE).is_file()


def saved_epoch(folder: str | os.PathLike) -> int | None:
    """The epoch whose weights ``folder``'s model.keras holds (from its
    model.json), or None when there is no model."""
    import json

    if not holds_model(folder):
        return None
    try:
        epoch = json.loads((Path(folder) / "model.json").read_text(encoding="utf-8")).get("best_epoch")
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
    what = "is the model bundled with the application" if reason == "the bundled model" else "is read-only"
    raise UserInputError(
        f"The model folder {folder} {what} and is never changed: give another folder as {option} "
        f"(e.g. <working directory>/model) and add --start-from {folder} to start from this model")


MODEL_FOLDER_FILES = (MODEL_FILE, "model.json", "history.csv", "curves.png")


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
