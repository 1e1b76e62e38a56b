"""The object pool: crops of confident objects and their masks, the raw
material every synthetic training image is composited from.

Each object is saved as ``objects/images/<name>`` (the photo's pixels around
the object, native dtype, a small margin) and ``objects/masks/<name>`` (same
file name; 255 on the object, 0 elsewhere, neighbours included in the crop
are background), plus a row in ``objects/index.csv`` saying where it came
from. Names never collide and never overwrite earlier objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from core.errors import UserInputError
from core.imageio import write_image
from core.workdir import ORIGINS, UniqueNamer, WorkingDirectory, now_iso, safe_stem


def object_suffix(image: np.ndarray) -> str:
    """PNG holds 8-bit gray/colour and 16-bit gray; anything else goes to TIFF."""
    if image.dtype == np.uint8 or (image.dtype == np.uint16 and image.ndim == 2):
        return ".png"
    return ".tif"


def crop_box(bbox: tuple[int, int, int, int], shape: tuple[int, int], margin: int) -> tuple[int, int, int, int]:
    r0, c0, r1, c1 = bbox
    return (max(0, r0 - margin), max(0, c0 - margin), min(shape[0], r1 + margin), min(shape[1], c1 + margin))


def default_margin(height: int, width: int) -> int:
    """A margin of a tenth of the object's size (at least 3 pixels) keeps some
    of the surroundings, which compositing needs for soft edges."""
    return max(3, int(round(0.1 * max(height, width))))


def add_objects(
    workdir: str | Path,
    image: np.ndarray,
    labels: np.ndarray,
    object_ids: Sequence[int],
    *,
    source_image: str,
    origin: str = "auto",
    classes: dict[int, int] | None = None,
    confidences: dict[int, float] | None = None,
    variants: int = 0,
    seed: int = 0,
    margin: int | None = None,
) -> list[str]:
    """Save objects of a label image into the pool.

    Parameters
    ----------
    workdir : path
        Working directory (its folders are created if missing).
    image : ndarray
        The photo, native dtype, (H, W) or (H, W, C).
    labels : ndarray of int
        Label image of the same height and width; object ``i`` is ``labels == i``.
    object_ids : sequence of int
        Which labels to save.
    source_image : str
        The photo's file name, recorded in ``index.csv``.
    origin : {"auto", "picked", "refined"}
        How the object was found.
    classes, confidences : dict, optional
        Class index (default 1) and confidence per object id.
    variants : int
        Augmented variants saved per object (rotation, flip, scale,
        brightness, contrast, gamma; crop and mask stay aligned).
    margin : int, optional
        Pixels kept around each object; default a tenth of its size.

    Returns
    -------
    list of str
        File names written (originals and variants).

    Notes
    -----
    All or nothing: the objects are written into a staged copy of the pool
    that replaces it once every file and index row is written, so a crash
    or a kill leaves no object without its index row (inside a stage that
    already works on a staged copy, the objects go straight into it).
    """
    from core.transaction import Transaction

    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {ORIGINS}, got {origin!r}")
    if labels.shape[:2] != image.shape[:2]:
        raise UserInputError(
            f"Mask size {labels.shape[1]}x{labels.shape[0]} does not match photo size "
            f"{image.shape[1]}x{image.shape[0]} for {source_image}"
        )
    root = WorkingDirectory(workdir).ensure().root
    with Transaction(root) as tx:
        tx.stage(root / WorkingDirectory.OBJECTS)
        written = _add_objects(WorkingDirectory(tx.root), image, labels, object_ids, source_image, origin,
                               classes, confidences, variants, seed, margin)
        tx.commit()
    return written


def _add_objects(wd: WorkingDirectory, image, labels, object_ids, source_image, origin, classes, confidences,
                 variants, seed, margin) -> list[str]:
    namer = UniqueNamer(wd.objects_images, wd.objects_masks)
    suffix = object_suffix(image)
    prefix = f"{safe_stem(Path(source_image).stem)}_{origin}"
    slices = ndi.find_objects(labels.astype(np.int32, copy=False))
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    written: list[str] = []
    created = now_iso()
    for oid in object_ids:
        oid = int(oid)
        if oid <= 0 or oid > len(slices) or slices[oid - 1] is None:
            continue
        sl = slices[oid - 1]
        bbox = (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
        m = margin if margin is not None else default_margin(bbox[2] - bbox[0], bbox[3] - bbox[1])
        r0, c0, r1, c1 = crop_box(bbox, labels.shape[:2], m)
        crop = image[r0:r1, c0:c1].copy()
        mask = np.where(labels[r0:r1, c0:c1] == oid, 255, 0).astype(np.uint8)
        name = namer.next(prefix, suffix)
        _write_pair(wd, name, crop, mask)
        cls = int(classes.get(oid, 1)) if classes else 1
        conf = confidences.get(oid) if confidences else None
        base_row = {
            "source_image": source_image, "x0": c0, "y0": r0, "x1": c1, "y1": r1,
            "class": cls, "origin": origin,
            "confidence": "" if conf is None else f"{conf:.3f}",
            "area": int(np.count_nonzero(mask)), "created": created,
        }
        rows.append({"file": name, "variant_of": "", **base_row})
        written.append(name)
        for _ in range(variants):
            v_crop, v_mask = augment_object(crop, mask, rng)
            v_name = namer.next(Path(name).stem + "_v", suffix)
            _write_pair(wd, v_name, v_crop, v_mask)
            rows.append({"file": v_name, "variant_of": name, **base_row,
                         "area": int(np.count_nonzero(v_mask))})
            written.append(v_name)
    wd.append_index(rows)
    return written


def _write_pair(wd: WorkingDirectory, name: str, crop: np.ndarray, mask: np.ndarray) -> None:
    write_image(wd.objects_images / name, crop, overwrite=False)
    try:
        write_image(wd.objects_masks / name, mask, overwrite=False)
    except BaseException:
        (wd.objects_images / name).unlink(missing_ok=True)
        raise


def augment_object(crop: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A randomly rotated, flipped, scaled and re-exposed copy of an object.

    Geometry is applied identically to crop and mask (bilinear for the crop,
    nearest for the mask) so they stay aligned; intensity changes
    (brightness, contrast, gamma) touch the crop only and keep its dtype.
    """
    from skimage.transform import rescale, rotate

    dtype = crop.dtype
    work = crop.astype(np.float32)
    channel_axis = -1 if crop.ndim == 3 else None
    angle = float(rng.uniform(0, 360))
    work = rotate(work, angle, resize=True, order=1, mode="reflect", preserve_range=True)
    m = rotate(mask, angle, resize=True, order=0, mode="constant", cval=0, preserve_range=True)
    scale = float(rng.uniform(0.8, 1.25))
    work = rescale(work, scale, order=1, preserve_range=True, channel_axis=channel_axis, anti_aliasing=scale < 1)
    m = rescale(m, scale, order=0, preserve_range=True, anti_aliasing=False)
    if rng.random() < 0.5:
        work, m = work[:, ::-1], m[:, ::-1]
    if rng.random() < 0.5:
        work, m = work[::-1], m[::-1]
    lo, hi = _value_range(dtype, crop)
    span = hi - lo
    norm = np.clip((work - lo) / span, 0, 1) if span > 0 else np.zeros_like(work)
    gamma = float(np.exp(rng.uniform(-0.25, 0.25)))
    contrast = float(rng.uniform(0.85, 1.15))
    brightness = float(rng.uniform(-0.08, 0.08))
    norm = np.clip(((norm ** gamma) - 0.5) * contrast + 0.5 + brightness, 0, 1)
    out = norm * span + lo
    if np.issubdtype(dtype, np.integer):
        out = np.rint(out).astype(dtype)
    else:
        out = out.astype(dtype)
    return np.ascontiguousarray(out), np.ascontiguousarray((m > 127).astype(np.uint8) * 255)


