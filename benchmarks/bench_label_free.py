"""The whole label-free procedure on photos with expert masks beside them.

Runs, exactly as a user would and never reading the expert masks before
scoring: auto-segmentation, synthesis, training and segmentation
(``pipeline``), then ``--rounds`` self-training rounds (``refine``). After
each step the photos' masks are scored against the expert masks: mean
foreground IoU and Dice (per photo, then averaged) and instance F1 at IoU
0.5 (pooled over photos), with the elapsed time.

    python benchmarks/bench_label_free.py [--set dev|val | --images DIR --masks DIR] [--rounds N] [--work DIR]

Instance F1 is scored on each step's objects (``_labels.tif``: touching
objects split apart), or on the connected components of the mask where a
step writes no labels.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from common import emps_set, require, spread
from core.imageio import read_image
from core.progress import TerminalProgress
from evaluation.metrics import foreground_iou_dice, instance_matching, pool_matches


def score(pred_dir: Path, masks: Path, pattern: str) -> dict:
    """Scores of ``pred_dir/<stem><pattern>`` against ``masks/<stem>.png``."""
    ious, dices, matches, names = [], [], [], []
    for truth_path in sorted(masks.glob("*.png")):
        pred_path = pred_dir / f"{truth_path.stem}{pattern}"
        if not pred_path.exists():
            continue
        truth = read_image(truth_path)
        pred = read_image(pred_path) > 0
        labels_path = pred_dir / f"{truth_path.stem}_labels.tif"
        instances = read_image(labels_path) if labels_path.exists() else pred
        iou, dice = foreground_iou_dice(pred, truth)
        if not np.isnan(iou):
            ious.append(iou)
            dices.append(dice)
            names.append(truth_path.name)
        matches.append(instance_matching(instances, truth, 0.5, pred_are_labels=labels_path.exists()))
    pooled = pool_matches(matches)
    return {"photos": len(matches), "iou": float(np.mean(ious)), "dice": float(np.mean(dices)),
            "f1": pooled.f1, "precision": pooled.precision, "recall": pooled.recall,
            "spread": spread(ious, names)}


def line(name: str, s: dict, elapsed: float) -> str:
    return (f"{name:<28} IoU {s['iou']:.3f}  Dice {s['dice']:.3f}  instance F1 {s['f1']:.3f} "
            f"(P {s['precision']:.3f} R {s['recall']:.3f})  [{s['photos']} photos, {elapsed / 60:.1f} min]"
            f"\n{'':<28} IoU per photo: {s['spread']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("dev", "val"), default="dev",
                        help="EMPS photos: dev (settings are chosen here) or val (the check set)")
    parser.add_argument("--images", type=Path, help="photos (default: the --set's)")
    parser.add_argument("--masks", type=Path, help="expert masks (default: the --set's)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--work", type=Path, default=None, help="keep the working files here")
    args = parser.parse_args()
    args.images = args.images or emps_set(args.set) / "images"
    args.masks = args.masks or emps_set(args.set) / "masks"
    require(args.images, "photos")
    require(args.masks, "expert masks")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        workdir, model = work / "wd", work / "model"
        t0 = time.perf_counter()
        progress = TerminalProgress()
        from core.quiet_tf import import_tensorflow

        import_tensorflow()
        from loop.pipeline import run_pipeline
        from loop.refine import run_refine

        results = []
        run_pipeline(args.images, workdir, model, epochs=args.epochs, progress=progress)
        elapsed = time.perf_counter() - t0
        results.append(line("auto-segmentation", score(workdir / "autoseg", args.masks, "_mask.png"), elapsed))
        results.append(line("first training", score(workdir / "segmented", args.masks, "_mask.png"), elapsed))
        print(results[-2], results[-1], sep="\n", flush=True)
        for k in range(args.rounds):
            run_refine(args.images, workdir, model, rounds=1, progress=progress)
            elapsed = time.perf_counter() - t0
            results.append(line(f"after round {k + 1}", score(workdir / "segmented", args.masks, "_mask.png"),
                                elapsed))
            print(results[-1], flush=True)
        print("\n".join(["", "summary:"] + results))


if __name__ == "__main__":
    main()
