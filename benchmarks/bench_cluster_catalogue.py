"""The cluster catalogue of detector frames against the simulator's truth.

    python benchmarks/bench_cluster_catalogue.py [--frames N] [--size PX] [--seed N]

Simulated frames (where every deposit's charge is known) are catalogued
(:mod:`detector.outputs`) from two class masks: the exact mask (the
catalogue's own error: charge measured above the local background, from
noisy pixels) and the threshold labeller's (``label-ccd``, what a user gets
without a model). A catalogued cluster matches a true one when they share
pixels (one to one, largest overlap first). Printed: clusters found as
objects (recall, precision), the median and 90th percentile of the relative
charge error of matched clusters, and the shape classes found.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detector.outputs import CLUSTER, frame_clusters  # noqa: E402
from detector.thresholds import label_frame, robust_level  # noqa: E402
from synthetic.ccd import CCDSettings, frame_rng, render_frame  # noqa: E402

EIGHT = np.ones((3, 3), bool)


def true_clusters(sim, gain: float):
    """Labels of the exact cluster mask and each one's charge in ADU: the
    noise-free cluster layer over the cluster and 2 pixels around it (its
    diffusion tails)."""
    labels, count = ndi.label(sim.mask == CLUSTER, structure=EIGHT)
    grown = ndi.grey_dilation(labels, footprint=np.ones((5, 5), bool))
    grown[labels > 0] = labels[labels > 0]
    charge = ndi.sum(sim.cluster * gain, grown, index=np.arange(1, count + 1))
    return labels, np.asarray(charge, float)


def match(true_labels, true_charge, found_mask, rows):
    """(matched true, found count, relative charge errors)."""
    found_labels, _ = ndi.label(found_mask == CLUSTER, structure=EIGHT)
    both = (true_labels > 0) & (found_labels > 0)
    pairs = Counter(zip(true_labels[both].tolist(), found_labels[both].tolist()))
    used_t, used_f, errors = set(), set(), []
    charge_of = {r["cluster_id"]: r["charge_adu"] for r in rows}
    for (t, f), _ in pairs.most_common():
        if t in used_t or f in used_f:
            continue
        used_t.add(t)
        used_f.add(f)
        errors.append((charge_of[f] - true_charge[t - 1]) / true_charge[t - 1])
    return len(used_t), len(rows), errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    settings = CCDSettings(size=args.size)
    gain = settings.gain_adu_per_electron
    totals = {"exact mask": [0, 0, 0, [], Counter()], "threshold labels": [0, 0, 0, [], Counter()]}
    start = time.perf_counter()
    for i in range(args.frames):
        sim = render_frame(frame_rng(args.seed, i), settings)
        labels, charge = true_clusters(sim, gain)
        pedestal, _ = robust_level(sim.frame)
        for name, mask in (("exact mask", sim.mask), ("threshold labels", label_frame(sim.frame)[0])):
            rows = frame_clusters(sim.frame, mask, pedestal=pedestal, gain=gain)
            matched, found, errors = match(labels, charge, mask, rows)
            t = totals[name]
            t[0] += matched
            t[1] += found
            t[2] += int(labels.max())
            t[3].extend(errors)
            t[4].update(r["shape"] for r in rows)
    elapsed = time.perf_counter() - start
    print(f"{args.frames} simulated frames of {args.size}x{args.size} (seed {args.seed}), {elapsed:.1f} s")
    for name, (matched, found, true, errors, shapes) in totals.items():
        err = np.abs(np.asarray(errors))
        print(f"{name:<17} clusters {true}: recall {matched / max(true, 1):.3f}, precision "
              f"{matched / max(found, 1):.3f}; charge error median {np.median(err):.3f}, "
              f"90th percentile {np.percentile(err, 90):.3f}, median signed {np.median(errors):+.3f}; "
              f"shapes {dict(shapes)}")


if __name__ == "__main__":
    main()
