"""CCD check: train with the default settings on simulated detector frames,
segment frames simulated with another seed, and print per-class scores.

    python benchmarks/bench_ccd_training.py [--count 200] [--test-count 40] [--epochs N] [--work DIR]

Prints the training time, per-class pixel precision/recall/F1/IoU and
object F1 on the test frames (the report is also written to WORK/report).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=None, help="training frames (default: simulator default)")
    parser.add_argument("--test-count", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-seed", type=int, default=12345)
    parser.add_argument("--work", default="/tmp/segloop_bench_ccd")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a TrainSettings field (for experiments)")
    args = parser.parse_args()

    import numpy as np

    from core.imageio import read_image, write_image
    from core.progress import Progress, TerminalProgress
    from evaluation.report import run_evaluate
    from inference.predict import load_model, predict_mask
    from synthetic.ccd import CCDSettings, run_simulate_ccd
    from training.settings import TrainSettings
    from training.train import run_training

    work = Path(args.work)
    train_dir, test_dir, model_dir = work / "train", work / "test", work / "model"
    sim = CCDSettings(seed=args.seed) if args.count is None else CCDSettings(count=args.count, seed=args.seed)
    if not (train_dir / "simulation.json").exists():
        run_simulate_ccd(train_dir, settings=sim, progress=Progress())
    if not (test_dir / "simulation.json").exists():
        run_simulate_ccd(test_dir, settings=CCDSettings(count=args.test_count, seed=args.test_seed),
                         progress=Progress())

    settings = TrainSettings(seed=args.seed)
    if args.epochs is not None:
        settings.epochs = args.epochs
    for item in args.set:
        name, value = item.split("=", 1)
        current = getattr(settings, name)
        setattr(settings, name, type(current)(value) if current is not None else float(value))
    t0 = time.monotonic()
    result = run_training(train_dir, model_dir, settings=settings, progress=TerminalProgress())
    train_s = time.monotonic() - t0
    print(result.summary())

    model, meta = load_model(model_dir)
    pred_dir = work / "pred"
    t0 = time.monotonic()
    for path in sorted((test_dir / "images").iterdir()):
        image = read_image(path)
        write_image(pred_dir / f"{path.stem}_mask.png", np.asarray(predict_mask(model, meta, image), np.uint8))
    predict_s = time.monotonic() - t0
    report = run_evaluate(pred_dir, test_dir / "masks", work / "report", progress=Progress())
    print(report.text.split("\nForeground per image")[0])
    print(f"training: {train_s:.0f} s for {result.epochs_run} epochs on {result.train_images} frames; "
          f"prediction: {predict_s / args.test_count:.3f} s per frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
