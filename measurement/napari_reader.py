"""A napari reader for a folder written by ``segment``.

Dropping the folder (or one of its ``<stem>_labels.tif``) on napari opens,
for every photo, the photo as an image layer and its objects as a labels
layer, both at the pixel size the label image carries, so napari's scale
bar and measurements are in µm (or nm, mm). The photo is read from where
``segment.json`` says it was segmented from; where it is gone, the overlay
PNG stands in. napari itself is an optional extra (``pip install
.[napari]``); this module needs only the application's own packages.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LABELS_SUFFIX = "_labels.tif"


def napari_get_reader(path):
    """The reader function for ``path`` if it is a segmented folder or a
    label image in one, else None (napari then asks other readers)."""
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None
        path = path[0]
    folder = Path(path)
    if folder.is_file() and folder.name.endswith(LABELS_SUFFIX):
        folder = folder.parent
    if not (folder.is_dir() and (folder / "segment.json").is_file()):
        return None
    stems = None if Path(path).is_dir() else [Path(path).name[: -len(LABELS_SUFFIX)]]
    return lambda _path: read_segmented(folder, stems)


def label_scale(path: str | Path) -> tuple[tuple[float, float], str]:
    """Pixel size (y, x) and unit carried by a label TIFF (read as any photo's
    is, :func:`measurement.calibration.calibration_from_file`); (1, 1) and
    "pixel" when it carries none."""
    from measurement.calibration import calibration_from_file

    found = calibration_from_file(path)
    if found is None:
        return (1.0, 1.0), "pixel"
    return (found.pixel_size, found.pixel_size), found.unit


def read_segmented(folder: str | Path, stems: list[str] | None = None) -> list[tuple]:
    """napari layer data: for each photo (or only ``stems``), an image layer
    (the photo) and a labels layer (its objects), scaled to physical units."""
    from core.imageio import read_image

    folder = Path(folder)
    try:
        sources = json.loads((folder / "segment.json").read_text(encoding="utf-8")).get("sources", {})
    except (OSError, ValueError):
        sources = {}
    if stems is None:
        stems = sorted(p.name[: -len(LABELS_SUFFIX)] for p in folder.glob(f"*{LABELS_SUFFIX}"))
    layers = []
    for stem in stems:
        labels_path = folder / f"{stem}{LABELS_SUFFIX}"
        if not labels_path.is_file():
            continue
        scale, unit = label_scale(labels_path)
        photo_path = Path(sources.get(stem, ""))
        from core.fits import split_unit

        if sources.get(stem) and split_unit(photo_path)[0].is_file():
            photo, photo_name = read_image(photo_path), photo_path.name
        elif (folder / f"{stem}_overlay.png").is_file():
            photo, photo_name = read_image(folder / f"{stem}_overlay.png"), f"{stem}_overlay.png"
        else:
            photo = None
        meta = {"units": unit} if unit != "pixel" else {}
        if photo is not None:
            layers.append((photo, {"name": photo_name, "scale": scale, "metadata": meta,
                                   "rgb": bool(photo.ndim == 3 and photo.shape[-1] in (3, 4))}, "image"))
        labels = np.asarray(read_image(labels_path))
        layers.append((labels, {"name": f"{stem} objects", "scale": scale, "metadata": meta}, "labels"))
    return layers
