"""The figures users publish, scored against the EMPS expert masks: per-photo
count error and D50 error, and the diameter error of matched particles.

    python benchmarks/bench_sizes.py --model DIR [--set dev|val] [--limit N] [--csv FILE]
    python benchmarks/bench_sizes.py --pred FOLDER [--set dev|val] [--csv FILE]

With ``--model`` the photos are segmented with the stage's defaults first
(into a temporary folder); with ``--pred`` a folder written by ``segment``
is scored as it is. Per photo: the count error (all objects, relative to
the expert count) and the D50 error (median equivalent diameter of the
objects off the border); over particles: the relative error of the
equivalent diameter of every object matched to an expert one at IoU >= 0.5
(see :mod:`evaluation.sizes`). Targets: median D50 error and mean matched
diameter error at most 5 %.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from common import emps_arguments, emps_folders, require, write_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--model", help="model folder: segment the photos with it first")
    given.add_argument("--pred", type=Path, help="a folder segment wrote (<stem>_labels.tif)")
    emps_arguments(parser)
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos (with --model)")
    parser.add_argument("--csv", type=Path, help="one row per photo")
    args = parser.parse_args()
    images, masks = emps_folders(args)

    from core.imageio import read_image
    from evaluation.sizes import photo_sizes, summarise, summary_text

    tmp = None
    try:
        if args.model:
            from core.progress import Progress
            from inference import run_segment

            tmp = Path(tempfile.mkdtemp(prefix="sizes-"))
            photos = tmp / "photos"
            photos.mkdir()
            for path in sorted(images.glob("*.png"))[: args.limit]:
                shutil.copy(path, photos / path.name)
            pred = tmp / "out"
            run_segment(args.model, photos, pred, progress=Progress())
        else:
            pred = require(args.pred, "prediction folder")
        photos_scored = []
        for labels in sorted(pred.glob("*_labels.tif")):
            stem = labels.name[: -len("_labels.tif")]
            truth = masks / f"{stem}.png"
            if truth.is_file():
                photos_scored.append(photo_sizes(stem, read_image(labels), read_image(truth)))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if not photos_scored:
        print(f"no <stem>_labels.tif in {pred} has an expert mask in {masks}", file=sys.stderr)
        return 1
    print(summary_text(summarise(photos_scored)))
    worst = sorted((p for p in photos_scored if p.d50_error is not None), key=lambda p: -p.d50_error)[:5]
    print("largest D50 errors: " + ", ".join(f"{p.image} {100 * p.d50_error:.0f} %" for p in worst))
    if args.csv:
        write_rows(args.csv, [p.row() for p in photos_scored])
    return 0


if __name__ == "__main__":
    sys.exit(main())
