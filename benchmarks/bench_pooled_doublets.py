"""How many objects that auto-segmentation puts into the pool hold more than
one real object (touching pairs pooled as one, then pasted as doublets into
every training image they land in)? Target: none.

    python benchmarks/bench_pooled_doublets.py [--emps DIR] [--limit N]

Scored on the bundled sample photos (rendered again with their exact
instance labels by the same code and seeds as scripts/make_sample.py) and on
the EMPS development images with their expert instance masks (read only for
scoring). A pooled object "holds" an instance when at least half of the
instance's pixels lie inside it; it is a doublet when it holds two or more.
Prints, per set: photos, pooled objects, doublets, and the pooled objects
that match one instance at IoU >= 0.5.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def score_pool(labels: np.ndarray, pooled: list[int], truth: np.ndarray) -> tuple[int, int, list[int]]:
    """(doublets, single matches at IoU >= 0.5, ids of the doublets) among the pooled objects."""
    truth_area = np.bincount(truth.ravel())
    doublets, matches, which = 0, 0, []
    for oid in pooled:
        inside = labels == oid
        under = truth[inside]
        counts = np.bincount(under[under > 0], minlength=truth_area.size)
        held = np.flatnonzero(counts >= 0.5 * np.maximum(truth_area, 1))
        held = held[held > 0]
        if held.size >= 2:
            doublets += 1
            which.append(oid)
        if counts.any():
            best = int(np.argmax(counts))
            union = inside.sum() + truth_area[best] - counts[best]
            if counts[best] / union >= 0.5:
                matches += 1
    return doublets, matches, which


def sample_photos():
    from make_sample import SAMPLES

    from synthetic.scenes import draw_scale_bar, render_particle_scene

    for name, polarity, radius, count, touching, seed in SAMPLES:
        image, truth = render_particle_scene((384, 512), count=count, radius=radius, polarity=polarity,
                                             touching=touching, gradient=0.12, noise=0.035, seed=seed)
        draw_scale_bar(image, length_fraction=0.15)
        yield name, image, truth


def emps_photos(folder: Path, limit: int | None):
    from core.imageio import read_image

    for path in sorted((folder / "images").glob("*.png"))[:limit]:
        truth = read_image(folder / "masks" / path.name)
        yield path.stem, read_image(path), truth.astype(np.int64)


def run(label: str, photos) -> None:
    from segmentation.autoseg import find_objects

    t0 = time.perf_counter()
    n_photos = pooled = doublets = matches = 0
    worst = []
    for name, image, truth in photos:
        found = find_objects(image)
        d, m, which = score_pool(found.labels, found.pooled, np.asarray(truth))
        n_photos += 1
        pooled += len(found.pooled)
        doublets += d
        matches += m
        if d:
            worst.append(f"{name}: {d}")
    print(f"{label:<18} {n_photos:3d} photos  {pooled:5d} pooled  {doublets:3d} doublets "
          f"({100 * doublets / max(pooled, 1):.1f} %)  {matches:5d} match one instance "
          f"({100 * matches / max(pooled, 1):.1f} %)  {time.perf_counter() - t0:.0f} s")
    if worst:
        print("   doublets in: " + ", ".join(worst))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emps", type=Path, default=ROOT.parent / "shared" / "data" / "emps-dev")
    parser.add_argument("--limit", type=int, default=None, help="only the first N EMPS images")
    args = parser.parse_args()
    run("bundled sample", sample_photos())
    if (args.emps / "images").is_dir():
        run(args.emps.name, emps_photos(args.emps, args.limit))
    else:
        print(f"{args.emps} not found: EMPS part skipped")


if __name__ == "__main__":
    main()
