"""Prediction speed and memory.

    python benchmarks/bench_predict.py [--model DIR] [--big 8000]

Prints the peak memory (resident set size high-water mark, and the numpy
arrays alone by tracemalloc) while segmenting a big x big RGB photo, then
the time to segment a 2592 x 2048 RGB photo. Without ``--model`` an
untrained network of the default preset is used (same speed as a trained one).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def photo(height: int, width: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    yy = np.arange(height, dtype=np.float32)[:, None]
    xx = np.arange(width, dtype=np.float32)[None, :]
    gray = (120 + 60 * np.sin(yy / 37.0) * np.cos(xx / 29.0)).astype(np.uint8)
    gray += rng.integers(0, 20, gray.shape, dtype=np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)


def default_model_dir(tmp: Path) -> Path:
    from training.unet import get_model, preset

    arch = preset("cpu")
    model = get_model((None, None, 1), 2, **arch)
    model.save(tmp / "model.keras")
    meta = {"format": "segloop-unet", "classes": ["background", "object"], "num_classes": 2,
            "normalization": {"mode": "percentile", "low": 0.5, "high": 99.5},
            "architecture": {**arch, "pad_multiple": 2 ** arch["depth"]}, "tile_size": 512}
    (tmp / "model.json").write_text(json.dumps(meta))
    return tmp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: untrained default preset)")
    parser.add_argument("--big", type=int, default=8000, help="side of the big photo (default 8000)")
    parser.add_argument("--tile", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None, help="tiles per network call")
    args = parser.parse_args()

    from inference.predict import DEFAULT_BATCH, load_model, predict_mask

    args.batch = args.batch or DEFAULT_BATCH

    with tempfile.TemporaryDirectory() as tmp:
        model, meta = load_model(args.model or default_model_dir(Path(tmp)))
    predict_mask(model, meta, photo(300, 300))  # warm-up
    baseline = rss_mb()
    print(f"resident memory with TensorFlow and the model loaded: {baseline:.0f} MB", flush=True)

    # The big photo first, so that the high-water mark is its own.
    big = photo(args.big, args.big)
    tracemalloc.start()
    t0 = time.perf_counter()
    mask = predict_mask(model, meta, big, tile=args.tile, batch_size=args.batch)
    elapsed = time.perf_counter() - t0
    _, numpy_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{args.big}x{args.big} RGB photo ({big.nbytes / 2**20:.0f} MB as uint8): {elapsed:.1f} s; "
          f"peak resident memory {rss_mb():.0f} MB ({rss_mb() - baseline:.0f} MB above the loaded model, "
          f"photo included); numpy arrays peak {numpy_peak / 2**20:.0f} MB", flush=True)
    del big, mask

    image = photo(2048, 2592)
    t0 = time.perf_counter()
    predict_mask(model, meta, image, tile=args.tile, batch_size=args.batch)
    elapsed = time.perf_counter() - t0
    print(f"2592x2048 RGB photo: {elapsed:.2f} s (tile {args.tile or meta['tile_size']}, "
          f"{args.batch} tiles per call)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
