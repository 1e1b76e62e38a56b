"""Input normalisation shared by training and prediction.

The same function with the same parameters (stored in ``model.json`` under
``"normalization"``) turns a photo into the network's input at training and
at prediction time, so a model never sees a differently scaled image.

Two modes:

``"percentile"`` (photos: 8-bit, 16-bit, RGB)
    Gray image, then the ``low`` and ``high`` percentiles of each image map
    to 0 and 1, clipped (like :func:`core.gray.to_gray_float`), so a
    12-bit camera in a 16-bit file and a JPEG look alike.

``"detector"`` (float detector frames: mostly noise around a pedestal)
    Each frame's median (the pedestal) is subtracted and the result divided
    by its robust noise sigma (1.4826 x median absolute deviation), then
    compressed with ``arcsinh(z / softening)``. Percentile clipping would
    saturate every cluster and hot pixel to the same 1.0 and lose faint
    clusters in a stretched noise floor; in sigma units a 3-sigma cluster
    stays visible and a 10 000-sigma hot pixel stays finite and distinct.

Numpy only (no TensorFlow), memory-conscious for very large photos.
"""

from __future__ import annotations

import numpy as np

from core.gray import percentile_range
from core.model_folder import NORMALIZATION_MODES
from core.stats import robust_spread

MODES = NORMALIZATION_MODES
DEFAULT_PERCENTILE = {"mode": "percentile", "low": 0.5, "high": 99.5}
DEFAULT_DETECTOR = {"mode": "detector", "softening": 3.0}

# Rows converted at a time from colour to gray, so an 8000 x 8000 RGB photo
# never exists as a float32 colour array (768 MB).
_BAND_ROWS = 512


def default_spec(mode: str) -> dict:
    """The normalisation parameters stored in model.json for ``mode``."""
    if mode == "percentile":
        return dict(DEFAULT_PERCENTILE)
    if mode == "detector":
        return dict(DEFAULT_DETECTOR)
    raise ValueError(f"unknown normalisation mode '{mode}' (choose from {', '.join(MODES)})")


def mode_for_dtype(dtype) -> str:
    """"detector" for float frames, "percentile" for integer photos."""
    return "detector" if np.dtype(dtype).kind == "f" else "percentile"


def gray_float32(image: np.ndarray) -> np.ndarray:
    """A float32 gray copy of any image (luminance for colour, alpha ignored),
    converted in row bands to bound memory."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.float32, copy=True)
    if image.ndim != 3:
        raise ValueError(f"expected a 2-D gray or 3-D colour image, got shape {image.shape}")
    out = np.empty(image.shape[:2], np.float32)
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    for y0 in range(0, image.shape[0], _BAND_ROWS):
        band = image[y0:y0 + _BAND_ROWS]
        if band.shape[-1] >= 3:
            out[y0:y0 + _BAND_ROWS] = band[..., :3].astype(np.float32) @ weights
        else:
            out[y0:y0 + _BAND_ROWS] = band[..., 0]
    return out


def _subsample(gray: np.ndarray, sample: int = 1_000_000) -> np.ndarray:
    flat = gray.reshape(-1)
    if flat.size > sample:
        flat = flat[:: flat.size // sample + 1]
    return flat[np.isfinite(flat)]


def normalize_image(image: np.ndarray, spec: dict | None = None) -> np.ndarray:
    """The network input (float32, H x W) for any image.

    Parameters
    ----------
    image : ndarray
        Gray (H, W) or colour (H, W, 3|4) image of any dtype.
    spec : dict, optional
        Normalisation parameters as stored in model.json; by default the
        mode is chosen from the dtype (:func:`mode_for_dtype`).

    Returns
    -------
    ndarray
        float32 (H, W); NaN and infinite pixels become 0.
    """
    if spec is None:
        spec = default_spec(mode_for_dtype(np.asarray(image).dtype))
    mode = spec.get("mode")
    gray = gray_float32(image)
    finite = _subsample(gray)
    if mode == "percentile":
        lo, hi = percentile_range(gray, float(spec.get("low", 0.5)), float(spec.get("high", 99.5)))
        if not hi > lo and finite.size:
            lo, hi = float(finite.min()), float(finite.max())
        if not hi > lo:
            gray[...] = 0.0
            return gray
        gray -= np.float32(lo)
        gray *= np.float32(1.0 / (hi - lo))
        np.clip(gray, 0.0, 1.0, out=gray)
    elif mode == "detector":
        if finite.size == 0:
            gray[...] = 0.0
            return gray
        median = float(np.median(finite))
        sigma = robust_spread(finite, median)
        if not sigma > 0:
            sigma = float(finite.std()) or 1.0
        softening = float(spec.get("softening", 3.0))
        gray -= np.float32(median)
        gray *= np.float32(1.0 / (sigma * softening))
        np.arcsinh(gray, out=gray)
    else:
        raise ValueError(f"unknown normalisation mode '{mode}' (choose from {', '.join(MODES)})")
    np.nan_to_num(gray, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return gray
