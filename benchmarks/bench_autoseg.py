"""Auto-segmentation quality and speed.

Runs the ``autoseg`` stage on a folder of photos (the expert masks are not
read until scoring), then scores:

- the full-image results ``<workdir>/autoseg/<stem>_mask.png`` against the
  expert masks: mean foreground IoU and Dice (per photo, then averaged) and
  instance F1 at IoU 0.5 (pooled over photos);
- the object pool: the share of pooled objects that match an expert
  instance at IoU >= 0.5;

and times ``find_objects`` on a 2592x2048 photo (median of several runs).

    python benchmarks/bench_autoseg.py [--set dev|val | --images DIR --masks DIR] [--csv FILE]
                                       [--timing-photo FILE] [--runs N]

Instance F1 is given twice: from the connected components of the mask
(touching objects count as one) and from the objects the stage found and
split apart (``_labels.tif``). Per photo, a failure class and the reasons
objects were lost (evaluation.failures) are counted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from common import GRAINS, emps_arguments, emps_folders, spread, write_rows
from core.imageio import read_image
from core.progress import TerminalProgress
from core.workdir import WorkingDirectory
from evaluation.failures import PhotoFailures, analyse_photo, summarise
from evaluation.metrics import foreground_iou_dice, instance_matching, pool_matches
from segmentation.autoseg import find_objects, run_autoseg


def score(images: Path, masks: Path, workdir: Path, csv_path: Path | None = None) -> None:
    wd = WorkingDirectory(workdir)
    photos = wd.load_project()["stages"]["autoseg"]["photos"]
    ious, dices, matches, split_matches, pooled_hits, pooled_total = [], [], [], [], 0, 0
    analysed: dict[str, PhotoFailures] = {}
    rows_by_photo: dict[str, list[dict]] = {}
    for row in wd.read_index():
        rows_by_photo.setdefault(row["source_image"], []).append(row)
    for name, info in sorted(photos.items()):
        truth = read_image(masks / (Path(name).stem + ".png"))
        pred = read_image(wd.autoseg / info["mask"]) > 0
        labels = read_image(wd.autoseg / info["labels"])
        iou, dice = foreground_iou_dice(pred, truth)
        if not np.isnan(iou):
            ious.append(iou)
            dices.append(dice)
        matches.append(instance_matching(pred, truth, 0.5, pred_are_labels=False))
        split_matches.append(instance_matching(labels, truth, 0.5, pred_are_labels=True))
        analysed[name] = analyse_photo(labels, truth)
        for row in rows_by_photo.get(name, []):
            if row["variant_of"]:
                continue
            obj = np.zeros(truth.shape, bool)
            x0, y0, x1, y1 = (int(row[k]) for k in ("x0", "y0", "x1", "y1"))
            obj[y0:y1, x0:x1] = read_image(wd.objects_masks / row["file"]) > 0
            pooled_total += 1
            pooled_hits += instance_matching(obj.astype(np.int32), truth, 0.5, pred_are_labels=True).tp
    pooled = pool_matches(matches)
    split = pool_matches(split_matches)
    names = sorted(analysed)
    print(f"photos scored:            {len(photos)}")
    print(f"mean foreground IoU:      {np.mean(ious):.3f}")
    print(f"mean Dice:                {np.mean(dices):.3f}")
    print(f"instance F1@0.5:          {pooled.f1:.3f} (precision {pooled.precision:.3f}, recall {pooled.recall:.3f})"
          " from connected components of the mask")
    print(f"instance F1@0.5, split:   {split.f1:.3f} (precision {split.precision:.3f}, recall {split.recall:.3f})"
          " from the objects (_labels.tif)")
    print(f"IoU per photo:            {spread([analysed[n].iou for n in names], names)}")
    share = pooled_hits / pooled_total if pooled_total else float("nan")
    n_sources = len({r['source_image'] for rows in rows_by_photo.values() for r in rows})
    print(f"pooled objects:           {pooled_total} from {n_sources} photos")
    print(f"pooled matching expert:   {share:.3f} (IoU >= 0.5)")
    report_failures(analysed, csv_path)


def report_failures(analysed: dict[str, PhotoFailures], csv_path: Path | None) -> None:
    """Failure classes of the photos and where the objects were lost."""
    summary = summarise(analysed)
    print("photo classes:            " + ", ".join(f"{k} {v}" for k, v in summary["classes"].items()))
    lost = summary["lost"]
    print(f"true objects lost:        {sum(lost.values())} of {summary['true_objects']}: "
          + ", ".join(f"{k} {v}" for k, v in lost.items()))
    print("predicted, unmatched:     " + ", ".join(f"{k} {v}" for k, v in summary["extra"].items()))
    if csv_path is not None:
        write_rows(csv_path, [{"photo": n, **r.as_row()} for n, r in sorted(analysed.items())])
        print(f"per-photo figures:        {csv_path}")


def timing(photo: Path | None, runs: int) -> None:
    if photo is not None and photo.exists():
        image = read_image(photo)
        label = photo.name
    else:
        from synthetic.scenes import render_particle_scene

        image, _ = render_particle_scene((2048, 2592), count=150, radius=(20, 60), seed=0)
        label = "rendered scene"
    find_objects(image)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        find_objects(image)
        times.append(time.perf_counter() - t0)
    print(f"find_objects on {image.shape[1]}x{image.shape[0]} ({label}): median {statistics.median(times):.2f} s "
          f"over {runs} runs (min {min(times):.2f}, max {max(times):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    emps_arguments(parser)
    parser.add_argument("--csv", type=Path, help="write per-photo figures and failure classes here")
    parser.add_argument("--work", type=Path, help="keep the working directory here")
    parser.add_argument("--timing-photo", type=Path,
                        default=GRAINS / "train" / "21-1_1-Image 0001-1-1.jpg")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    args.images, args.masks = emps_folders(args)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        t0 = time.perf_counter()
        run_autoseg(args.images, work, progress=TerminalProgress())
        print(f"autoseg stage:            {time.perf_counter() - t0:.1f} s")
        score(args.images, args.masks, work, args.csv)
    if args.runs:
        timing(args.timing_photo, args.runs)


if __name__ == "__main__":
    main()
