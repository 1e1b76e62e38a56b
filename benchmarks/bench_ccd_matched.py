"""A detector model for another group's CCD: the default simulator against
the simulator matched to their frames by ``fit-ccd``.

    python benchmarks/bench_ccd_matched.py [--train-count 300] [--epochs 40] [--fit-frames 20]
                                           [--test-frames 40] [--work DIR]

Frames of the other detector come from independent code
(``tests/other_detector.py``: pedestal 8800 ADU, noise 19 ADU, a constant
glow band at the left edge, hot columns of +2200 ADU, its own deposits and
tracks), written as 16-bit FITS. Three routes are scored on the same test
frames, against their exact masks:

* threshold labels (``label-ccd``, no model);
* default: ``simulate-ccd`` -> ``train`` -> ``segment``;
* matched: ``fit-ccd`` on other frames of that detector -> ``simulate-ccd
  --settings`` -> ``train`` -> ``segment``.

Printed per route: pixel F1 per class, clusters found as objects (recall,
precision; a found cluster matches a true one when they share pixels, one to
one), and the time taken.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from other_detector import other_frame  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

EIGHT = np.ones((3, 3), bool)


def write_frames(folder: Path, count: int, seed: int, masks: Path | None = None) -> None:
    from astropy.io import fits

    from core.imageio import write_image

    folder.mkdir(parents=True, exist_ok=True)
    if masks is not None:
        masks.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        frame, mask = other_frame(np.random.default_rng(seed + i), 256)
        fits.PrimaryHDU(frame.astype(np.uint16)).writeto(folder / f"o{i:04d}.fits", overwrite=True)
        if masks is not None:
            write_image(masks / f"o{i:04d}.png", mask)


def cluster_objects(truth: np.ndarray, pred: np.ndarray) -> tuple[int, int, int]:
    """(true clusters matched, true clusters, found clusters)."""
    t, nt = ndi.label(truth == 3, structure=EIGHT)
    f, nf = ndi.label(pred == 3, structure=EIGHT)
    both = (t > 0) & (f > 0)
    used_t, used_f = set(), set()
    for (a, b), _ in Counter(zip(t[both].tolist(), f[both].tolist())).most_common():
        if a not in used_t and b not in used_f:
            used_t.add(a)
            used_f.add(b)
    return len(used_t), nt, nf


def score(name: str, truths: list[np.ndarray], preds: list[np.ndarray], seconds: float) -> str:
    from detector.thresholds import class_scores

    s = class_scores(np.stack(truths), np.stack(preds))
    matched = sum(cluster_objects(t, p)[0] for t, p in zip(truths, preds))
    true = sum(cluster_objects(t, p)[1] for t, p in zip(truths, preds))
    found = sum(cluster_objects(t, p)[2] for t, p in zip(truths, preds))
    return (f"{name:<16} pixel F1: cluster {s['cluster']['f1']:.3f} (P {s['cluster']['precision']:.3f} "
            f"R {s['cluster']['recall']:.3f}), hot pixel {s['hot pixel']['f1']:.3f}, glowing "
            f"{s['glowing']['f1']:.3f}, background {s['background']['f1']:.3f}; clusters as objects "
            f"recall {matched / max(true, 1):.3f} precision {matched / max(found, 1):.3f} "
            f"({true} true); {seconds / 60:.1f} min")


def model_route(name, sim_settings, work: Path, test: Path, epochs: int) -> list[np.ndarray]:
    from core.imageio import read_image
    from core.progress import Progress
    from inference.stage import run_segment
    from synthetic.ccd import run_simulate_ccd
    from training.settings import TrainSettings
    from training.train import run_training

    sim, model, out = work / f"{name}_sim", work / f"{name}_model", work / f"{name}_out"
    if not (sim / "simulation.json").exists():
        run_simulate_ccd(sim, settings=sim_settings, progress=Progress())
    if not (model / "model.json").exists() or '"finished": true' not in (model / "model.json").read_text():
        run_training(sim, model, settings=TrainSettings(epochs=epochs, seed=0), progress=Progress())
    run_segment(model, test / "frames", out, progress=Progress())
    return [read_image(out / f"{p.stem}_mask.png") for p in sorted((test / "frames").glob("*.fits"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-count", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--fit-frames", type=int, default=20)
    parser.add_argument("--test-frames", type=int, default=40)
    parser.add_argument("--work", type=Path, default=Path("/tmp/segloop_bench_ccd_matched"))
    parser.add_argument("--routes", default="labels,default,matched")
    args = parser.parse_args()
    from core.imageio import read_image
    from core.quiet_tf import import_tensorflow
    from detector.fit import run_fit_ccd
    from detector.thresholds import label_frame
    from synthetic.ccd import CCDSettings

    work, test = args.work, args.work / "test"
    if not (test / "masks").exists():
        write_frames(test / "frames", args.test_frames, 50_000, masks=test / "masks")
    if not (work / "fit_frames").exists():
        write_frames(work / "fit_frames", args.fit_frames, 10_000)
    truths = [read_image(p) for p in sorted((test / "masks").glob("*.png"))]
    routes = args.routes.split(",")
    lines = []
    if "labels" in routes:
        t0 = time.perf_counter()
        preds = [label_frame(read_image(p))[0] for p in sorted((test / "frames").glob("*.fits"))]
        lines.append(score("threshold labels", truths, preds, time.perf_counter() - t0))
        print(lines[-1], flush=True)
    import_tensorflow()
    if "default" in routes:
        t0 = time.perf_counter()
        preds = model_route("default", CCDSettings(count=args.train_count), work, test, args.epochs)
        lines.append(score("default", truths, preds, time.perf_counter() - t0))
        print(lines[-1], flush=True)
    if "matched" in routes:
        t0 = time.perf_counter()
        fitted = run_fit_ccd(work / "fit_frames", work / "detector.json")
        print(fitted.summary(), flush=True)
        settings = fitted.settings
        settings.count = args.train_count
        preds = model_route("matched", settings, work, test, args.epochs)
        lines.append(score("matched", truths, preds, time.perf_counter() - t0))
        print(lines[-1], flush=True)
    print("\n".join(["", f"{args.test_frames} test frames of the other detector, 256x256; "
                     f"{args.train_count} training frames, {args.epochs} epochs:"] + lines))


if __name__ == "__main__":
    main()
