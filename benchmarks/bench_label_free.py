"""The whole label-free procedure on photos with expert masks beside them.

Runs, exactly as a user would and never reading the expert masks before
scoring: auto-segmentation, synthesis, training and segmentation
(``pipeline``), then ``--rounds`` self-training rounds (``refine``). After
each step the photos' masks are scored against the expert masks: mean
foreground IoU and Dice (per photo, then averaged) and instance F1 at IoU
0.5 (pooled over photos), with the elapsed time.

    python benchmarks/bench_label_free.py [--set dev|val | --images DIR --masks DIR] [--rounds N] [--work DIR]
                                          [--csv FILE] [--seed N]

With ``--csv`` each step's per-photo figures and failure classes (see
:mod:`evaluation.failures`) are written to one file, a ``step`` column
naming the step, and each step's class counts are printed.

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

from common import emps_arguments, emps_folders, spread, write_rows
from core.imageio import read_image
from core.progress import TerminalProgress
from evaluation.failures import analyse_photo, summarise
from evaluation.metrics import foreground_iou_dice, instance_matching, pool_matches


def score(pred_dir: Path, masks: Path, pattern: str) -> dict:
    """Scores of ``pred_dir/<stem><pattern>`` against ``masks/<stem>.png``,
    with each photo's failure analysis under ``"photos"``."""
    ious, dices, matches, names, analysed = [], [], [], [], {}
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
        analysed[truth_path.name] = analyse_photo(instances, truth, pred_are_labels=labels_path.exists())
    pooled = pool_matches(matches)
    return {"photos": len(matches), "iou": float(np.mean(ious)), "dice": float(np.mean(dices)),
            "f1": pooled.f1, "precision": pooled.precision, "recall": pooled.recall,
            "spread": spread(ious, names), "analysed": analysed}


class PerPhoto:
    """Collects each step's per-photo rows into one CSV file (``None``: no file)."""

    def __init__(self, path: Path | None):
        self.path, self.rows = path, []

    def add(self, step: str, s: dict) -> str:
        summary = summarise(s["analysed"])
        self.rows += [{"step": step, "photo": n, **r.as_row()} for n, r in sorted(s["analysed"].items())]
        if self.path is not None:
            write_rows(self.path, self.rows)
        return (f"{'':<28} photo classes: " + ", ".join(f"{k} {v}" for k, v in summary["classes"].items())
                + f"\n{'':<28} objects lost: " + ", ".join(f"{k} {v}" for k, v in summary["lost"].items()))


def line(name: str, s: dict, elapsed: float) -> str:
    return (f"{name:<28} IoU {s['iou']:.3f}  Dice {s['dice']:.3f}  instance F1 {s['f1']:.3f} "
            f"(P {s['precision']:.3f} R {s['recall']:.3f})  [{s['photos']} photos, {elapsed / 60:.1f} min]"
            f"\n{'':<28} IoU per photo: {s['spread']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    emps_arguments(parser)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--work", type=Path, default=None, help="keep the working files here")
    parser.add_argument("--csv", type=Path, default=None, help="write every step's per-photo figures here")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of synthesis, training and the rounds (another seed shows the training spread)")
    args = parser.parse_args()
    args.images, args.masks = emps_folders(args)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        workdir, model = work / "wd", work / "model"
        t0 = time.perf_counter()
        progress = TerminalProgress()
        from core.quiet_tf import import_tensorflow

        import_tensorflow()
        from loop.pipeline import PipelineSettings, run_pipeline
        from loop.refine import RefineSettings, run_refine

        results, per_photo = [], PerPhoto(args.csv)

        def report(step: str, folder: Path, elapsed: float) -> None:
            s = score(folder, args.masks, "_mask.png")
            results.append(line(step, s, elapsed) + "\n" + per_photo.add(step, s))
            print(results[-1], flush=True)

        run_pipeline(args.images, workdir, model, epochs=args.epochs, settings=PipelineSettings(seed=args.seed),
                     progress=progress)
        elapsed = time.perf_counter() - t0
        report("auto-segmentation", workdir / "autoseg", elapsed)
        report("first training", workdir / "segmented", elapsed)
        for k in range(args.rounds):
            run_refine(args.images, workdir, model, rounds=1, settings=RefineSettings(seed=args.seed),
                       progress=progress)
            report(f"after round {k + 1}", workdir / "segmented", time.perf_counter() - t0)
        print("\n".join(["", "summary:"] + results))


if __name__ == "__main__":
    main()
