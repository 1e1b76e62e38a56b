"""Speed and memory of instances, measurements and exports.

    python benchmarks/bench_measure.py [--repeats 5] [--photos 100] [--out DIR]

Prints, for a 1024 x 1024 mask with about 200 particles (a third of them
touching a neighbour): the time to split it into instances, to measure the
objects, and to write the per-photo files; the time to split a 2592 x 2048
mask with several hundred particles; and the peak memory of measuring a
folder of ``--photos`` photos through one MeasurementCollector.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_scene(height: int, width: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A gray photo and its mask: ``count`` ellipses (axis ratio up to 1.6)
    of varied size and orientation; a third of them placed against an
    earlier one so that they touch, the rest where they fit."""
    from skimage.draw import ellipse

    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    placed: list[tuple[float, float, float]] = []
    scale = np.sqrt(height * width / 1024 ** 2)
    for _ in range(count):
        r_major = rng.uniform(10, 22) * scale
        r_minor = r_major / rng.uniform(1.0, 1.6)
        for _attempt in range(50):
            if placed and rng.random() < 0.33:
                cy, cx, r = placed[rng.integers(len(placed))]
                angle = rng.uniform(0, 2 * np.pi)
                step = 0.9 * (r + r_minor)
                cy, cx = cy + step * np.sin(angle), cx + step * np.cos(angle)
            else:
                cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            rr, cc = ellipse(cy, cx, r_major, r_minor, shape=mask.shape, rotation=rng.uniform(0, np.pi))
            if rr.size and mask[rr, cc].mean() < 0.3:
                break
        mask[rr, cc] = 1
        placed.append((cy, cx, r_minor))
    photo = (rng.normal(70, 8, mask.shape) + 110 * mask).clip(0, 255).astype(np.uint8)
    return photo, mask


def timed(fn, repeats: int):
    """Best wall-clock and CPU time over ``repeats`` runs (the best run is the
    one least disturbed by other work on the machine), and the result."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return (min(walls), min(cpus)), result


def ms(pair) -> str:
    return f"{pair[0] * 1000:6.0f} ms wall, {pair[1] * 1000:6.0f} ms CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--photos", type=int, default=20, help="photos for the folder memory check")
    parser.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    args = parser.parse_args()

    from measurement.exports import MeasurementCollector, write_measurements
    from measurement.measure import measure_objects
    from segmentation.instances import label_instances, split_touching

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="segloop_bench_measure_"))
    photo, mask = make_scene(1024, 1024, 250, seed=1)
    t_split, (labels, classes) = timed(lambda: label_instances(mask), args.repeats)
    t_measure, _rows = timed(lambda: measure_objects(labels, image=photo, classes=classes, pixel_size=0.5),
                            args.repeats)
    t_all, _ = timed(lambda: write_measurements(out, "bench", photo, mask, pixel_size=0.5), args.repeats)
    print(f"1024 x 1024, {labels.max()} objects ({(mask > 0).mean():.0%} of the photo):")
    print(f"  instances (split touching)        {ms(t_split)}")
    print(f"  measurements (regionprops, Feret) {ms(t_measure)}")
    print(f"  all of it, files written          {ms(t_all)}  (mask, labels, overlay, CSV)")

    big_photo, big_mask = make_scene(2048, 2592, 500, seed=2)
    t_big, big_labels = timed(lambda: split_touching(big_mask), args.repeats)
    print(f"2592 x 2048, {big_labels.max()} objects ({(big_mask > 0).mean():.0%} of the photo):")
    print(f"  split_touching                    {ms(t_big)}")

    folder = out / "folder"
    tracemalloc.start()
    # Four scenes, shifted differently for every photo: drawing a fresh scene
    # per photo would take longer than measuring it.
    scenes = [make_scene(1024, 1024, 250, seed=100 + i) for i in range(4)]
    held: list[int] = []
    t0, c0 = time.perf_counter(), time.process_time()
    with MeasurementCollector(folder, pixel_size=0.5) as collector:
        for i in range(args.photos):
            p, m = scenes[i % 4]
            shift = (37 * i, 53 * i)
            collector.add(f"photo{i:03d}", np.roll(p, shift, (0, 1)), np.roll(m, shift, (0, 1)))
            held.append(tracemalloc.get_traced_memory()[0])
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result = collector.result
    print(f"folder of {args.photos} photos 1024 x 1024 through one MeasurementCollector: "
          f"{elapsed:.1f} s wall, {cpu:.1f} s CPU ({cpu / max(1, args.photos) * 1000:.0f} ms CPU per photo, "
          f"slowed by tracemalloc), "
          f"peak traced memory {peak / 2 ** 20:.0f} MiB (the four scenes included)")
    print(f"  memory held after photo 1: {held[0] / 2 ** 20:.1f} MiB, after photo {len(held)}: "
          f"{held[-1] / 2 ** 20:.1f} MiB")
    print(f"  {result.summary_text()}")
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
