"""Classical auto-segmentation: the objects the application is sure of,
found in the user's own photos with no learning at all.

``find_objects`` segments one photo; ``run_autoseg`` is the stage: every
photo of a folder, the full-image result written to
``<workdir>/autoseg/<stem>_mask.png`` and the confident objects saved into
the object pool.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from core.errors import UserInputError
from core.gray import percentile_range, to_gray, to_gray_float
from core.imageio import list_images, write_image, write_label_image
from core.photos import PhotoLoop
from core.progress import Progress
from core.stats import robust_spread
from core.workdir import WorkingDirectory
from segmentation.annotations import find_annotations, is_annotation_like
from segmentation.confidence import ObjectScore, score_objects, unscored_objects
from segmentation.foreground import Foreground, find_foreground
from segmentation.instances import drop_specks, split_touching
from segmentation.pool import add_objects

POLARITIES = ("auto", "dark", "bright")


@dataclass
class AutosegSettings:
    """Settings of auto-segmentation; every size is relative to the photo."""

    polarity: str = "auto"          # objects "dark" or "bright" on the background, or "auto"
    min_confidence: float = 0.5     # objects below this stay out of the pool (0..1)
    min_area_fraction: float = 2e-4  # smallest object, as a fraction of the photo's area
    work_size: int = 1024           # photos are analysed with their longer side at most this
    variants: int = 0               # augmented variants saved per pooled object
    seed: int = 0
    redo: bool = False              # segment photos already in the pool again

    def check(self) -> None:
        if self.polarity not in POLARITIES:
            raise UserInputError(f"Polarity must be one of {', '.join(POLARITIES)}, not '{self.polarity}'")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise UserInputError(f"Minimum confidence must lie between 0 and 1, not {self.min_confidence}")
        if not 0.0 <= self.min_area_fraction < 0.5:
            raise UserInputError(f"Minimum object area fraction must lie in [0, 0.5), not {self.min_area_fraction}")
        if self.work_size < 64:
            raise UserInputError(f"Working size must be at least 64 pixels, not {self.work_size}")
        if not 0 <= self.variants <= 100:
            raise UserInputError(f"Variants per object must lie between 0 and 100, not {self.variants}")


@dataclass
class ObjectMap:
    """What auto-segmentation found in one photo (full resolution)."""

    labels: np.ndarray          # int32, one label per object, 0 background
    foreground: np.ndarray      # bool
    annotations: np.ndarray     # bool, burned-in marks that were ignored
    polarity: str
    polarity_margin: float
    scores: list[ObjectScore]
    pooled: list[int]           # labels confident enough for the pool
    scale: float                # analysis scale (1.0 = full resolution)
    noise: float                # background noise sigma of the gray image in [0, 1]
    background_level: float     # median gray level (0..1) of the background
    object_level: float         # median gray level (0..1) of the objects
    both_sides: bool = False    # objects found on both sides of a smooth background

    @property
    def count(self) -> int:
        return len(self.scores)

    def median_diameter(self, pooled_only: bool = False) -> float:
        """Median equivalent diameter in full-resolution pixels (0 when empty)."""
        chosen = set(self.pooled) if pooled_only else None
        areas = [s.area for s in self.scores if chosen is None or s.label in chosen]
        if not areas:
            return 0.0
        return float(np.sqrt(4.0 * np.median(areas) / np.pi) / self.scale)


def find_objects(image: np.ndarray, *, polarity: str = "auto", min_confidence: float = 0.5,
                 min_area_fraction: float = 2e-4, work_size: int = 1024, scored: bool = True) -> ObjectMap:
    """Segment one photo and score its objects.

    Parameters
    ----------
    image : ndarray
        The photo as :func:`core.imageio.read_image` returns it (any dtype,
        gray or colour).
    polarity : {"auto", "dark", "bright"}
        Objects darker or brighter than the background.
    min_confidence : float
        Objects at or above this confidence are listed in ``pooled``.
    min_area_fraction : float
        Objects smaller than this fraction of the photo are noise.
    work_size : int
        Longer side of the analysis; larger photos are reduced first
        (box filter), and the result brought back to full resolution.
    scored : bool
        False: the objects' areas only, not their confidence (every score
        0, nothing pooled), for a caller that reads their sizes and the
        foreground (a quarter of the time saved).

    Returns
    -------
    ObjectMap
    """
    full_h, full_w = image.shape[:2]
    native = to_gray(image).astype(np.float32, copy=False)
    annotations_full = find_annotations(native)
    scale = min(1.0, work_size / max(full_h, full_w))
    gray = to_gray_float(image)
    if scale < 1.0:
        size = (max(1, round(full_w * scale)), max(1, round(full_h * scale)))
        gray = _resize(gray, size, "box")
        annotations = _resize(annotations_full.astype(np.float32), size, "box") > 0
    else:
        annotations = annotations_full
    h, w = gray.shape
    min_area = max(9, int(min_area_fraction * h * w))
    found = _objects(gray, annotations, polarity, min_area)
    if polarity == "auto" and found.fg.polarity_margin < SECOND_LOOK_MARGIN:
        found = _second_look(gray, annotations, found, min_area)
    fg, annotations = found.fg, found.annotations
    labels = drop_specks(found.labels, SPECK_SHARE)
    mask = found.mask & (labels > 0)
    scores = (score_objects(labels, fg.smoothed, fg.polarity, fg.polarity_margin) if scored
              else unscored_objects(labels))
    pooled = [s.label for s in scores if s.confidence >= min_confidence and s.confidence > 0]
    noise = _noise_sigma(gray, fg.smoothed, labels > 0)
    objects = labels > 0
    background = ~objects & ~annotations
    background_level = float(np.median(gray[background])) if background.any() else float(np.median(gray))
    object_level = float(np.median(gray[objects])) if objects.any() else background_level
    if scale < 1.0:
        labels = _resize(labels, (full_w, full_h), "nearest")
        foreground = _resize(mask.astype(np.float32), (full_w, full_h), "bilinear") > 0.5
        labels[~foreground] = 0
        annotations = annotations_full | (_resize(annotations.astype(np.float32), (full_w, full_h), "nearest") > 0)
    else:
        foreground = mask
    return ObjectMap(labels.astype(np.int32, copy=False), foreground, annotations, fg.polarity,
                     fg.polarity_margin, scores, pooled, scale, noise, background_level, object_level,
                     fg.both_sides)


# Below this border margin (see segmentation.foreground.detect_polarity) the
# photo is also read the other way round, and the reading whose objects are
# the more compact (area-weighted solidity higher by SOLIDITY_GAP) is kept:
# a dense packing of particles covers most of the border, and the network of
# gaps between them is far less compact than the particles. Chosen on the
# EMPS development photos (5 of 5 inside-out photos put right, 1 of 55 put
# wrong); on the 306 check photos 25 put right, 8 put wrong.
SECOND_LOOK_MARGIN = 0.35
SOLIDITY_GAP = 0.1

# Objects under this share of the photo's typical object area (area-weighted
# median) are specks of texture or noise, not particles. Chosen on the EMPS
# development photos (instance F1 0.720 -> 0.733); on the check set 0.503 -> 0.546.
SPECK_SHARE = 0.05


@dataclass
class _Reading:
    fg: Foreground
    mask: np.ndarray
    labels: np.ndarray
    annotations: np.ndarray

    @cached_property
    def scores(self) -> list[ObjectScore]:
        """The objects scored, when first asked for (the second look)."""
        return score_objects(self.labels, self.fg.smoothed, self.fg.polarity, self.fg.polarity_margin)

    def solidity(self) -> float:
        """Area-weighted solidity of the objects (0 when there are none)."""
        area = sum(s.area for s in self.scores)
        return sum(s.solidity * s.area for s in self.scores) / area if area else 0.0


def _objects(gray: np.ndarray, annotations: np.ndarray, polarity: str, min_area: int,
             margin: float | None = None) -> _Reading:
    """The photo's objects read with ``polarity`` ("auto", "dark", "bright");
    ``margin`` replaces the polarity margin the objects are scored with."""
    h, w = gray.shape
    annotations = annotations.copy()
    fg = find_foreground(gray, ~annotations, polarity=polarity)
    if margin is not None:
        fg.polarity_margin = margin
    mask = fg.mask
    # marks drawn in a colour that is not the photo's extreme (a grey box with text)
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    for i, sl in enumerate(ndi.find_objects(labels), 1):
        if sl is None:
            continue
        box = (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
        comp = labels[sl] == i
        if is_annotation_like(comp, box, (h, w)):
            mask[sl][comp] = False
            annotations[sl] |= ndi.binary_fill_holes(comp)
    radius = max(1, int(round(min(h, w) / 256)))
    # The background seen through the objects: small holes where packed
    # particles meet, which filling the holes (for hollow or rim-lit
    # particles) would otherwise hide from the splitter.
    unfilled = ndi.binary_opening(mask, structure=_disk(radius))
    mask = ndi.binary_fill_holes(mask)
    mask = ndi.binary_opening(mask, structure=_disk(radius))
    mask = _remove_small(mask, min_area)
    mask &= ~annotations
    labels = split_touching(mask, min_size=min_area, gaps=mask & ~unfilled)
    return _Reading(fg, mask, labels, annotations)


def _second_look(gray: np.ndarray, annotations: np.ndarray, found: _Reading, min_area: int) -> _Reading:
    """``found`` (a reading whose polarity the border barely decided), or the
    photo read the other way round when its objects are clearly more compact.
    The border's margin is kept, so a photo read against its border pools
    objects only as far as the border was unsure."""
    margin = found.fg.polarity_margin
    other = "bright" if found.fg.polarity == "dark" else "dark"
    own = _objects(gray, annotations, found.fg.polarity, min_area, margin) if found.fg.both_sides else found
    flipped = _objects(gray, annotations, other, min_area, margin)
    if flipped.scores and flipped.solidity() >= own.solidity() + SOLIDITY_GAP:
        return flipped
    return found


def _resize(array: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    from PIL import Image

    resample = {"box": Image.Resampling.BOX, "nearest": Image.Resampling.NEAREST,
                "bilinear": Image.Resampling.BILINEAR}[method]
    if array.dtype == np.int32:
        return np.array(Image.fromarray(array, mode="I").resize(size, resample), dtype=np.int32)
    return np.array(Image.fromarray(array.astype(np.float32), mode="F").resize(size, resample))


def _remove_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_area
    keep[0] = False
    return keep[labels]


def _noise_sigma(gray: np.ndarray, smoothed: np.ndarray, objects: np.ndarray) -> float:
    background = ~ndi.binary_dilation(objects, iterations=2)
    residual = (gray - smoothed)[background]
    if residual.size < 100:
        residual = (gray - smoothed).ravel()
    return robust_spread(residual)


def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    return x * x + y * y <= radius * radius


# --------------------------------------------------------------------------
# the stage


@dataclass
class AutosegResult:
    photos: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    objects_found: int = 0
    objects_pooled: int = 0
    files_written: int = 0
    cancelled: bool = False
    per_photo: dict = field(default_factory=dict)

    def summary(self) -> str:
        text = (f"Auto-segmented {self.photos} photo(s): {self.objects_found} objects found, "
                f"{self.objects_pooled} confident ones saved to the pool ({self.files_written} files).")
        if self.skipped:
            text += f" {self.skipped} photo(s) already in the pool were skipped."
        if self.failed:
            text += f" {len(self.failed)} photo(s) could not be read."
        if self.cancelled:
            text += " Cancelled before the end; everything saved so far is kept."
        return text


# What auto-segmentation changes in the working directory.
AUTOSEG_PARTS = (WorkingDirectory.OBJECTS, WorkingDirectory.AUTOSEG, WorkingDirectory.PROJECT)


def run_autoseg(images: str | Path, workdir: str | Path, *, settings: AutosegSettings | None = None,
                progress: Progress | None = None) -> AutosegResult:
    """Auto-segment every photo of a folder into the object pool.

    Writes ``<workdir>/autoseg/<stem>_mask.png`` (0 background, 255 object)
    and ``<stem>_labels.tif`` (the objects, touching ones split apart, one
    label each) per photo, the confident objects into ``<workdir>/objects/`` with
    ``origin=auto``, and what was done into ``project.json``. Photos whose
    objects are already in the pool are skipped unless ``settings.redo``.
    Unreadable photos are reported and skipped.

    All or nothing: a run that is cancelled or fails leaves the working
    directory as it was (see :mod:`core.transaction`).
    """
    from core.overlap import refuse_overlap
    from core.transaction import Transaction

    settings = settings or AutosegSettings()
    settings.check()
    progress = progress or Progress()
    files = list_images(images)
    root = WorkingDirectory(workdir).root
    if root.exists() and not root.is_dir():
        raise UserInputError(f"The working directory is a file, not a folder: {root}")
    for part in AUTOSEG_PARTS:
        refuse_overlap(root / part, [images], output_kind=f"the working directory's {part}", input_kind="the photos",
                       remedy="choose a working directory apart from the photos folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"Cannot create the working directory {root}: {exc.strerror}") from None
    with Transaction(root, inputs=[images]) as tx:
        for part in AUTOSEG_PARTS:
            tx.stage(root / part)
        result = _autoseg(images, files, WorkingDirectory(tx.root).ensure(), settings, progress)
        if not result.cancelled:
            tx.commit()
    return result


def _autoseg(images, files: list[Path], wd: WorkingDirectory, settings: AutosegSettings,
             progress: Progress) -> AutosegResult:
    for line in wd.tidy_pool():
        progress.log(line)
    done_before = {row["source_image"] for row in wd.read_index() if row.get("origin") == "auto"}
    previous = wd.load_project().get("stages", {}).get("autoseg", {})
    result = AutosegResult(per_photo=dict(previous.get("photos", {})))
    def already_pooled(path: Path) -> str | None:
        return "already in the pool, skipped" if path.name in done_before and not settings.redo else None

    photos = PhotoLoop(files, progress, doing="auto-segmenting", skip=already_pooled)
    for i, path, image in photos:
        found = find_objects(image, polarity=settings.polarity, min_confidence=settings.min_confidence,
                             min_area_fraction=settings.min_area_fraction, work_size=settings.work_size)
        stem = photos.stem(path)
        write_image(wd.autoseg / f"{stem}_mask.png", found.foreground.astype(np.uint8) * np.uint8(255))
        write_label_image(wd.autoseg / f"{stem}_labels.tif", found.labels)
        confidences = {s.label: s.confidence for s in found.scores}
        written = add_objects(wd.root, image, found.labels, found.pooled, source_image=path.name,
                              origin="auto", confidences=confidences, variants=settings.variants,
                              seed=settings.seed + i)
        result.photos += 1
        result.objects_found += found.count
        result.objects_pooled += len(found.pooled)
        result.files_written += 2 * len(written)
        result.per_photo[path.name] = {
            "mask": f"{stem}_mask.png", "labels": f"{stem}_labels.tif", "polarity": found.polarity,
            "polarity_margin": round(found.polarity_margin, 3), "objects": found.count,
            "pooled": len(found.pooled), "median_diameter_px": round(found.median_diameter(), 2),
            "area_fraction": round(float(found.foreground.mean()), 4),
            "noise_sigma": round(found.noise, 5), "width": int(image.shape[1]), "height": int(image.shape[0]),
            "gray_range": [round(v, 4) for v in percentile_range(to_gray(image))],
            "background_level": round(found.background_level, 4), "object_level": round(found.object_level, 4),
            "both_sides": found.both_sides,
        }
        progress.log(f"{path.name}: {found.count} objects ({found.polarity} on the background), "
                     f"{len(found.pooled)} pooled")
    result.failed, result.skipped, result.cancelled = photos.skipped, photos.passed, photos.cancelled
    if result.photos == 0 and result.failed and not result.skipped:
        raise UserInputError(f"None of the {len(files)} photo(s) in {images} could be read "
                             f"(first: {result.failed[0]})")
    progress.update(len(files) if not result.cancelled else progress.done, len(files), "done")
    wd.record_stage("autoseg", {
        "images": str(Path(images).resolve()), "settings": asdict(settings),
        "photos": result.per_photo, "cancelled": result.cancelled,
    })
    return result
