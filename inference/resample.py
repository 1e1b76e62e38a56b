"""Resampling for prediction at another scale: the photo is resized before
the network sees it, and the probabilities are resized back, band by band,
so the full-size result never has to exist at both scales at once.

Pixel centres are aligned (``src = (dst + 0.5) * n_src / n_dst - 0.5``) and
interpolation is bilinear; shrinking is preceded by a Gaussian blur against
aliasing (sigma ``(1/scale - 1) / 2``, as scikit-image does).
"""

from __future__ import annotations

import numpy as np


def _axis_map(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each destination index: lower source index, upper one, weight of the upper."""
    pos = (np.arange(n_dst, dtype=np.float64) + 0.5) * (n_src / n_dst) - 0.5
    pos = np.clip(pos, 0.0, n_src - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_src - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def _lerp_columns(rows: np.ndarray, cols: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    lo, hi, frac = cols
    shape = (1, -1) + (1,) * (rows.ndim - 2)
    frac = frac.reshape(shape)
    return rows[:, lo] * (1.0 - frac) + rows[:, hi] * frac


def scaled_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, int(round(shape[0] * scale))), max(1, int(round(shape[1] * scale)))


def resample_image(gray: np.ndarray, scale: float) -> np.ndarray:
    """A float32 2-D image resized by ``scale`` (bilinear, anti-aliased when
    shrinking)."""
    gray = np.asarray(gray, dtype=np.float32)
    height, width = gray.shape
    new_h, new_w = scaled_shape(gray.shape, scale)
    if (new_h, new_w) == (height, width):
        return gray
    if scale < 1.0:
        from scipy.ndimage import gaussian_filter

        gray = gaussian_filter(gray, sigma=((height / new_h - 1) / 2, (width / new_w - 1) / 2), mode="mirror")
    rows_lo, rows_hi, fy = _axis_map(height, new_h)
    cols = _axis_map(width, new_w)
    out = np.empty((new_h, new_w), np.float32)
    step = 256  # destination rows per block: bounds the temporaries
    for start in range(0, new_h, step):
        sel = slice(start, start + step)
        f = fy[sel, None]
        rows = gray[rows_lo[sel]] * (1.0 - f) + gray[rows_hi[sel]] * f
        out[sel] = _lerp_columns(rows, cols)
    return out


class RowResampler:
    """Resizes a (src_h, src_w, ...) array arriving in consecutive row bands
    to (dst_h, dst_w, ...), emitting destination rows as soon as the source
    rows they need have arrived."""

    def __init__(self, src_h: int, src_w: int, dst_h: int, dst_w: int) -> None:
        self.rows_lo, self.rows_hi, self.fy = _axis_map(src_h, dst_h)
        self.cols = _axis_map(src_w, dst_w)
        self.src_h, self.dst_h = src_h, dst_h
        self.next_row = 0  # next destination row to emit
        self.buffer: np.ndarray | None = None
        self.buffer_start = 0  # source row index of buffer[0]

    def push(self, y0: int, band: np.ndarray, *, last: bool = False) -> list[tuple[int, np.ndarray]]:
        """Add source rows ``y0 ..``; returns the ``(dst_y0, dst_band)`` ready."""
        if self.buffer is None:
            self.buffer, self.buffer_start = band, y0
        else:
            self.buffer = np.concatenate([self.buffer, band], axis=0)
        available = self.buffer_start + self.buffer.shape[0]
        end = self.next_row
        while end < self.dst_h and (last or self.rows_hi[end] < available):
            end += 1
        if end == self.next_row:
            return []
        sel = slice(self.next_row, end)
        f = self.fy[sel, None, None]
        lo = self.buffer[self.rows_lo[sel] - self.buffer_start]
        hi = self.buffer[self.rows_hi[sel] - self.buffer_start]
        out = _lerp_columns(lo * (1.0 - f) + hi * f, self.cols).astype(np.float32)
        start, self.next_row = self.next_row, end
        if end < self.dst_h:  # keep only the source rows still needed
            keep = self.rows_lo[end] - self.buffer_start
            self.buffer, self.buffer_start = self.buffer[keep:], self.rows_lo[end]
        else:
            self.buffer = None
        return [(start, out)]
