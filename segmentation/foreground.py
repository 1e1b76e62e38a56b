"""Foreground of a photo without any learning: which pixels are objects.

Steps, each scaled to the photo rather than tuned to one kind of image:
noise suppression (Gaussian, width relative to the photo size), an Otsu
threshold computed without the annotation pixels, polarity (objects darker
or brighter than the background) from which side of the threshold the
photo's border belongs to, a smooth background surface estimated from the
background pixels and subtracted (uneven illumination), a second threshold,
closing of nearly closed outlines (rim-lit particles) and hole filling.

When the polarity is detected, the photo is also asked whether its objects
lie on both sides of a smooth background (grey grains with dark rims and
mixed grains next to bright ones in resin, see :mod:`segmentation.departures`);
where it clearly says so, everything that departs from the background is
an object, and elsewhere the threshold's objects stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from segmentation.departures import find_departures


@dataclass
class Foreground:
    mask: np.ndarray          # bool, objects
    polarity: str             # "dark" or "bright"
    polarity_margin: float    # 0 (a coin toss) .. 0.5 (certain); 0.5 when given by the user
    smoothed: np.ndarray      # float32, illumination-corrected, smoothed gray image
    threshold: float
    both_sides: bool = False  # objects are everything departing from the background, on both sides


def detect_polarity(smoothed: np.ndarray, threshold: float, valid: np.ndarray) -> tuple[str, float]:
    """Objects are the side of the threshold the photo's border mostly is not.

    The border of a micrograph is mostly background: particles are seldom
    cut by all four edges. Returns the polarity and its margin (how far the
    border's bright fraction is from one half).
    """
    edges = [(smoothed[0], valid[0]), (smoothed[-1], valid[-1]),
             (smoothed[:, 0], valid[:, 0]), (smoothed[:, -1], valid[:, -1])]
    values = np.concatenate([v[m] for v, m in edges])
    if values.size == 0:
        return "dark", 0.0
    bright_fraction = float(np.mean(values > threshold))
    polarity = "dark" if bright_fraction > 0.5 else "bright"
    return polarity, abs(bright_fraction - 0.5)


def background_surface(image: np.ndarray, background: np.ndarray, cells: int = 16) -> np.ndarray | None:
    """A smooth surface through the background pixels' block medians.

    The photo is divided into about ``cells`` blocks along its longer side;
    blocks with enough background give a median, empty blocks are filled by
    normalised convolution from their neighbours, and the grid is smoothed
    and interpolated back to full size. Returns None when too little
    background is visible to say anything about illumination.
    """
    h, w = image.shape
    step = max(8, int(np.ceil(max(h, w) / cells)))
    gh, gw = int(np.ceil(h / step)), int(np.ceil(w / step))
    padded = np.full((gh * step, gw * step), np.nan, np.float32)
    padded[:h, :w] = np.where(background, image, np.nan)
    blocks = padded.reshape(gh, step, gw, step).transpose(0, 2, 1, 3).reshape(gh, gw, -1)
    counts = np.sum(~np.isnan(blocks), axis=-1)
    weight = (counts >= 0.2 * step * step).astype(np.float32)
    if weight.sum() < 4:
        return None
    with np.errstate(all="ignore"), _quiet():
        medians = np.nanmedian(np.where(weight[..., None] > 0, blocks, 0), axis=-1)
    medians = np.where(weight > 0, medians, 0).astype(np.float32)
    near = ndi.gaussian_filter(medians * weight, 1.0, mode="nearest")
    near_w = ndi.gaussian_filter(weight, 1.0, mode="nearest")
    far = ndi.gaussian_filter(medians * weight, 4.0, mode="nearest")
    far_w = ndi.gaussian_filter(weight, 4.0, mode="nearest")
    grid = np.where(near_w > 0.2, near / np.maximum(near_w, 1e-6), far / np.maximum(far_w, 1e-6))
    full = ndi.zoom(grid.astype(np.float32), step, order=1)
    return full[:h, :w]


class _quiet:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def find_foreground(gray: np.ndarray, valid: np.ndarray, *, polarity: str = "auto",
                    correct_illumination: bool = True) -> Foreground:
    """Objects of a float gray photo in [0, 1].

    Parameters
    ----------
    gray : (H, W) float32
        The photo as :func:`core.gray.to_gray_float` gives it.
    valid : (H, W) bool
        Pixels that may hold objects (annotations excluded).
    polarity : {"auto", "dark", "bright"}
        Objects darker or brighter than the background; "auto" detects it,
        and also takes everything that departs from a smooth background as
        objects in photos whose objects lie on both sides of it
        (:func:`segmentation.departures.find_departures`).
    correct_illumination : bool
        Subtract a smooth background surface before the final threshold.
    """
    h, w = gray.shape
    detect = polarity == "auto"
    sigma = max(1.0, min(h, w) / 512.0)
    smoothed = ndi.gaussian_filter(gray.astype(np.float32), sigma)
    values = smoothed[valid]
    if values.size < 16 or np.ptp(values) <= 1e-6:
        return Foreground(np.zeros((h, w), bool), "dark" if polarity == "auto" else polarity,
                          0.0, smoothed, 0.5)
    threshold = float(threshold_otsu(values))
    if detect:
        polarity, margin = detect_polarity(smoothed, threshold, valid)
    else:
        margin = 0.5
    mask = _side(smoothed, threshold, polarity) & valid
    if correct_illumination:
        grow = max(2, int(0.01 * max(h, w)))
        background = ~ndi.binary_dilation(mask, iterations=grow) & valid
        surface = background_surface(smoothed, background)
        if surface is not None:
            smoothed = smoothed - surface + np.float32(np.median(surface))
            threshold = float(threshold_otsu(smoothed[valid]))
            mask = _side(smoothed, threshold, polarity) & valid
    # Close nearly closed outlines (rim-lit or hollow particles) only to find
    # the holes they enclose; the closing itself is not kept, so neighbouring
    # particles are not glued together.
    radius = max(1, int(round(0.006 * max(h, w))))
    closed = ndi.binary_closing(mask, structure=_disk(radius), border_value=0)
    mask |= ndi.binary_fill_holes(closed) & ~closed & valid
    if detect:
        departures = find_departures(gray, smoothed, valid, mask)
        if departures.used:
            return Foreground(departures.mask, polarity, float(margin), smoothed, threshold, True)
    return Foreground(mask, polarity, float(margin), smoothed, threshold)


def _side(image: np.ndarray, threshold: float, polarity: str) -> np.ndarray:
    return image < threshold if polarity == "dark" else image > threshold


def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    return x * x + y * y <= radius * radius
