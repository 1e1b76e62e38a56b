"""What a self-training round puts into the pool, scored against the expert
masks: merged pairs, repeats of objects already pooled, single particles.

    python benchmarks/bench_harvest.py --model DIR [--workdir WD] [--set dev|val] [--limit N] [--csv FILE]

A round's harvest (steps 1-3 of ``refine``: segment, keep the objects the
model is sure of, pool them) is run on a copy of the working directory
``WD`` (by default one made here by auto-segmenting the photos), with the
model ``DIR`` (e.g. the ``pipeline`` model of these photos). Each object it
adds is scored against the expert instance masks (read only for scoring):

- a **merged pair** covers at least 30 % of each of two or more expert objects;
- a **repeat** shares at least half of its pixels, or half of a pooled
  object's, with an object pooled before from the same photo (``box`` also
  counts those whose crop box overlaps a pooled one's by IoU >= 0.8);
- a **single** matches one expert object at IoU >= 0.5.

Target: no merged pair and no repeat among the added objects.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import emps_arguments, emps_folders, write_rows

PAIR_SHARE = 0.3  # an added object covering this share of two expert objects is a merged pair


def object_frame(wd, row: dict) -> tuple[tuple[slice, slice], np.ndarray]:
    """Where a pooled object lies in its photo (its crop box) and its mask there."""
    from core.imageio import read_image

    box = (slice(int(row["y0"]), int(row["y1"])), slice(int(row["x0"]), int(row["x1"])))
    mask = read_image(wd.objects_masks / row["file"]) > 0
    return box, mask


def in_photo(frame, shape) -> np.ndarray:
    """An object's mask in its photo's frame."""
    box, mask = frame
    obj = np.zeros(shape, bool)
    obj[box][mask[: obj[box].shape[0], : obj[box].shape[1]]] = True
    return obj


def box_iou(a: dict, b: dict) -> float:
    ax0, ay0, ax1, ay1 = (int(a[k]) for k in ("x0", "y0", "x1", "y1"))
    bx0, by0, bx1, by1 = (int(b[k]) for k in ("x0", "y0", "x1", "y1"))
    w = max(0, min(ax1, bx1) - max(ax0, bx0))
    h = max(0, min(ay1, by1) - max(ay0, by0))
    inter = w * h
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union else 0.0


def score(wd, added: list[dict], before: list[tuple[dict, tuple]], masks: Path) -> list[dict]:
    """One row per added object: merged pair, repeat (pixels, box), single match."""
    from core.imageio import read_image

    rows = []
    truths: dict[str, np.ndarray] = {}
    for row in added:
        name = row["source_image"]
        if name not in truths:
            truths[name] = read_image(masks / name).astype(np.int64)
        truth = truths[name]
        obj = in_photo(object_frame(wd, row), truth.shape)
        area = np.bincount(truth.ravel())
        counts = np.bincount(truth[obj], minlength=area.size)
        counts[0] = 0
        held = np.flatnonzero(counts >= PAIR_SHARE * np.maximum(area, 1))
        best = int(np.argmax(counts))
        iou = counts[best] / (obj.sum() + area[best] - counts[best]) if counts[best] else 0.0
        repeat = box_repeat = False
        for old, frame in before:
            if old["source_image"] != name:
                continue
            box_repeat |= box_iou(row, old) >= 0.8
            other = in_photo(frame, truth.shape)
            shared = int((obj & other).sum())
            repeat |= shared >= 0.5 * min(int(obj.sum()), int(other.sum()))
        rows.append({"photo": name, "object": row["file"], "area": int(obj.sum()),
                     "merged_pair": int(held.size >= 2), "repeat": int(repeat), "box_repeat": int(box_repeat),
                     "single": int(held.size < 2 and iou >= 0.5)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder (e.g. the pipeline model of these photos)")
    parser.add_argument("--workdir", type=Path, help="working directory auto-segmented on these photos "
                        "(copied, never changed; default: made here)")
    emps_arguments(parser)
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos")
    parser.add_argument("--csv", type=Path, help="one row per added object")
    args = parser.parse_args()
    images, masks = emps_folders(args)

    from core.progress import Progress
    from core.workdir import WorkingDirectory
    from inference.stage import previous_scales
    from loop.refine import refine_pool
    from loop.settings import RefineSettings
    from segmentation.autoseg import run_autoseg

    tmp = Path(tempfile.mkdtemp(prefix="harvest-"))
    try:
        photos = tmp / "photos"
        photos.mkdir()
        for path in sorted(images.glob("*.png"))[: args.limit]:
            shutil.copy(path, photos / path.name)
        wd = WorkingDirectory(tmp / "wd")
        if args.workdir:
            shutil.copytree(args.workdir, wd.root, symlinks=True)
        else:
            run_autoseg(photos, wd.root, progress=Progress())
        names = {p.name for p in photos.iterdir()}
        before = [(r, object_frame(wd, r)) for r in wd.read_index()  # read now: the round retires some
                  if not r.get("variant_of") and r["source_image"] in names and r.get("origin") != "refined"]
        known = {r["file"] for r in wd.read_index()}
        t0 = time.perf_counter()
        added, retired = refine_pool(photos, wd, args.model, RefineSettings(), Progress(),
                                     previous_scales(wd.segmented))
        seconds = time.perf_counter() - t0
        new = [r for r in wd.read_index() if r["file"] not in known and not r.get("variant_of")]
        rows = score(wd, new, before, masks)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = len(rows)
    pairs = sum(r["merged_pair"] for r in rows)
    repeats = sum(r["repeat"] for r in rows)
    box_repeats = sum(r["box_repeat"] for r in rows)
    singles = sum(r["single"] for r in rows)
    print(f"{len(names)} photos, {len(before)} objects pooled before; the round's harvest: {added} added, "
          f"{retired} retired ({seconds:.0f} s)")
    print(f"added objects: {total}; merged pairs {pairs}; repeats of pooled objects {repeats} "
          f"(box IoU >= 0.8: {box_repeats}); single particles (IoU >= 0.5 with one expert object) "
          f"{singles} ({100 * singles / max(total, 1):.1f} %)")
    if args.csv and rows:
        write_rows(args.csv, rows)


if __name__ == "__main__":
    sys.exit(main())
