"""Writing a prediction: ``<stem>_mask.png`` (uint8 class index) and
``<stem>_overlay.png`` (the photo with each class in its own colour)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.imageio import to_display_uint8, write_image

# One colour per class (index = class); background is never painted.
CLASS_COLOURS = np.array([
    (0, 0, 0), (255, 60, 60), (60, 220, 60), (60, 160, 255), (255, 200, 0), (255, 0, 255),
    (0, 255, 255), (255, 128, 0), (160, 80, 255), (128, 255, 128), (255, 128, 160), (128, 128, 0),
    (0, 128, 128), (128, 0, 64), (200, 200, 200), (64, 64, 255),
], dtype=np.uint8)


def class_colour(index: int) -> tuple[int, int, int]:
    """The RGB colour of a class (cycling past the palette's end)."""
    if index == 0:
        return (0, 0, 0)
    return tuple(int(v) for v in CLASS_COLOURS[1 + (index - 1) % (len(CLASS_COLOURS) - 1)])


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of a labelled region whose 4-neighbour differs (inner border)."""
    edge = np.zeros(mask.shape, bool)
    edge[1:] |= mask[1:] != mask[:-1]
    edge[:-1] |= mask[:-1] != mask[1:]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    return edge & (mask > 0)


def overlay_image(image: np.ndarray, mask: np.ndarray, *, alpha: float = 0.4) -> np.ndarray:
    """The photo (8-bit RGB, via :func:`core.imageio.to_display_uint8`) with
    every class tinted in its colour and outlined in full colour."""
    display = to_display_uint8(image)
    rgb = np.repeat(display[..., None], 3, axis=-1) if display.ndim == 2 else np.array(display[..., :3])
    weight = int(round(alpha * 256))
    edge = _outline(mask)
    for cls in np.unique(mask):
        if cls == 0:
            continue
        colour = np.array(class_colour(int(cls)), np.uint16)
        region = mask == cls
        rgb[region] = ((rgb[region].astype(np.uint16) * (256 - weight) + colour * weight) >> 8).astype(np.uint8)
        rgb[region & edge] = colour.astype(np.uint8)
    return rgb


def write_prediction(out_dir: str | Path, stem: str, image: np.ndarray, mask: np.ndarray,
                     *, overlay: bool = True) -> list[Path]:
    """Write ``<stem>_mask.png`` and (by default) ``<stem>_overlay.png`` into
    ``out_dir`` atomically; returns the paths written."""
    out_dir = Path(out_dir)
    paths = [write_image(out_dir / f"{stem}_mask.png", np.asarray(mask, np.uint8))]
    if overlay:
        paths.append(write_image(out_dir / f"{stem}_overlay.png", overlay_image(image, mask)))
    return paths
