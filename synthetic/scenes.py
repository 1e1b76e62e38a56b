"""Rendered particle scenes with known objects.

Used for the bundled sample working directory (so every button works on
first launch, with no photo taken from anyone) and for tests that need
photos whose objects are known exactly.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def render_particle_scene(
    shape: tuple[int, int] = (384, 512),
    *,
    count: int = 25,
    radius: tuple[float, float] = (8.0, 20.0),
    polarity: str = "dark",
    contrast: float = 0.45,
    noise: float = 0.03,
    gradient: float = 0.1,
    touching: float = 0.0,
    elongation: float = 0.3,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Render a micrograph-like scene of particles.

    Parameters
    ----------
    shape : (H, W)
    count : int
        Particles attempted (fewer when they do not fit).
    radius : (min, max)
        Particle radius range in pixels.
    polarity : {"dark", "bright"}
        Particles darker (TEM-like) or brighter (SEM-like) than the background.
    contrast : float
        Particle-to-background step, in [0, 1] units of the image range.
    noise : float
        Gaussian noise sigma, same units.
    gradient : float
        Strength of a linear illumination gradient across the image.
    touching : float
        Fraction of particles placed against a previous one.
    elongation : float
        Largest axis ratio minus one (0 = discs).
    seed : int

    Returns
    -------
    image : (H, W) uint8
    labels : (H, W) int32, one label per particle, 0 background
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    labels = np.zeros((h, w), np.int32)
    signal = np.zeros((h, w), np.float32)
    placed: list[tuple[float, float, float]] = []
    n = 0
    for _ in range(count * 20):
        if n >= count:
            break
        r = float(rng.uniform(*radius))
        if placed and rng.random() < touching:
            cy0, cx0, r0 = placed[int(rng.integers(len(placed)))]
            angle = rng.uniform(0, 2 * np.pi)
            cy, cx = cy0 + np.sin(angle) * (r0 + r) * 0.85, cx0 + np.cos(angle) * (r0 + r) * 0.85
        else:
            cy, cx = rng.uniform(r + 2, h - r - 2), rng.uniform(r + 2, w - r - 2)
        if not (r + 2 <= cy <= h - r - 2 and r + 2 <= cx <= w - r - 2):
            continue
        ratio = 1.0 + rng.uniform(0, elongation)
        theta = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = -dx * np.sin(theta) + dy * np.cos(theta)
        rad = np.sqrt((u / (r * np.sqrt(ratio))) ** 2 + (v * np.sqrt(ratio) / r) ** 2)
        inside = rad <= 1.0
        overlap = labels[inside] > 0
        if overlap.any() and not (placed and overlap.mean() < 0.08):
            continue
        n += 1
        free = inside & (labels == 0)
        labels[free] = n
        # thicker in the middle, as a sphere seen in transmission
        depth = np.clip(1.0 - rad, 0, 1)
        profile = 0.75 + 0.25 * np.sqrt(depth)
        signal = np.where(free, profile, signal)
        placed.append((cy, cx, r))
    sign = -1.0 if polarity == "dark" else 1.0
    base = 0.7 if polarity == "dark" else 0.3
    gy, gx = rng.normal(size=2)
    norm = np.hypot(gy, gx) + 1e-6
    ramp = ((yy / h - 0.5) * gy + (xx / w - 0.5) * gx) / norm
    image = base + gradient * ramp
    edge_soft = ndi.gaussian_filter(signal, 0.8)
    image = image + sign * contrast * edge_soft
    image = image + ndi.gaussian_filter(rng.normal(0, noise * 2.0, (h, w)).astype(np.float32), 0.7)
    image = np.clip(image, 0, 1)
    return (image * 255 + 0.5).astype(np.uint8), labels


def draw_scale_bar(image: np.ndarray, *, corner: str = "bottom-right", value: int | None = None,
                   length_fraction: float = 0.2) -> tuple[int, int, int, int]:
    """Burn a scale bar with a short label into ``image`` (in place), as
    microscope software does. Returns the (r0, c0, r1, c1) box it covers."""
    h, w = image.shape[:2]
    value = value if value is not None else (255 if image.mean() < 128 else 0)
    bar_len = int(w * length_fraction)
    thick = max(3, h // 80)
    margin = max(6, h // 30)
    r1 = h - margin if "bottom" in corner else margin + thick + 12
    c1 = w - margin if "right" in corner else margin + bar_len
    r0, c0 = r1 - thick, c1 - bar_len
    image[r0:r1, c0:c1] = value
    # a label above the bar: three block "glyphs" with strokes
    glyph_h = max(7, thick * 3)
    top = r0 - glyph_h - 3
    for k in range(3):
        gc = c0 + k * (glyph_h // 2 + 4)
        image[top:top + glyph_h, gc:gc + 2] = value
        image[top:top + 2, gc:gc + glyph_h // 2] = value
        image[top + glyph_h - 2:top + glyph_h, gc:gc + glyph_h // 2] = value
    return (top, c0, r1, c1)


def draw_panel_letter(image: np.ndarray, *, value: int | None = None) -> tuple[int, int, int, int]:
    """Burn a panel letter like "(b)" into the top-left corner (in place)."""
    h, w = image.shape[:2]
    value = value if value is not None else (255 if image.mean() < 128 else 0)
    size = max(10, h // 18)
    r0, c0 = max(4, h // 60), max(4, w // 60)
    stroke = max(2, size // 6)
    # a "b": vertical stem and a closed bowl
    image[r0:r0 + size, c0:c0 + stroke] = value
    bowl_top = r0 + size // 2
    image[bowl_top:bowl_top + stroke, c0:c0 + size // 2 + stroke] = value
    image[r0 + size - stroke:r0 + size, c0:c0 + size // 2 + stroke] = value
    image[bowl_top:r0 + size, c0 + size // 2:c0 + size // 2 + stroke] = value
    return (r0, c0, r0 + size, c0 + size // 2 + stroke)
