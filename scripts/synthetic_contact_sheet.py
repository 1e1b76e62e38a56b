"""Contact sheet of synthetic training images: each image beside its mask
drawn over it, to check for seams and artificial backgrounds.

    python scripts/synthetic_contact_sheet.py SYNTHETIC_DIR OUT.png [COUNT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.gray import to_display_uint8
from core.imageio import read_image  # noqa: E402

COLOURS = np.array([[0, 0, 0], [255, 70, 70], [70, 200, 255], [255, 210, 0], [120, 255, 120]], np.uint8)


def main() -> None:
    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    names = sorted(p.name for p in (folder / "images").iterdir())[:count]
    tiles = []
    for name in names:
        image = to_display_uint8(read_image(folder / "images" / name))
        rgb = np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3]
        stem = Path(name).stem
        mask_path = next((folder / "masks").glob(stem + ".*"))
        mask = read_image(mask_path)
        over = rgb.copy()
        m = mask > 0
        over[m] = (rgb[m] * 0.5 + COLOURS[np.minimum(mask[m], len(COLOURS) - 1)] * 0.5).astype(np.uint8)
        tiles.append(np.concatenate([rgb, np.full((rgb.shape[0], 4, 3), 40, np.uint8), over], axis=1))
    cols = 4
    th, tw = tiles[0].shape[:2]
    rows = (len(tiles) + cols - 1) // cols
    sheet = np.full((rows * (th + 6), cols * (tw + 6), 3), 25, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * (th + 6):r * (th + 6) + th, c * (tw + 6):c * (tw + 6) + tw] = tile
    Image.fromarray(sheet).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
