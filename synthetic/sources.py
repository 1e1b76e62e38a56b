"""What compositing draws from: pool objects and photo backgrounds, each
with the statistics auto-segmentation measured on its photo."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from core.errors import ImageReadError, UserInputError
from core.gray import to_gray, to_gray_float
from core.imageio import read_image
from core.photos import PhotoLoop
from core.progress import Progress
from core.workdir import WorkingDirectory
from segmentation.annotations import find_annotations
from synthetic.backgrounds import Background, fill_objects


@dataclass
class PhotoStats:
    name: str
    polarity: str = "dark"
    background_level: float = 0.5
    object_level: float = 0.2
    noise: float = 0.01
    median_diameter: float = 0.0
    objects: int = 0
    pooled: int = 0
    width: int = 0
    height: int = 0
    gray_range: tuple[float, float] | None = None
    mask: str = ""

    @property
    def contrast(self) -> float:
        return self.object_level - self.background_level


@dataclass
class PoolObject:
    name: str
    gray: np.ndarray       # float32, in the gray units of its photo
    alpha: np.ndarray      # float32 0..1, the object's mask
    cls: int
    photo: PhotoStats
    scale: float           # factor that brings its photo to the common object scale
    sixteen_bit: bool = False


@dataclass
class Sources:
    objects: list[PoolObject]
    backgrounds: list[Background]
    photos: dict[str, PhotoStats] = field(default_factory=dict)
    num_classes: int = 2
    sixteen_bit: bool = False
    by_polarity: dict[str, list[PoolObject]] = field(default_factory=dict)
    by_photo: dict[str, list[PoolObject]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for obj in self.objects:
            if obj.photo.name:
                self.by_polarity.setdefault(obj.photo.polarity, []).append(obj)
                self.by_photo.setdefault(obj.photo.name, []).append(obj)


def photo_stats(workdir: WorkingDirectory) -> tuple[Path | None, dict[str, PhotoStats]]:
    """Per-photo statistics from auto-segmentation, replaced by those of the
    latest self-training round where one has measured the photo again."""
    stages = workdir.load_project().get("stages", {})
    stage = stages.get("autoseg", {})
    merged = {**stage.get("photos", {}), **stages.get("refine", {}).get("photos", {})}
    photos = {}
    for name, info in merged.items():
        known = {k: info[k] for k in ("polarity", "background_level", "object_level", "objects", "pooled",
                                      "width", "height", "mask") if k in info}
        gray_range = info.get("gray_range")
        photos[name] = PhotoStats(name=name, noise=float(info.get("noise_sigma", 0.01)),
                                  median_diameter=float(info.get("median_diameter_px", 0.0)),
                                  gray_range=tuple(gray_range) if gray_range else None, **known)
    folder = stage.get("images")
    return (Path(folder) if folder else None), photos


def mask_path(workdir: WorkingDirectory, mask: str) -> Path:
    """A photo's full-image mask: a name in autoseg/, or a path relative to the working directory."""
    return workdir.root / mask if "/" in mask else workdir.autoseg / mask


def scale_for(photo: PhotoStats | None, diameter: float) -> float:
    """Resampling factor that gives a photo's objects the common median diameter."""
    if diameter <= 0 or photo is None or photo.median_diameter <= 0:
        return 1.0
    return float(np.clip(diameter / photo.median_diameter, 1 / 8, 4.0))


def load_pool(workdir: WorkingDirectory, photos: dict[str, PhotoStats], diameter: float,
              progress: Progress) -> tuple[list[PoolObject], int]:
    """Every pool object as gray + alpha, checked; returns them and the number of classes.

    Raises :class:`UserInputError` for an empty or missing pool and for a
    crop whose mask does not match it, before anything is written.
    """
    files = workdir.pool_files()
    if not files:
        raise UserInputError(
            f"The object pool in {workdir.objects_images} is empty: run Auto-segment first "
            "(or save picked objects into the pool)")
    rows = {row["file"]: row for row in workdir.read_index()}
    unknown_photo = PhotoStats(name="")
    objects: list[PoolObject] = []
    for i, name in enumerate(files):
        if i % 50 == 0:
            progress.update(i, len(files), "reading the object pool")
        try:
            crop = read_image(workdir.objects_images / name)
            mask = read_image(workdir.objects_masks / name)
        except ImageReadError as exc:
            raise UserInputError(f"Pool object unreadable: {exc}") from None
        mask = mask[..., 0] if mask.ndim == 3 else mask
        if mask.shape[:2] != crop.shape[:2]:
            raise UserInputError(
                f"Pool object {name}: its mask is {mask.shape[1]}x{mask.shape[0]} but the crop is "
                f"{crop.shape[1]}x{crop.shape[0]}; remove or replace the pair")
        if not (mask > 0).any():
            raise UserInputError(f"Pool object {name}: its mask is empty; remove the pair")
        row = rows.get(name, {})
        photo = photos.get(row.get("source_image", ""), unknown_photo)
        gray = _gray_like_photo(crop, photo)
        try:
            cls = max(1, int(row.get("class") or 1))
        except ValueError:
            cls = 1
        objects.append(PoolObject(name, gray, (mask > 0).astype(np.float32), cls, photo,
                                  scale_for(photo if photo.name else None, diameter),
                                  crop.dtype == np.uint16 or crop.dtype == np.float32))
    num_classes = 1 + max(o.cls for o in objects)
    return objects, num_classes


