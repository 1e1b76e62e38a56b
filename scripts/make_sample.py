"""Render the bundled sample photos into working_directory/photos.

The sample is made by the application's own scene renderer (particles of
varied size on an unevenly lit background, some touching, a burned-in scale
bar), so a newcomer can click through the whole loop at once.

    python scripts/make_sample.py [--out working_directory/photos]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.imageio import write_image  # noqa: E402
from synthetic.scenes import draw_scale_bar, render_particle_scene  # noqa: E402

SAMPLES = [
    # name, polarity, radius range, count, touching, seed
    ("particles_01", "dark", (9, 18), 30, 0.2, 101),
    ("particles_02", "dark", (7, 15), 45, 0.3, 102),
    ("particles_03", "dark", (10, 22), 22, 0.15, 103),
    ("particles_04", "dark", (8, 16), 35, 0.25, 104),
    ("particles_05", "dark", (9, 20), 28, 0.2, 105),
    ("particles_06", "dark", (8, 18), 32, 0.3, 106),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "working_directory" / "photos")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, polarity, radius, count, touching, seed in SAMPLES:
        image, _ = render_particle_scene((384, 512), count=count, radius=radius, polarity=polarity,
                                         touching=touching, gradient=0.12, noise=0.035, seed=seed)
        draw_scale_bar(image, length_fraction=0.15)
        write_image(args.out / f"{name}.png", image)
    print(f"wrote {len(SAMPLES)} sample photos to {args.out}")


if __name__ == "__main__":
    main()