def _value_range(dtype: np.dtype, crop: np.ndarray) -> tuple[float, float]:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    return float(np.min(crop)), float(np.max(crop))


def delete_objects(workdir: str | Path, files: Sequence[str]) -> int:
    """Remove pool objects (crop, mask and index row); returns how many were
    removed. All or nothing, like :func:`add_objects`."""
    from core.transaction import Transaction

    root = WorkingDirectory(workdir).root
    if not (root / WorkingDirectory.OBJECTS).is_dir():
        return 0
    with Transaction(root) as tx:
        tx.stage(root / WorkingDirectory.OBJECTS)
        removed = _delete_objects(WorkingDirectory(tx.root), files)
        tx.commit()
    return removed


def _delete_objects(wd: WorkingDirectory, files: Sequence[str]) -> int:
    names = {Path(f).name for f in files}
    removed = 0
    for name in names:
        found = False
        for folder in (wd.objects_images, wd.objects_masks):
            path = folder / name
            if path.exists():
                path.unlink()
                found = True
        removed += found
    rows = wd.read_index()
    kept = [r for r in rows if r.get("file") not in names]
    if len(kept) != len(rows):
        wd.write_index(kept)
    return removed


def pooled_duplicates(workdir: str | Path, labels: np.ndarray, object_ids: Sequence[int], *,
                      source_image: str, min_iou: float = 0.8) -> dict[int, str]:
    """Objects of ``labels`` that the pool already holds from the same photo.

    Returns ``{object id: pool file}`` for every object whose mask overlaps
    a pooled object of ``source_image`` (variants left aside) with an IoU of
    at least ``min_iou``, so that picking or finding it again does not add
    a near-copy.
    """
    from core.errors import ImageReadError
    from core.imageio import read_image

    wd = WorkingDirectory(workdir)
    rows = [r for r in wd.read_index() if r.get("source_image") == source_image and not r.get("variant_of")]
    if not rows:
        return {}
    slices = ndi.find_objects(labels.astype(np.int32, copy=False))
    found: dict[int, str] = {}
    for oid in object_ids:
        oid = int(oid)
        if oid <= 0 or oid > len(slices) or slices[oid - 1] is None:
            continue
        rs, cs = slices[oid - 1]
        for row in rows:
            try:
                x0, y0, x1, y1 = (int(row[k]) for k in ("x0", "y0", "x1", "y1"))
            except (KeyError, ValueError):
                continue
            if x1 <= cs.start or x0 >= cs.stop or y1 <= rs.start or y0 >= rs.stop:
                continue
            try:
                pooled = read_image(wd.objects_masks / row["file"])
            except (ImageReadError, OSError):
                continue
            pooled = (pooled[..., 0] if pooled.ndim == 3 else pooled) > 0
            r0, c0 = min(rs.start, y0), min(cs.start, x0)
            r1, c1 = max(rs.stop, y0 + pooled.shape[0]), max(cs.stop, x0 + pooled.shape[1])
            mine = np.zeros((r1 - r0, c1 - c0), bool)
            mine[rs.start - r0:rs.stop - r0, cs.start - c0:cs.stop - c0] = labels[rs, cs] == oid
            theirs = np.zeros_like(mine)
            theirs[y0 - r0:y0 - r0 + pooled.shape[0], x0 - c0:x0 - c0 + pooled.shape[1]] = pooled
            union = np.count_nonzero(mine | theirs)
            if union and np.count_nonzero(mine & theirs) / union >= min_iou:
                found[oid] = row["file"]
                break
    return found


