"""The overlay written beside each photo's results: the photo with each
object's outline in its class colour, objects cut by the photo's edge (left
out of the size distribution) in red, and object ids at their centres."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from core.gray import to_display_uint8
from segmentation.instances import touches_border

# Outline colours per class (class 1 first), and for objects cut by the edge,
# which are left out of the size distribution.
_CLASS_COLOURS = ((255, 220, 0), (0, 220, 255), (255, 80, 255), (120, 255, 80), (255, 150, 40))
_BORDER_COLOUR = (255, 60, 60)


def draw_overlay(
    photo: np.ndarray,
    labels: np.ndarray,
    *,
    classes: np.ndarray | None = None,
    draw_ids: bool = True,
    stretch: str = "percentile",
) -> np.ndarray:
    """The photo (8-bit RGB, ``stretch`` as in :func:`core.gray.to_display_uint8`)
    with each object's outline in its class colour, objects touching the
    edge outlined in red, and object ids written at their centres."""
    from PIL import Image, ImageDraw, ImageFont

    labels = np.asarray(labels)
    shown = to_display_uint8(np.asarray(photo), stretch=stretch)
    if shown.ndim == 2:
        shown = np.repeat(shown[..., None], 3, axis=-1)
    rgb = np.array(shown[..., :3], copy=True)  # never draw on the caller's photo
    n = int(labels.max(initial=0))
    if n == 0:
        return rgb
    # Inner outline: object pixels with a differently labelled 4-neighbour.
    padded = np.pad(labels, 1, mode="edge")
    outline = (labels > 0) & (
        (padded[:-2, 1:-1] != labels) | (padded[2:, 1:-1] != labels)
        | (padded[1:-1, :-2] != labels) | (padded[1:-1, 2:] != labels)
    )
    colour_of = np.zeros((n + 1, 3), np.uint8)
    object_class = np.ones(n + 1, np.int64) if classes is None else np.asarray(classes, np.int64)
    palette = np.asarray(_CLASS_COLOURS, np.uint8)
    colour_of[1:] = palette[(object_class[1:] - 1) % len(palette)]
    colour_of[touches_border(labels)] = _BORDER_COLOUR
    rgb[outline] = colour_of[labels[outline]]
    if not draw_ids:
        return rgb
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    size = int(np.clip(min(labels.shape) / 45, 11, 32))
    try:
        font = ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType
        font = ImageFont.load_default()
    ids = np.arange(1, n + 1)
    present = np.bincount(labels.ravel(), minlength=n + 1)[1:] > 0
    centres = ndi.center_of_mass(labels > 0, labels, ids[present])
    for object_id, (cy, cx) in zip(ids[present].tolist(), centres):
        draw.text((cx, cy), str(object_id), fill=tuple(int(v) for v in colour_of[object_id]),
                  font=font, anchor="mm", stroke_width=max(1, size // 10), stroke_fill=(0, 0, 0))
    return np.asarray(image)
