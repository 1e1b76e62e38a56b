"""Batch segmentation speed and memory: ``segment`` on a folder of photos.

Renders ``--photos`` particle photos of 1024x1024 (or uses ``--images``),
segments them with a model folder (default: the bundled ``checkpoints/``)
through the same stage function as ``python app.py segment``, and prints
photos per minute and the peak resident memory of the process, sampled
after each photo to show that it stays bounded.

    python benchmarks/bench_batch_segment.py [--photos 100] [--model DIR] [--images DIR]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from common import ROOT
from core.imageio import write_image
from core.progress import Progress, TerminalProgress
from synthetic.scenes import render_particle_scene


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MemoryProgress(TerminalProgress):
    def __init__(self) -> None:
        super().__init__()
        self.samples: list[float] = []

    def on_log(self, text: str) -> None:
        self.samples.append(rss_mb())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--model", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--images", type=Path, default=None)
    args = parser.parse_args()
    from core.quiet_tf import import_tensorflow

    import_tensorflow()
    from inference.stage import run_segment

    with tempfile.TemporaryDirectory() as tmp:
        images = args.images
        if images is None:
            images = Path(tmp) / "photos"
            images.mkdir()
            for i in range(args.photos):
                image, _ = render_particle_scene((1024, 1024), count=60, radius=(10, 24), touching=0.2, seed=i)
                write_image(images / f"photo_{i:03d}.png", image)
        run_segment(args.model, images / "photo_000.png" if args.images is None else images,
                    Path(tmp) / "warmup", progress=Progress())
        progress = MemoryProgress()
        t0 = time.perf_counter()
        result = run_segment(args.model, images, Path(tmp) / "out", progress=progress)
        elapsed = time.perf_counter() - t0
    n = result.photos
    print(f"segmented {n} photos ({result.objects} objects) in {elapsed:.0f} s: "
          f"{60 * n / elapsed:.1f} photos per minute")
    if progress.samples:
        s = progress.samples
        print(f"resident memory after photo 1: {s[0]:.0f} MB, after photo {len(s) // 2}: {s[len(s) // 2 - 1]:.0f} MB, "
              f"after photo {len(s)}: {s[-1]:.0f} MB (max {max(s):.0f} MB)")


if __name__ == "__main__":
    main()
