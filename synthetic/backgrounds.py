"""Backgrounds for synthetic training images, made from the user's photos.

A background is the photo with its auto-segmented objects removed and the
holes filled from the surrounding background (normalised convolution at
growing scales, then noise matched to the photo's measured noise, so the
filled patches have the same grain as the rest), brought to the common
object scale. A share of generated backgrounds (smooth gradients at the
photos' background levels, with matched noise) adds variety.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass
class Background:
    image: np.ndarray        # float32 gray, [0, 1] as core.gray.to_gray_float gives it
    source: str              # photo file name, or "generated"
    noise: float             # noise sigma of the photo, same units
    level: float             # background gray level
    object_level: float      # gray level of the photo's objects
    polarity: str


MIN_FREE_SHARE = 0.1   # a photo with less background than this cannot give a background


def fill_objects(gray: np.ndarray, objects: np.ndarray, noise: float, rng: np.random.Generator,
                 *, no_texture: np.ndarray | None = None) -> np.ndarray | None:
    """Remove objects from a gray image and fill the holes from around them.

    The smooth part of the fill comes from normalised convolution at growing
    scales (small holes from close by, large ones from farther out); the fine
    texture is copied from object-free places of the same image, so that the
    filled patches have the photo's own grain.

    Parameters
    ----------
    gray : (H, W) float32
    objects : (H, W) bool
        Pixels to replace (objects, slightly grown by the caller).
    noise : float
        Noise sigma used where no texture can be copied.
    no_texture : (H, W) bool, optional
        Pixels never copied as texture (burned-in annotations).

    Returns None when less than ``MIN_FREE_SHARE`` of the image is free of
    objects: there is too little background to fill from.
    """
    gray = gray.astype(np.float32, copy=False)
    if not objects.any():
        return gray.copy()
    if 1.0 - objects.mean() < MIN_FREE_SHARE:
        return None
    smooth = _smooth_fill(gray, objects)
    residual = gray - ndi.gaussian_filter(np.where(objects, smooth, gray), 2.0)
    texture = np.zeros_like(gray)
    todo = objects.copy()
    h, w = gray.shape
    free = ~ndi.binary_dilation(objects if no_texture is None else objects | no_texture, iterations=2)
    for _ in range(12):
        if not todo.any():
            break
        dy, dx = int(rng.integers(-h // 2, h // 2 + 1)), int(rng.integers(-w // 2, w // 2 + 1))
        source_ok = np.roll(free, (dy, dx), axis=(0, 1))
        take = todo & source_ok
        texture[take] = np.roll(residual, (dy, dx), axis=(0, 1))[take]
        todo &= ~take
    if todo.any():
        texture[todo] = rng.normal(0.0, noise, int(todo.sum()))
    out = np.where(objects, smooth + texture, gray).astype(np.float32)
    edge = ndi.binary_dilation(objects, iterations=1) & ~ndi.binary_erosion(objects, iterations=1)
    soft = ndi.gaussian_filter(out, 0.7)
    out[edge] = soft[edge]
    return np.clip(out, 0.0, 1.0)


def _smooth_fill(gray: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """Normalised convolution from fine to coarse; coarse passes run on a
    reduced grid so that large holes in large photos stay cheap."""
    weight = (~objects).astype(np.float32)
    values = np.where(objects, 0.0, gray).astype(np.float32)
    filled = gray.copy()
    remaining = objects.copy()
    for sigma in (2.0, 4.0, 8.0):
        num = ndi.gaussian_filter(values, sigma)
        den = ndi.gaussian_filter(weight, sigma)
        ok = remaining & (den > 0.1)
        filled[ok] = num[ok] / den[ok]
        remaining &= ~ok
        if not remaining.any():
            return filled
    step = 8
    h, w = gray.shape
    gh, gw = -(-h // step), -(-w // step)
    pv = np.zeros((gh * step, gw * step), np.float32)
    pw = np.zeros_like(pv)
    pv[:h, :w], pw[:h, :w] = values, weight
    coarse_v = pv.reshape(gh, step, gw, step).sum(axis=(1, 3))
    coarse_w = pw.reshape(gh, step, gw, step).sum(axis=(1, 3))
    sigma = 1.0
    grid = np.zeros((gh, gw), np.float32)
    todo = np.ones((gh, gw), bool)
    while todo.any() and sigma < 2 * max(gh, gw):
        num = ndi.gaussian_filter(coarse_v, sigma)
        den = ndi.gaussian_filter(coarse_w, sigma)
        ok = todo & (den > 0.5)
        grid[ok] = num[ok] / den[ok]
        todo &= ~ok
        sigma *= 2
    if todo.any():
        grid[todo] = float(np.median(gray[~objects]))
    up = ndi.zoom(grid, step, order=1)[:h, :w]
    filled[remaining] = up[remaining]
    return filled


def generated_background(size: int, level: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth gradient around ``level`` with Gaussian noise of ``noise``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1) - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    slope = rng.uniform(0.0, 0.08)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy) * slope
    # a gentle large-scale unevenness as in real illumination
    blotch = ndi.gaussian_filter(rng.normal(0, 1, (8, 8)).astype(np.float32), 1.5)
    blotch = ndi.zoom(blotch, size / 8.0, order=1)[:size, :size] * rng.uniform(0.0, 0.03)
    grain = ndi.gaussian_filter(rng.normal(0.0, 1.0, (size, size)).astype(np.float32), 0.6)
    grain *= max(noise, 0.003) / max(float(grain.std()), 1e-6)
    return np.clip(level + ramp + blotch + grain, 0.0, 1.0).astype(np.float32)


def random_crop(background: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``size`` x ``size`` crop, randomly flipped and turned by 90 degrees."""
    h, w = background.shape
    r = int(rng.integers(0, h - size + 1))
    c = int(rng.integers(0, w - size + 1))
    crop = background[r:r + size, c:c + size]
    crop = np.rot90(crop, int(rng.integers(0, 4)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop, dtype=np.float32)