def _gray_like_photo(crop: np.ndarray, photo: PhotoStats) -> np.ndarray:
    """The crop in the same gray units as its photo's background, so that
    object and background intensities agree."""
    if photo.gray_range is None:
        return to_gray_float(crop)
    lo, hi = photo.gray_range
    gray = to_gray(crop).astype(np.float32)
    if hi <= lo:
        return np.zeros(gray.shape, np.float32)
    return np.clip((gray - lo) / (hi - lo), 0.0, 1.0)


MAX_BACKGROUND = 1024  # longest side kept of an enlarged photo background, pixels


def _resize(image: np.ndarray, factor: float, method) -> np.ndarray:
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize(size, method), dtype=np.float32)


def load_backgrounds(workdir: WorkingDirectory, folder: Path | None, photos: dict[str, PhotoStats],
                     diameter: float, rng: np.random.Generator, progress: Progress) -> list[Background]:
    """Backgrounds from the photos whose auto-segmentation was trusted
    (at least one pooled object), at the common object scale."""
    chosen = [p for p in photos.values() if p.pooled > 0 and p.mask]
    if folder is None or not folder.is_dir():
        if chosen:
            progress.log(f"The photos folder {folder} is not available: using generated backgrounds only")
        return []
    out = []
    by_path = {folder / photo.name: photo for photo in chosen}
    photos = PhotoLoop(list(by_path), progress, doing="preparing background from", skipped_note="background skipped")
    for _, path, image in photos:
        photo = by_path[path]
        try:
            objects = read_image(mask_path(workdir, photo.mask)) > 0
        except ImageReadError as exc:
            progress.log(f"background skipped: {exc}")
            continue
        gray = to_gray_float(image)
        if objects.shape != gray.shape:
            continue
        annotations = find_annotations(to_gray(image).astype(np.float32))
        factor = scale_for(photo, diameter)
        grow = max(3, int(round(0.2 * max(diameter, 8) / factor)))
        if factor > 1.0:
            # only a region that stays under MAX_BACKGROUND once enlarged
            side = int(MAX_BACKGROUND / factor)
            r = int(rng.integers(0, max(1, gray.shape[0] - side + 1)))
            c = int(rng.integers(0, max(1, gray.shape[1] - side + 1)))
            region = (slice(r, r + side), slice(c, c + side))
            gray, objects, annotations = gray[region], objects[region], annotations[region]
            objects = ndi.binary_dilation(objects, iterations=grow)
            filled = fill_objects(gray, objects, photo.noise, rng, no_texture=annotations)
            if filled is not None:
                filled = _resize(filled, factor, Image.Resampling.BILINEAR)
            noise = photo.noise
        else:
            if factor < 1.0:
                gray = _resize(gray, factor, Image.Resampling.BOX)
                objects = _resize(objects.astype(np.float32), factor, Image.Resampling.BOX) > 0
                annotations = _resize(annotations.astype(np.float32), factor, Image.Resampling.BOX) > 0
            objects = ndi.binary_dilation(objects, iterations=max(2, int(round(grow * factor))))
            noise = photo.noise * factor
            filled = fill_objects(gray, objects, noise, rng, no_texture=annotations)
        if filled is None:
            progress.log(f"background skipped: {photo.name} shows almost no background between its objects")
            continue
        out.append(Background(filled, photo.name, noise, photo.background_level, photo.object_level,
                              photo.polarity))
    return out
