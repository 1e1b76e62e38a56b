"""Contact sheet of segmentation results: each photo beside the same photo
with the objects the model found (one colour per object, yellow outlines),
read from the output folder of ``app.py segment``.

    python scripts/segment_contact_sheet.py OUT.jpg SEGMENT_FOLDER PHOTO [PHOTO ...]
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
from inference.stage import previous_scales  # noqa: E402


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
    count = len(np.unique(labels)) - 1
    scale = scales.get(path.name)
    caption(tile, f"{path.name}: {count} objects" + (f", segmented at scale {scale:.3g}" if scale else ""))
    return tile


def main() -> None:
    out, folder, photos = Path(sys.argv[1]), Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]]
    scales = previous_scales(folder)
    save_column([render(p, folder, scales) for p in photos], out)


if __name__ == "__main__":
    main()
