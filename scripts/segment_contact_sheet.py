"""Contact sheet of segmentation results: each photo beside the same photo
with the objects the model found (one colour per object, yellow outlines),
read from the output folder of ``app.py segment``.

    python scripts/segment_contact_sheet.py OUT.jpg SEGMENT_FOLDER PHOTO [PHOTO ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.imageio import read_image, to_display_uint8  # noqa: E402


def render(path: Path, folder: Path, scales: dict, width: int = 640) -> Image.Image:
    from skimage.segmentation import find_boundaries

    image = to_display_uint8(read_image(path))
    rgb = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3].copy()
    labels = read_image(folder / f"{path.stem}_labels.tif").astype(np.int64)
    colours = np.random.default_rng(0).integers(40, 256, size=(int(labels.max()) + 1, 3))
    inside = labels > 0
    shown = rgb.copy()
    shown[inside] = (rgb[inside] * 0.55 + colours[labels[inside]] * 0.45).astype(np.uint8)
    edges = find_boundaries(labels, mode="inner")
    edges = edges | np.roll(edges, 1, axis=0) | np.roll(edges, 1, axis=1)
    shown[edges & inside] = (255, 255, 0)
    pair = np.concatenate([rgb, np.full((rgb.shape[0], rgb.shape[0] // 100 + 4, 3), 30, np.uint8), shown], axis=1)
    tile = Image.fromarray(pair)
    tile.thumbnail((2 * width, 2 * width))
    draw = ImageDraw.Draw(tile)
    count = len(np.unique(labels)) - 1
    scale = scales.get(path.stem) or scales.get(path.name)
    text = f"{path.name}: {count} objects" + (f", segmented at scale {scale:.3g}" if scale else "")
    draw.rectangle((0, 0, 8 + 6 * len(text), 16), fill=(0, 0, 0))
    draw.text((4, 2), text, fill=(255, 255, 255))
    return tile


def main() -> None:
    out, folder, photos = Path(sys.argv[1]), Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]]
    try:
        scales = json.loads((folder / "segment.json").read_text(encoding="utf-8")).get("scales", {})
    except (OSError, ValueError):
        scales = {}
    tiles = [render(p, folder, scales) for p in photos]
    height = sum(t.height for t in tiles) + 4 * (len(tiles) - 1)
    sheet = Image.new("RGB", (max(t.width for t in tiles), height), (30, 30, 30))
    y = 0
    for tile in tiles:
        sheet.paste(tile, (0, y))
        y += tile.height + 4
    sheet.save(out, quality=85)
    print(f"wrote {out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
