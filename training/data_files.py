"""Finding and checking a training folder: ``DIR/images`` and ``DIR/masks``.

Images and masks are paired by file stem (``a.tif`` with ``a.png``), never
by listing order. Every mask is read once up front to check it against its
image and to count the pixels of each class (the class weights come from
these counts), so a bad file is reported before any training starts, by
name, in one sentence. Numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import UserInputError
from core.imageio import IMAGE_EXTENSIONS, list_images, read_image

# More classes than this is far more likely an instance-label or 8-bit gray
# image given as a mask than a real class-index mask.
MAX_CLASSES = 16


@dataclass
class DataPair:
    """One training sample on disk."""

    stem: str
    image: Path
    mask: Path
    shape: tuple[int, int] = (0, 0)
    counts: np.ndarray | None = None  # pixels per class in the mask


@dataclass
class DataSet:
    """A checked folder of image/mask pairs."""

    folder: Path
    pairs: list[DataPair]
    num_classes: int
    class_counts: np.ndarray
    class_names: list[str]
    binary_255: bool = False  # masks are 0/255 and read as 0/1
    image_kind: str = "uint8"  # dtype of the first image: decides the normalisation
    notes: list[str] = field(default_factory=list)


def image_shape(path: Path) -> tuple[int, int]:
    """(height, width) of an image file from its header, without decoding."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                return int(page.imagelength), int(page.imagewidth)
        from PIL import Image

        with Image.open(path) as im:
            width, height = im.size
            if path.suffix.lower() in (".jpg", ".jpeg") and im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                width, height = height, width  # EXIF rotation swaps the sides
            return height, width
    except Exception:  # noqa: BLE001 - a full read gives the clear message
        return read_image(path).shape[:2]


