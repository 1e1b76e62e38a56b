"""A full-size detector frame segmented end to end: time and peak memory.

    python benchmarks/bench_large_frame.py --model MODEL_DIR [--size 4096] [--amplifiers 1] [--work DIR]

Writes a simulated frame of ``--size`` x ``--size`` pixels as a 16-bit FITS
file (``--amplifiers`` image units of that size, one per amplifier), then
runs ``python app.py segment`` on it in a child process, exactly as a user
would, and prints the wall time, the child's peak resident memory and what
it wrote (clusters catalogued, quality row). MODEL_DIR is a detector model
(e.g. one trained by ``bench_ccd_matched.py``).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--amplifiers", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/segloop_bench_large_frame"))
    args = parser.parse_args()
    from astropy.io import fits

    from synthetic.ccd import CCDSettings, frame_rng, simulate_frame

    frames = args.work / "frames"
    frames.mkdir(parents=True, exist_ok=True)
    path = frames / f"frame_{args.size}.fits"
    if not path.exists():
        t0 = time.perf_counter()
        units = [fits.PrimaryHDU()] if args.amplifiers > 1 else []
        for amp in range(args.amplifiers):
            frame, _ = simulate_frame(frame_rng(99, amp), CCDSettings(size=args.size, glow_probability=1.0))
            data = np.clip(np.rint(frame), 0, 65535).astype(np.uint16)
            units.append(fits.ImageHDU(data) if units else fits.PrimaryHDU(data))
        fits.HDUList(units).writeto(path)
        print(f"simulated {args.amplifiers} x {args.size}x{args.size} in {time.perf_counter() - t0:.1f} s, "
              f"{path.stat().st_size / 1e6:.0f} MB on disk")
    out = args.work / "out"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "app.py"), "segment", "--model", str(args.model),
                             "--images", str(path), "--out", str(out)], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if result.returncode != 0:
        print(result.stderr[-2000:])
        raise SystemExit(result.returncode)
    quality = list(csv.DictReader((out / "quality.csv").open()))
    clusters = sum(1 for _ in (out).glob("*_clusters.csv"))
    rows = sum(len((p).read_text().splitlines()) - 1 for p in out.glob("*_clusters.csv"))
    pixels = args.amplifiers * args.size**2
    print(f"segment of {args.amplifiers} x {args.size}x{args.size} ({pixels / 1e6:.1f} Mpixel): {seconds:.1f} s "
          f"({seconds / pixels * 1e6:.2f} s per Mpixel), peak resident memory of the process "
          f"{max(peak, before) / 1024:.0f} MB ({max(peak, before) * 1024 / pixels:.0f} bytes per pixel); "
          f"{clusters} catalogue(s), {rows} clusters; quality: "
          + "; ".join(f"{q['image']}: pedestal {float(q['pedestal_adu']):.1f}, noise {float(q['noise_adu']):.2f}, "
                      f"glow {float(q['glow_fraction']):.3f}, hot columns {q['hot_columns']}" for q in quality))


if __name__ == "__main__":
    main()