def pooled_labels(workdir: str | Path, source_image: str, shape) -> np.ndarray:
    """The pool's objects from the photo ``source_image`` (variants left
    aside) where they lie in it, one label each (numbered in the order of
    the index; where two overlap, the later one shows): what an automatic
    harvest of that photo must not pool again (see
    :func:`inference.confident.confident_objects`)."""
    from core.errors import ImageReadError
    from core.imageio import read_image

    wd = WorkingDirectory(workdir)
    taken = np.zeros(tuple(shape[:2]), np.int32)
    rows = [r for r in wd.read_index() if r.get("source_image") == source_image and not r.get("variant_of")]
    for k, row in enumerate(rows, start=1):
        try:
            y0, x0 = int(row["y0"]), int(row["x0"])
            mask = read_image(wd.objects_masks / row["file"])
        except (KeyError, ValueError, ImageReadError, OSError):
            continue
        mask = (mask[..., 0] if mask.ndim == 3 else mask) > 0
        if y0 < 0 or x0 < 0:
            continue
        region = taken[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]]
        region[mask[:region.shape[0], :region.shape[1]]] = k
    return taken


def read_pool_object(workdir: str | Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one pool object's crop and boolean mask, checking they match."""
    from core.imageio import read_image

    wd = WorkingDirectory(workdir)
    crop = read_image(wd.objects_images / name)
    mask = read_image(wd.objects_masks / name)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.shape[:2] != crop.shape[:2]:
        raise UserInputError(
            f"Pool object {name}: mask is {mask.shape[1]}x{mask.shape[0]} but the crop is "
            f"{crop.shape[1]}x{crop.shape[0]}"
        )
    return crop, mask > 0
