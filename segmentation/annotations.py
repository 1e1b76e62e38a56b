"""Burned-in annotations: scale bars, their labels, panel letters, data bars.

Such marks are drawn, not photographed: they are flat, saturated, sharply
edged, thin (text strokes, bars) or perfectly axis-aligned rectangles (label
boxes, data bars), and they sit near the corners and edges of the photo.
Particles are none of these, so annotations are found by those traits alone,
with every size measured relative to the photo.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

_EIGHT = np.ones((3, 3), bool)

# Marks are drawn at the photo's extreme value, but a photo saved as JPEG
# smears them over a few levels, and the letters of a label break into
# pieces that each look like part of a stroke, not a glyph. Pixels
# within this share of the photo's value range (5 of 255 levels) of the
# extreme count as drawn. Chosen on the 60 EMPS development photos (the
# masks of a `pipeline` + one round run with the marks found each way
# taken out; 0.01 / 0.015 / 0.02 / 0.025 / 0.03 gave mean IoU +0.002 /
# +0.006 / +0.012 / +0.012 / +0.011 against one level): labels such as
# "Au NPs", "(d)" and the data bars under SEM photos are found whole; on
# the 306 check photos +0.002 (10 photos better, 4 worse by more than
# 0.01), with CONTENT_SHARE below.
SAVED_TOLERANCE = 0.02
# Where the photo itself reaches an extreme (the saturated phase of
# mineral grains, the bright rims of particles in SEM photos), its pixels
# near that extreme are content, and thin bright strokes of it pass for
# glyphs. Where more than CONTENT_SHARE of the photo's inside (away from
# the edges where marks are looked for) lies within SAVED_TOLERANCE of an
# extreme, only that extreme's own level counts as drawn. Without it, 11
# of the 27 grain photos had patches of grains taken for marks (2 with
# it, one of them had one before); on the EMPS development photos the
# share that keeps the whole gain above is 0.002 to 0.005 (0.001 loses
# "Au NPs", whose photo has dark particles as dark as its letters).
CONTENT_SHARE = 0.0025


def find_annotations(gray: np.ndarray, *, band: float = 0.2) -> np.ndarray:
    """Mask of burned-in annotations in a gray image with native values.

    Candidate marks are the pixels at the darkest or brightest value of the
    photo (annotations are drawn in pure black or white), within
    ``SAVED_TOLERANCE`` of it where the photo's inside does not itself
    reach that level (see ``CONTENT_SHARE``): a photo saved as JPEG smears
    its marks a few levels off black or white. A connected group
    of such pixels within ``band`` (a fraction of the shorter side) of an
    edge counts as an annotation when it is a glyph (small, thin strokes,
    in strong contrast to what surrounds it), a bar (a thin filled
    rectangle), a label box (a filled rectangle at the edge) or a data bar
    (a full-width strip at the top or bottom). Glyphs close to each other are
    grouped, and each group's bounding box is masked, letters' insides
    included.

    Returns
    -------
    mask : (H, W) bool array
        True on annotation pixels. Empty when the marks would cover more
        than 30 % of the photo (then they are image content, not marks).
    """
    gray = np.asarray(gray, dtype=np.float32)
    h, w = gray.shape
    side = min(h, w)
    finite = gray[np.isfinite(gray)] if gray.dtype.kind == "f" else gray
    if finite.size == 0:
        return np.zeros((h, w), bool)
    lo, hi = float(finite.min()), float(finite.max())
    span = hi - lo
    if span <= 0:
        return np.zeros((h, w), bool)
    step = max(1.0, span / 255 * 1.01)  # one 8-bit step, whatever the dtype
    out = np.zeros((h, w), bool)
    reach = int(round(band * side))
    inside = gray[reach:h - reach, reach:w - reach]  # where marks are not looked for
    for extreme in (hi, lo):
        tol = max(step, SAVED_TOLERANCE * span)
        if inside.size and np.mean(np.abs(inside - extreme) <= tol) > CONTENT_SHARE:
            tol = step  # the photo itself reaches this extreme: only drawn-flat pixels count
        marks = np.abs(gray - extreme) <= tol
        if marks.mean() > 0.5:
            continue
        labels, n = ndi.label(marks, structure=_EIGHT)
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel())
        for i, sl in enumerate(ndi.find_objects(labels), 1):
            if sizes[i] < 3:
                continue
            r0, r1, c0, c1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
            to_edge = min(r0, c0, h - r1, w - c1)
            if to_edge > reach:
                continue
            comp = labels[sl] == i
            if _is_mark(gray, comp, (r0, r1, c0, c1), extreme, span, to_edge, (h, w)):
                out[r0:r1, c0:c1] = True
    if not out.any():
        return out
    gap = max(2, int(round(0.01 * side)))
    groups, _ = ndi.label(ndi.binary_dilation(out, iterations=gap))
    boxes = np.zeros_like(out)
    for sl in ndi.find_objects(groups):
        boxes[sl] = True
    boxes = ndi.binary_dilation(boxes, iterations=1)  # anti-aliased halo
    if boxes.mean() > 0.3:
        return np.zeros_like(out)
    return boxes


def _is_mark(gray, comp, box, extreme, span, to_edge, shape) -> bool:
    h, w = shape
    side = min(h, w)
    r0, r1, c0, c1 = box
    bh, bw = r1 - r0, c1 - c0
    area = int(comp.sum())
    # contrast to the immediate surroundings: marks are drawn on something very different
    R0, R1, C0, C1 = max(0, r0 - 3), min(h, r1 + 3), max(0, c0 - 3), min(w, c1 + 3)
    big = np.zeros((R1 - R0, C1 - C0), bool)
    big[r0 - R0:r1 - R0, c0 - C0:c1 - C0] = comp
    ring = ndi.binary_dilation(big, iterations=3) & ~ndi.binary_dilation(big, iterations=1)
    if not ring.any():
        return False
    contrast = abs(float(np.median(gray[R0:R1, C0:C1][ring])) - extreme) / span
    extent = ndi.binary_fill_holes(comp).sum() / float(bh * bw)
    stroke = float(ndi.distance_transform_edt(np.pad(comp, 1)).max())
    glyph = max(bh, bw) <= 0.12 * side and stroke <= max(2.5, 0.25 * min(bh, bw)) and contrast > 0.4
    bar = extent >= 0.85 and max(bh, bw) >= 4 * min(bh, bw) and min(bh, bw) <= 0.05 * side and contrast > 0.3
    label_box = extent >= 0.95 and area <= 0.05 * h * w and to_edge <= 0.02 * side and contrast > 0.3
    data_bar = extent >= 0.9 and bw >= 0.8 * w and (r0 == 0 or r1 == h) and bh <= 0.2 * h
    return bool(glyph or bar or label_box or data_bar)


def is_annotation_like(component: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, int],
                       *, band: float = 0.2) -> bool:
    """Whether a detected object looks like a label box or scale bar.

    For marks drawn in a colour that is not the photo's extreme (a grey box
    with dark text): an axis-aligned filled rectangle near an edge that
    either holds text (holes) or is a thin bar.

    Parameters
    ----------
    component : bool array
        The object's mask inside its bounding box (before hole filling).
    box : (r0, c0, r1, c1)
        Bounding box in the photo.
    shape : (H, W)
        Photo size.
    """
    h, w = shape
    r0, c0, r1, c1 = box
    bh, bw = r1 - r0, c1 - c0
    side = min(h, w)
    if min(r0, c0, h - r1, w - c1) > band * side:
        return False
    filled = ndi.binary_fill_holes(component)
    extent = filled.sum() / float(bh * bw)
    if extent < 0.9:
        return False
    holes = filled.sum() - component.sum()
    thin_bar = max(bh, bw) >= 4 * min(bh, bw) and min(bh, bw) <= 0.05 * side
    return bool(thin_bar or holes > 0.02 * filled.sum())
