"""What the contact-sheet scripts share: a caption on a tile and a column
of tiles saved as one image."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw


def caption(tile: Image.Image, text: str) -> None:
    """White text on a black band at the tile's top left."""
    draw = ImageDraw.Draw(tile)
    draw.rectangle((0, 0, 8 + 6 * len(text), 16), fill=(0, 0, 0))
    draw.text((4, 2), text, fill=(255, 255, 255))


def save_column(tiles: list[Image.Image], out: Path) -> None:
    """The tiles one under the other, 4 pixels apart, saved to ``out``."""
    height = sum(t.height for t in tiles) + 4 * (len(tiles) - 1)
    sheet = Image.new("RGB", (max(t.width for t in tiles), height), (30, 30, 30))
    y = 0
    for tile in tiles:
        sheet.paste(tile, (0, y))
        y += tile.height + 4
    sheet.save(out, quality=85)
    print(f"wrote {out} ({sheet.width}x{sheet.height})")
