"""Gray versions of any photo: for the algorithms, float32 in [0, 1] by
robust percentile scaling (so that a 12-bit camera in a 16-bit file is not
squashed into the bottom of the range); for display and overlays, 8 bits;
detector frames around their pedestal."""

from __future__ import annotations

import numpy as np

from core.stats import robust_spread


def to_gray(image: np.ndarray) -> np.ndarray:
    """Collapse colour channels to one (luminance for RGB, alpha ignored),
    keeping the value range; returns float32 for colour input, the same
    array for gray input."""
    if image.ndim == 2:
        return image
    rgb = image[..., :3].astype(np.float32)
    if image.shape[-1] < 3:
        return rgb[..., 0]
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def is_blank(image: np.ndarray) -> bool:
    """Whether a photo holds nothing to segment: one value everywhere (a
    blank frame, a lens cap) or no finite value at all (an all-NaN frame)."""
    gray = to_gray(image)
    if gray.dtype.kind == "f":
        finite = gray[np.isfinite(gray)]
        return finite.size == 0 or bool(finite.min() == finite.max())
    return bool(gray.min() == gray.max())


def percentile_range(
    gray: np.ndarray, low: float = 0.5, high: float = 99.5, *, sample: int = 1_000_000
) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of an image's finite values,
    from a regular subsample for speed on large photos."""
    flat = gray.reshape(-1)
    if flat.size > sample:
        flat = flat[:: flat.size // sample + 1]
    flat = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
    if flat.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(flat, [low, high])
    return float(lo), float(hi)


def to_gray_float(
    image: np.ndarray, *, low: float = 0.5, high: float = 99.5
) -> np.ndarray:
    """The float32 gray image in [0, 1] that the algorithms work on.

    Any dtype and channel count is accepted. Values are scaled so that the
    ``low`` and ``high`` percentiles map to 0 and 1 (then clipped), which
    works the same for an 8-bit JPEG, a 12-bit camera in 16 bits and a float
    detector frame. A constant image becomes all zeros.
    """
    gray = to_gray(image).astype(np.float32, copy=False)
    lo, hi = percentile_range(gray, low, high)
    if not hi > lo:
        lo, hi = float(np.nanmin(gray)), float(np.nanmax(gray))
    if not hi > lo:
        return np.zeros(gray.shape, np.float32)
    out = (gray - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    np.clip(out, 0.0, 1.0, out=out)
    if out.dtype.kind == "f":
        np.nan_to_num(out, copy=False)
    return out


def detector_display(image: np.ndarray) -> np.ndarray:
    """A detector frame for the eye (float32 in [0, 1]): an asinh stretch
    around the pedestal, as astronomers view frames. The pedestal (median)
    minus 3 noise sigmas is black, a 5-sigma cluster mid-gray, the 99.9th
    percentile (glow, hot columns, bright tracks) white; noise sigma from
    the median absolute deviation. A 0.5-99.5 percentile window instead
    would spend the whole gray scale on a glow band and hide every faint
    cluster in the noise's two or three gray levels."""
    gray = to_gray(image).astype(np.float32, copy=False)
    sample = gray.ravel()[:: max(1, gray.size // 1_000_000)]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return np.zeros(gray.shape, np.float32)
    pedestal = float(np.median(sample))
    sigma = robust_spread(sample, pedestal) or float(np.std(sample)) or 1.0
    low = pedestal - 3.0 * sigma
    top = max(float(np.percentile(sample, 99.9)), pedestal + 5.0 * sigma)
    soft = np.float32(3.0 * sigma)
    out = np.arcsinh(np.clip(gray - np.float32(low), 0.0, None) / soft) / np.float32(np.arcsinh((top - low) / soft))
    return np.nan_to_num(np.clip(out, 0.0, 1.0, out=out), copy=False)


def to_display_uint8(image: np.ndarray, *, stretch: str = "percentile") -> np.ndarray:
    """An 8-bit version of any image for display and overlays: 8-bit images
    unchanged, 16-bit and float images windowed by percentiles (never black),
    or with ``stretch="detector"`` by :func:`detector_display`."""
    if stretch == "detector" and image.dtype != np.uint8:
        return (detector_display(image) * 255.0 + 0.5).astype(np.uint8)
    if image.dtype == np.uint8:
        return image[..., :3] if image.ndim == 3 else image
    if image.ndim == 3:
        channels = [to_gray_float(image[..., c]) for c in range(min(3, image.shape[-1]))]
        out = np.stack(channels, axis=-1)
    else:
        out = to_gray_float(image)
    return (out * 255.0 + 0.5).astype(np.uint8)