def _by_stem(files: list[Path], what: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in files:
        if path.stem in found:
            raise UserInputError(
                f"Two {what} share the name '{path.stem}' ({found[path.stem].name} and {path.name}): "
                "images and masks are paired by name, so each name must be unique")
        found[path.stem] = path
    return found


def pair_files(folder: str | Path, *, what: str = "training data") -> list[DataPair]:
    """Image/mask pairs of ``folder/images`` and ``folder/masks``, by stem.

    Raises :class:`UserInputError` when a folder is missing or empty, or an
    image has no mask (or a mask no image), naming the first such file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"The {what} folder does not exist: {folder}")
    for sub in ("images", "masks"):
        if not (folder / sub).is_dir():
            raise UserInputError(f"The {what} folder has no '{sub}' subfolder: {folder}")
    images = _by_stem(list_images(folder / "images", what=f"{what} images folder"), "images")
    masks = _by_stem(list_images(folder / "masks", what=f"{what} masks folder"), "masks")
    lonely_images = sorted(set(images) - set(masks))
    lonely_masks = sorted(set(masks) - set(images))
    if lonely_images:
        more = f" (and {len(lonely_images) - 1} more)" if len(lonely_images) > 1 else ""
        raise UserInputError(f"Image {images[lonely_images[0]].name} has no mask named "
                             f"{lonely_images[0]}.png in {folder / 'masks'}{more}")
    if lonely_masks:
        more = f" (and {len(lonely_masks) - 1} more)" if len(lonely_masks) > 1 else ""
        raise UserInputError(f"Mask {masks[lonely_masks[0]].name} has no image with the same name in "
                             f"{folder / 'images'}{more}")
    return [DataPair(stem, images[stem], masks[stem]) for stem in sorted(images)]


def read_mask(path: Path) -> np.ndarray:
    """A mask as a 2-D integer array (a gray-looking colour mask is accepted)."""
    mask = read_image(path)
    if mask.ndim == 3:
        first = mask[..., 0]
        if mask.shape[-1] >= 3 and not (np.array_equal(first, mask[..., 1]) and np.array_equal(first, mask[..., 2])):
            raise UserInputError(f"Mask {path.name} is a colour image; a mask must hold one class index per pixel")
        mask = first
    if mask.dtype.kind == "f":
        if not np.all(np.isfinite(mask)) or np.any(mask != np.round(mask)) or mask.min() < 0:
            raise UserInputError(f"Mask {path.name} holds fractional or negative values; "
                                 "a mask must hold class indices 0, 1, 2, ...")
        mask = mask.astype(np.int64)
    return mask


DESCRIPTIONS = ("classes.json", "simulation.json", "ccd_labels.json", "synthesis.json")


def read_description(folder: Path) -> dict:
    """The description of a data set: what the stage that made it wrote next
    to it (``simulation.json``, ``synthesis.json``) merged with what the user
    wrote by hand (``classes.json``: a list of class names, or
    {"classes": [...]}), the earlier file of ``DESCRIPTIONS`` winning where
    two say the same key; {} when there is none."""
    merged: dict = {}
    for name in reversed(DESCRIPTIONS):
        path = Path(folder) / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        merged.update({"classes": data} if isinstance(data, list) else data if isinstance(data, dict) else {})
    return merged


def read_class_names(folder: Path, num_classes: int) -> list[str]:
    """Class names from the data set's description when present and of the
    right length, else generic names."""
    names = read_description(folder).get("classes")
    if isinstance(names, list) and len(names) == num_classes and all(isinstance(n, str) for n in names):
        return list(names)
    if num_classes == 2:
        return ["background", "object"]
    return ["background"] + [f"class {c}" for c in range(1, num_classes)]


def scan_data(folder: str | Path, *, num_classes: int | None = None, what: str = "training data",
              progress=None) -> DataSet:
    """Pair and check a folder, counting the pixels of each class.

    Parameters
    ----------
    folder : path
        Folder holding ``images/`` and ``masks/``.
    num_classes : int, optional
        Expected number of classes K (masks must hold 0..K-1); inferred from
        the masks when omitted (the largest index + 1, at least 2).
    what : str
        How the folder is named in error messages.
    progress : core.progress.Progress, optional
        Receives one update per mask read.

    Raises
    ------
    UserInputError
        Naming the first mismatched pair, the first mask whose size differs
        from its image, or the first mask with a class index beyond K.
    """
    folder = Path(folder)
    pairs = pair_files(folder, what=what)
    counts = np.zeros(256 if num_classes is None else num_classes, np.int64)
    values_seen = np.zeros(65536, bool)
    for i, pair in enumerate(pairs):
        if progress is not None:
            progress.update(i, len(pairs), f"checking masks ({pair.mask.name})")
        mask = read_mask(pair.mask)
        shape = image_shape(pair.image)
        if tuple(mask.shape) != tuple(shape):
            raise UserInputError(
                f"Mask {pair.mask.name} is {mask.shape[1]} x {mask.shape[0]} pixels but its image "
                f"{pair.image.name} is {shape[1]} x {shape[0]}")
        pair.shape = tuple(int(s) for s in shape)
        top = int(mask.max()) if mask.size else 0
        limit = num_classes if num_classes is not None else 65536
        if top >= limit or (mask.dtype.kind == "i" and mask.min() < 0):
            raise UserInputError(
                f"Mask {pair.mask.name} holds class index {top}, but the model has {num_classes} classes "
                f"(0..{num_classes - 1})")
        hist = np.bincount(mask.reshape(-1), minlength=1)
        pair.counts = hist
        values_seen[: hist.size] |= hist > 0
        if hist.size > counts.size:
            counts = np.concatenate([counts, np.zeros(hist.size - counts.size, np.int64)])
        counts[: hist.size] += hist
    binary_255 = False
    present = np.flatnonzero(values_seen)
    if num_classes is None:
        if present.max() == 255 and set(present.tolist()) <= {0, 255}:
            binary_255 = True  # 0/255 masks: the usual way to save a binary mask
            counts = np.array([counts[0], counts[255]])
            num_classes = 2
            for pair in pairs:
                hist = np.zeros(256, np.int64)
                hist[: pair.counts.size] = pair.counts
                pair.counts = hist[[0, 255]]
        elif present.max() >= MAX_CLASSES:
            bad = next(p for p in pairs if int(read_mask(p.mask).max()) >= MAX_CLASSES)
            raise UserInputError(
                f"Mask {bad.mask.name} holds value {int(read_mask(bad.mask).max())}; training masks must hold "
                f"class indices 0..{MAX_CLASSES - 1} (0/255 binary masks are also accepted)")
        else:
            num_classes = max(2, int(present.max()) + 1)
    counts = counts[:num_classes]
    for pair in pairs:
        hist = np.zeros(num_classes, np.int64)
        hist[: min(num_classes, pair.counts.size)] = pair.counts[:num_classes]
        pair.counts = hist
    if progress is not None:
        progress.update(len(pairs), len(pairs), "masks checked")
    first = read_image(pairs[0].image)
    kind = "float" if first.dtype.kind == "f" else str(first.dtype)
    return DataSet(folder, pairs, num_classes, counts, read_class_names(folder, num_classes), binary_255, kind)


__all__ = ["DataPair", "DataSet", "MAX_CLASSES", "pair_files", "scan_data", "read_mask", "image_shape",
           "IMAGE_EXTENSIONS"]
