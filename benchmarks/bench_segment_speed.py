"""Where the segment stage's time goes, photo by photo, and how it compares
with one plain pass of the network at the scale the photo was read at.

    python benchmarks/bench_segment_speed.py [--model DIR] [--set dev|val | --images DIR] [--limit N]
                                             [--mirrors N] [--csv FILE]
    python benchmarks/bench_segment_speed.py --compare OLD_TREE [--model DIR] [--set dev|val] [--limit N]

The first form segments each photo in this process (the model loaded once,
before the clock starts) with the stage's defaults, timing each part:
the first look, every candidate scale of the scale check, auto-segmentation
inside the check and the fallback, the final prediction (with its mirrored
views), the marks and specks taken out, and measuring and writing. It then
times one plain pass at the scale the photo was read at and prints, per
photo, the total over that pass; the worst photo is named at the end.

``--compare OLD_TREE`` segments the same photos with the same model and
each checkout's defaults, with another checkout of the application (an
older commit, as ``git worktree add OLD_TREE <commit>`` makes it) and with
this one, one after the other, each photo alone with the model loaded
before the clock starts; it prints each photo's seconds, both totals and,
where expert masks are found, both sets' mean IoU and instance F1.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import ROOT, emps_set, require, write_rows


class Clock:
    """Seconds spent in each part of the stage, for the photo being timed."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, module, name: str, label):
        """Time ``module.name`` under ``label`` (a string, or a function of the call's arguments)."""
        real = getattr(module, name)

        def timed(*args, **kwargs):
            part = label(*args, **kwargs) if callable(label) else label
            t0 = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.parts[part] += time.perf_counter() - t0
                self.calls[part] += 1

        setattr(module, name, timed)
        return real


def _prediction_part(*args, **kwargs) -> str:
    """What a call of predict_mask is for, from the function that made it."""
    caller = sys._getframe(2).f_code.co_name
    if caller == "surest_scale":
        return "candidate scales"
    if caller == "model_sure_objects":
        return "fallback: sure objects"
    if caller == "segment_photo":
        return "final prediction" if kwargs.get("return_foreground") else "first look"
    return f"prediction ({caller})"


def instrument():
    """A clock on every part of the stage, and the untimed predict_mask."""
    import inference.marks as marks
    import inference.photo as photo
    import inference.predict as predict
    import measurement.exports as exports
    import segmentation.autoseg as autoseg

    clock = Clock()
    plain = clock.wrap(predict, "predict_mask", _prediction_part)
    clock.wrap(autoseg, "find_objects", "auto-segmentation (scale check, fallback)")
    clock.wrap(photo, "find_marks", "marks and specks")
    clock.wrap(photo, "without_faint_specks", "marks and specks")
    clock.wrap(exports, "write_measurements", "measuring and writing")
    del marks
    return clock, plain


def breakdown(args) -> None:
    from core.imageio import list_images, read_image
    from core.model_folder import load_model
    from core.quiet_tf import import_tensorflow
    from inference import SegmentSettings, run_segment

    import_tensorflow()
    photos = list_images(args.images)[: args.limit or None]
    from inference.batch import model_fingerprint
    from inference.runtime import prediction_network

    model, meta = load_model(args.model)
    model = prediction_network(model, key=model_fingerprint(args.model))  # the network the stage runs
    settings = SegmentSettings() if args.mirrors is None else SegmentSettings(flips=args.mirrors)
    clock, plain_pass = instrument()
    rows, worst = [], None
    with tempfile.TemporaryDirectory() as tmp:
        run_segment(args.model, photos[0], Path(tmp) / "warm", settings=settings)  # load and trace once
        for path in photos:
            clock.parts.clear()
            clock.calls.clear()
            t0 = time.perf_counter()
            result = run_segment(args.model, path, Path(tmp) / path.stem, settings=settings)
            total = time.perf_counter() - t0
            scale = result.scales[path.name]
            image = read_image(path)
            t1 = time.perf_counter()
            plain_pass(model, meta, image, scale=scale)
            one = time.perf_counter() - t1
            row = {"photo": path.name, "megapixels": round(image.shape[0] * image.shape[1] / 1e6, 3),
                   "scale": scale, "total_s": round(total, 2), "one_pass_s": round(one, 3),
                   "ratio": round(total / one, 1)}
            row.update({k: round(v, 2) for k, v in sorted(clock.parts.items())})
            rows.append(row)
            parts = ", ".join(f"{k} {v:.2f} s ({clock.calls[k]}x)" for k, v in sorted(clock.parts.items()))
            print(f"{path.name}: {total:.2f} s at scale {scale:.2f}, one plain pass {one:.3f} s "
                  f"({total / one:.1f}x); {parts}", flush=True)
            if worst is None or row["ratio"] > worst["ratio"]:
                worst = row
    totals = defaultdict(float)
    for row in rows:
        for k, v in row.items():
            if k not in ("photo", "megapixels", "scale", "ratio", "one_pass_s") and isinstance(v, float):
                totals[k] += v
    print(f"\n{len(rows)} photos, {totals['total_s']:.1f} s in all; where it went:")
    for k, v in sorted(totals.items(), key=lambda kv: -kv[1]):
        if k != "total_s":
            print(f"  {k:<40} {v:8.1f} s  {100 * v / totals['total_s']:5.1f} %")
    print(f"worst photo: {worst['photo']}, {worst['ratio']}x one plain pass at its scale ({worst['scale']})")
    if args.csv:
        keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in rows[0], k))
        write_rows(args.csv, [{k: r.get(k, "") for k in keys} for r in rows])


