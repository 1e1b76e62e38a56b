"""How sure auto-segmentation is about each object it found.

Only confident objects enter the pool: a wrong object there teaches the
network a wrong lesson on every synthetic image it lands in. Each measure
is a ratio (no pixel counts or grey levels tuned to one kind of photo) and
is turned into a score in [0, 1] by a ramp; the confidence is the product,
so one clearly bad trait is enough to keep an object out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import regionprops


@dataclass
class ObjectScore:
    label: int
    area: int
    solidity: float        # area / convex hull area: particles are compact
    contrast: float        # (inside - surroundings) / photo's object contrast, signed by polarity
    isolation: float       # share of the surrounding ring that is background, not another object
    sharpness: float       # edge gradient / inside-outside step: a real edge, not a haze
    relative_size: float   # area / median object area of the photo
    touches_border: bool
    confidence: float
    second_bay: float = 0.0  # depth of its second-deepest bay / equivalent radius (two deep bays: a pair)


def ramp(value: float, low: float, high: float) -> float:
    """0 below ``low``, 1 above ``high``, linear between."""
    if high <= low:
        return float(value >= high)
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


# Two bays at least this deep (pixels, and a share of the equivalent radius)
# mark two objects touching, even where the neck is too wide for the
# splitter to cut. Chosen on the bundled sample (every touching pair caught,
# no single particle lost) and the EMPS development photos (14 of 904 single
# pooled particles lost).
BAY_PIXELS, BAY_SHARE = 2.0, 0.12


def second_bay_depth(image: np.ndarray, convex: np.ndarray) -> tuple[float, float]:
    """Depth in pixels of the second-deepest bay of an object (its convex
    hull minus itself, in parts) and the object's equivalent radius.

    A single compact particle has shallow digitisation slivers only (about
    one pixel); two touching particles leave a bay on each side of their
    contact.
    """
    hull = np.pad(convex, 1)
    own = np.pad(image, 1)
    radius = float(np.sqrt(own.sum() / np.pi))
    bays, n = ndi.label(hull & ~own)
    if n < 2:
        return 0.0, radius
    inward = ndi.distance_transform_edt(hull)  # distance from outside the hull
    depths = np.sort(ndi.maximum(inward, bays, index=np.arange(1, n + 1)))[::-1]
    return float(depths[1]), radius


def is_pair(bay: float, radius: float) -> bool:
    """Whether an object whose second-deepest bay is ``bay`` pixels deep
    (and whose equivalent radius is ``radius``) is two objects touching
    (see ``BAY_PIXELS``); both as :func:`second_bay_depth` gives them."""
    return bay >= BAY_PIXELS and bay >= BAY_SHARE * radius


def unscored_objects(labels: np.ndarray) -> list[ObjectScore]:
    """Every object of a label image with its area and whether it touches
    the border, and no confidence (0): for a reading of sizes only."""
    areas = np.bincount(labels.ravel())
    h, w = labels.shape
    edge = np.zeros(areas.shape, bool)
    edge[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    present = np.flatnonzero(areas[1:]) + 1
    median_area = float(np.median(areas[present])) if len(present) else 1.0
    return [ObjectScore(int(label), int(areas[label]), 0.0, 0.0, 0.0, 0.0, float(areas[label] / median_area),
                        bool(edge[label]), 0.0) for label in present]


def score_objects(labels: np.ndarray, smoothed: np.ndarray, polarity: str,
                  polarity_margin: float) -> list[ObjectScore]:
    """Score every object of a label image.

    Parameters
    ----------
    labels : (H, W) int array
        Objects after splitting.
    smoothed : (H, W) float array
        The smoothed, illumination-corrected gray image the objects came from.
    polarity : {"dark", "bright"}
    polarity_margin : float
        0 .. 0.5, how sure the polarity is (0.5 when the user set it).
    """
    h, w = labels.shape
    foreground = labels > 0
    if not foreground.any():
        return []
    sign = -1.0 if polarity == "dark" else 1.0
    global_contrast = abs(float(smoothed[foreground].mean()) - float(smoothed[~foreground].mean()))
    global_contrast = max(global_contrast, 1e-3)
    gy, gx = np.gradient(smoothed)
    gradient = np.hypot(gx, gy)
    props = regionprops(labels)
    median_area = float(np.median([p.area for p in props]))
    polarity_score = ramp(polarity_margin, 0.1, 0.3)
    scores = []
    for p in props:
        r0, c0, r1, c1 = p.bbox
        pad = max(3, int(0.15 * max(r1 - r0, c1 - c0)))
        R0, C0, R1, C1 = max(0, r0 - pad), max(0, c0 - pad), min(h, r1 + pad), min(w, c1 + pad)
        sub = labels[R0:R1, C0:C1]
        inside = sub == p.label
        ring_width = max(2, pad // 2)
        ring = ndi.binary_dilation(inside, iterations=ring_width) & ~ndi.binary_dilation(inside)
        ring_bg = ring & (sub == 0)
        isolation = float(ring_bg.sum()) / max(1, int(ring.sum()))
        values = smoothed[R0:R1, C0:C1]
        mean_in = float(values[inside].mean())
        mean_out = float(values[ring_bg].mean()) if ring_bg.any() else mean_in
        contrast = sign * (mean_in - mean_out) / global_contrast
        edge = inside & ~ndi.binary_erosion(inside)
        step = max(abs(mean_in - mean_out), 1e-3)
        sharpness = float(gradient[R0:R1, C0:C1][edge].mean()) / step if edge.any() else 0.0
        relative = p.area / median_area
        border = r0 == 0 or c0 == 0 or r1 == h or c1 == w
        bay, radius = second_bay_depth(p.image, p.image_convex) if not border else (0.0, 1.0)
        pair = is_pair(bay, radius)
        confidence = (
            ramp(p.solidity, 0.85, 0.95)
            * ramp(isolation, 0.9, 0.97)
            * ramp(contrast, 0.4, 0.8)
            * ramp(sharpness, 0.1, 0.2)
            * ramp(relative, 0.2, 0.4)
            * polarity_score
            * (0.0 if border else 1.0)
            * (0.0 if p.area > 0.25 * h * w else 1.0)
            * (0.0 if pair else 1.0)
        )
        scores.append(ObjectScore(int(p.label), int(p.area), float(p.solidity), float(contrast),
                                  isolation, sharpness, float(relative), bool(border), float(confidence),
                                  second_bay=bay / max(radius, 1e-6)))
    return scores
