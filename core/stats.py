"""Robust statistics shared by the stages that judge a photo's background
and noise: a few bright objects or hot pixels must not move them."""

from __future__ import annotations

import numpy as np

MAD_TO_SIGMA = 1.4826  # a normal distribution's sigma per median absolute deviation


def robust_spread(values, centre=None, *, axis: int | None = None, keepdims: bool = False):
    """1.4826 x the median absolute deviation of ``values`` from ``centre``
    (their median when None): the sigma of normal noise, untouched by the
    outliers a mean and standard deviation would follow. Along ``axis``
    an array, else a float."""
    values = np.asarray(values)
    if centre is None:
        centre = np.median(values, axis=axis, keepdims=True)
    spread = MAD_TO_SIGMA * np.median(np.abs(values - centre), axis=axis, keepdims=keepdims)
    return float(spread) if axis is None else spread