# Run with the current folder at a checkout's root: that checkout's segment
# stage, the model loaded (and the first photo segmented) before the clock
# starts, then each photo segmented alone with the stage's defaults.
_DRIVER = """
import json, sys, time
from pathlib import Path
model, photos, out, report = sys.argv[1:5]
try:
    from inference import run_segment
except ImportError:  # a checkout from before the inference package
    from evaluation.segment import run_segment
paths = sorted(Path(photos).iterdir())
run_segment(model, paths[0], Path(out) / "warm")
seconds = {}
for path in paths:
    t0 = time.perf_counter()
    run_segment(model, path, Path(out) / path.stem)
    seconds[path.name] = time.perf_counter() - t0
Path(report).write_text(json.dumps(seconds))
"""


def compare(args) -> None:
    import json

    import numpy as np

    from core.imageio import read_image
    from evaluation.metrics import foreground_iou_dice, instance_matching, pool_matches

    masks = args.masks or emps_set(args.set) / "masks"
    scored = masks.is_dir()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for path in sorted(args.images.iterdir())[: args.limit or None]:
            shutil.copy(path, photos / path.name)
        for name, tree in (("old", Path(args.compare).resolve()), ("new", ROOT)):
            out, report = Path(tmp) / name, Path(tmp) / f"{name}.json"
            done = subprocess.run([sys.executable, "-c", _DRIVER, str(args.model.resolve()), str(photos), str(out),
                                   str(report)], capture_output=True, text=True, cwd=tree)
            if done.returncode != 0:
                print(f"{name}: exit {done.returncode}: {done.stderr[-800:]}")
                return
            seconds = json.loads(report.read_text())
            ious, matches = [], []
            for photo in sorted(seconds):
                stem = Path(photo).stem
                truth_path = masks / f"{stem}.png"
                if not scored or not truth_path.exists():
                    continue
                truth = read_image(truth_path)
                iou, _ = foreground_iou_dice(read_image(out / stem / f"{stem}_mask.png") > 0, truth)
                if not np.isnan(iou):
                    ious.append(iou)
                matches.append(instance_matching(read_image(out / stem / f"{stem}_labels.tif"), truth, 0.5,
                                                 pred_are_labels=True))
            figures = (f"; mean IoU {np.mean(ious):.4f}, instance F1 {pool_matches(matches).f1:.4f}"
                       if matches else "")
            runs[name] = seconds
            print(f"{name} ({tree}): {sum(seconds.values()):.1f} s for {len(seconds)} photos{figures}", flush=True)
    old, new = runs["old"], runs["new"]
    for photo in sorted(new):
        print(f"  {photo}: {old[photo]:.2f} s -> {new[photo]:.2f} s ({old[photo] / new[photo]:.1f}x)")
    print(f"in all {sum(old.values()):.1f} s -> {sum(new.values()):.1f} s "
          f"({sum(old.values()) / sum(new.values()):.2f}x faster)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--set", choices=("dev", "val"), default="dev")
    parser.add_argument("--images", type=Path, default=None)
    parser.add_argument("--masks", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos")
    parser.add_argument("--mirrors", type=int, choices=(0, 1, 2, 3), default=None,
                        help="mirrored views of the final prediction (default: the stage's)")
    parser.add_argument("--csv", type=Path, default=None)
    parser.add_argument("--compare", default=None, metavar="OLD_TREE")
    args = parser.parse_args()
    args.images = require(args.images or emps_set(args.set) / "images", "photos")
    if args.compare:
        compare(args)
    else:
        breakdown(args)


if __name__ == "__main__":
    main()
