"""Frames of a detector unlike the simulator's, made by code of its own.

Another group's CCD as measured on their frames: pedestal 8800 ADU, readout
noise 19 ADU, 2 ADU per electron, a glow band of constant level (+1400 to
+1500 ADU) over the first 40-61 columns, hot column segments of about
+2200 ADU of which half run on to the first row, isolated hot pixels, and
clusters: Gaussian deposits and curly electron tracks. Nothing here calls
the application's simulator; the labels follow the same idea (a pixel
carries a class where that class's own signal reaches the noise sigma,
for objects that stand out as a whole).
"""

import numpy as np
from scipy.special import erf

PEDESTAL, READ_NOISE, GAIN = 8800.0, 19.0, 2.0


def _blob(shape, ys, xs, charges, sigma):
    """Pixel-integrated Gaussians (one sigma) summed into a frame-sized layer."""
    out = np.zeros(shape)
    for y, x, q in zip(ys, xs, charges):
        r = int(np.ceil(4 * sigma)) + 1
        y0, y1 = max(int(y) - r, 0), min(int(y) + r + 1, shape[0])
        x0, x1 = max(int(x) - r, 0), min(int(x) + r + 1, shape[1])
        if y1 <= y0 or x1 <= x0:
            continue
        gy = np.diff(erf((np.arange(y0, y1 + 1) - 0.5 - y) / (np.sqrt(2) * sigma))) / 2
        gx = np.diff(erf((np.arange(x0, x1 + 1) - 0.5 - x) / (np.sqrt(2) * sigma))) / 2
        out[y0:y1, x0:x1] += q * np.outer(gy, gx)
    return out


def other_frame(rng: np.random.Generator, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One frame (float ADU, whole numbers) and its class mask (0 background,
    1 glowing, 2 hot pixel, 3 cluster)."""
    shape = (size, size)
    glow = np.zeros(shape)
    width = int(rng.integers(40, 62)) * size // 256
    glow[:, :width] = rng.uniform(1400, 1500)
    hot = np.zeros(shape)
    for _ in range(rng.poisson(10 * size * size / 256**2)):
        hot[rng.integers(size), rng.integers(size)] += np.exp(rng.uniform(np.log(300), np.log(3000)))
    for _ in range(rng.poisson(2 * size / 256)):
        column, end = int(rng.integers(size)), int(rng.integers(size // 8, size))
        start = 0 if rng.random() < 0.5 else int(rng.integers(0, end - 3))
        hot[start:end, column] += 2200 * rng.uniform(0.9, 1.1, end - start)
    clusters = np.zeros(shape)
    seen = np.zeros(shape)
    for _ in range(rng.poisson(15 * size * size / 256**2)):
        if rng.random() < 0.75:  # a diffusion-limited deposit
            layer = _blob(shape, [rng.uniform(0, size)], [rng.uniform(0, size)],
                          [np.exp(rng.uniform(np.log(150), np.log(20000)))], rng.uniform(0.6, 1.8))
        else:  # an electron track: a curling random walk
            steps = int(rng.integers(8, 30))
            angle = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.4, steps))
            ys = rng.uniform(0, size) + np.cumsum(0.8 * np.sin(angle))
            xs = rng.uniform(0, size) + np.cumsum(0.8 * np.cos(angle))
            layer = _blob(shape, ys, xs, rng.uniform(100, 400, steps), rng.uniform(0.7, 1.2))
        clusters += layer
        if np.sqrt(np.sum((layer / READ_NOISE) ** 2)) >= 6:
            seen += layer
    expected = (glow + hot + clusters) / GAIN
    frame = PEDESTAL + GAIN * rng.poisson(expected) + rng.normal(0, READ_NOISE, shape)
    frame = np.clip(np.rint(frame), 0, 65535)
    sigma = np.sqrt(READ_NOISE**2 + GAIN * glow)
    mask = np.where(glow >= sigma, 1, 0).astype(np.uint8)
    hot_on = hot >= sigma
    mask[hot_on] = 2
    mask[(seen >= sigma) & (seen > np.where(hot_on, hot, 0))] = 3
    return frame, mask
