"""Compositing speed: synthetic 256x256 images per second.

Auto-segments a folder of photos into a temporary working directory (the
EMPS development photos when present, otherwise rendered scenes), then
times compositing alone (sources loaded once) and the whole ``synthesize``
stage including writing the files.

    python benchmarks/bench_synthesize.py [--images DIR] [--count N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from common import EMPS
from core.imageio import write_image
from core.progress import Progress
from core.workdir import WorkingDirectory
from segmentation.autoseg import run_autoseg
from synthetic.compose import SynthesisSettings, _pick_background, compose_image, run_synthesize
from synthetic.scenes import render_particle_scene
from synthetic.sources import Sources, load_backgrounds, load_pool, photo_stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=EMPS / "images")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        images = args.images
        if not images.is_dir():
            images = Path(tmp) / "photos"
            images.mkdir()
            for i in range(4):
                write_image(images / f"scene{i}.png", render_particle_scene((512, 640), count=40, seed=i)[0])
        workdir = Path(tmp) / "wd"
        run_autoseg(images, workdir)
        wd = WorkingDirectory(workdir)
        settings = SynthesisSettings(count=args.count, size=args.size)
        folder, photos = photo_stats(wd)
        t0 = time.perf_counter()
        objects, k = load_pool(wd, photos, settings.object_diameter, Progress())
        backgrounds = load_backgrounds(wd, folder, photos, settings.object_diameter,
                                       np.random.default_rng(0), Progress())
        t_load = time.perf_counter() - t0
        sources = Sources(objects, backgrounds, photos, k)
        t0 = time.perf_counter()
        pasted = 0
        for i in range(args.count):
            rng = np.random.default_rng([0, i])
            bg, canvas = _pick_background(rng, sources, settings)
            pasted += compose_image(rng, bg, canvas, sources, settings)[3]
        t_compose = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_synthesize(workdir, settings=settings)
        t_stage = time.perf_counter() - t0
    print(f"photos: {images}  pool objects: {len(objects)}  photo backgrounds: {len(backgrounds)}")
    print(f"loading pool and backgrounds: {t_load:.1f} s")
    print(f"compositing only:   {args.count / t_compose:.0f} images/s of {args.size}x{args.size} "
          f"({pasted / args.count:.1f} objects per image)")
    print(f"whole stage:        {args.count / t_stage:.0f} images/s including loading and writing "
          f"({t_stage:.1f} s for {args.count})")


if __name__ == "__main__":
    main()
