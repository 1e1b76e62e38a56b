"""Contact sheet of auto-segmentation results: each photo with the objects
found (red), the confident ones saved to the pool (green, yellow outlines)
and the burned-in annotations that were ignored (magenta).

    python scripts/autoseg_contact_sheet.py OUT.jpg PHOTO [PHOTO ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contact_sheet import caption, save_column  # noqa: E402

from core.gray import to_display_uint8
from core.imageio import read_image  # noqa: E402
from segmentation.autoseg import find_objects  # noqa: E402


def render(path: Path, width: int = 640) -> Image.Image:
    from skimage.segmentation import find_boundaries

    image = read_image(path)
    found = find_objects(image)
    rgb = to_display_uint8(image)
    rgb = np.stack([rgb] * 3, axis=-1) if rgb.ndim == 2 else rgb.copy()
    pooled = np.isin(found.labels, found.pooled)
    for mask, colour, alpha in ((found.foreground, (255, 60, 60), 0.45), (pooled, (60, 230, 60), 0.55),
                                (found.annotations, (255, 0, 255), 0.55)):
        rgb[mask] = (rgb[mask] * (1 - alpha) + np.array(colour) * alpha).astype(np.uint8)
    rgb[find_boundaries(found.labels, mode="inner")] = (255, 255, 0)
    tile = Image.fromarray(rgb)
    tile.thumbnail((width, width))
    kind = f"{found.polarity}, both sides" if found.both_sides else found.polarity
    caption(tile, f"{path.name}: {found.count} found, {len(found.pooled)} pooled ({kind})")
    return tile


def main() -> None:
    out, photos = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    save_column([render(p) for p in photos], out)


if __name__ == "__main__":
    main()
