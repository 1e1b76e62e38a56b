"""Robust statistics."""

import numpy as np
import pytest

from core.stats import robust_spread


def test_robust_spread_is_the_noise_sigma_whatever_the_outliers():
    rng = np.random.default_rng(0)
    noise = rng.normal(100.0, 3.0, 20_000)
    noise[:400] = 4000.0  # hot pixels, bright objects (2 %)
    assert np.std(noise) > 500
    assert robust_spread(noise) == pytest.approx(3.0, rel=0.05)
    assert isinstance(robust_spread(noise), float)
    # about a given centre: the spread of the values around it
    assert robust_spread(np.array([1.0, 2.0, 3.0]), 0.0) == pytest.approx(1.4826 * 2.0)


def test_robust_spread_along_an_axis():
    rows = np.array([[0.0, 1.0, 2.0, 3.0, 4.0], [10.0, 10.0, 10.0, 10.0, 50.0]])
    spread = robust_spread(rows, axis=-1, keepdims=True)
    assert spread.shape == (2, 1)
    assert spread[:, 0] == pytest.approx([1.4826, 0.0])
