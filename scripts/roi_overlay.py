"""Draw an ImageJ ROI set over its photo, the way Fiji's ROI Manager shows it.

    python scripts/roi_overlay.py PHOTO ROIS.zip OUT.png [--width 1200]

The outlines come from the zip alone (read with roifile), never from the
mask: what is drawn is what Fiji or QuPath will show.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("rois", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1200, help="width of the picture in pixels")
    args = parser.parse_args()
    for path in (args.photo, args.rois):
        if not path.is_file():
            raise SystemExit(f"error: no such file: {path}")
    import roifile
    from PIL import Image, ImageDraw

    from core.gray import to_display_uint8
    from core.imageio import read_image

    photo = to_display_uint8(read_image(args.photo))
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=-1)
    image = Image.fromarray(photo).convert("RGB")
    factor = args.width / image.width
    image = image.resize((args.width, round(image.height * factor)), Image.LANCZOS)
    draw = ImageDraw.Draw(image)
    rois = roifile.roiread(args.rois)
    rois = rois if isinstance(rois, list) else [rois]
    for roi in rois:
        points = [(float(x) * factor, float(y) * factor) for x, y in roi.coordinates()]
        if len(points) >= 3:
            draw.line(points + points[:1], fill=(255, 220, 0), width=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out)
    print(f"{len(rois)} ROIs from {args.rois.name} drawn over {args.photo.name} into {args.out}")


if __name__ == "__main__":
    main()
