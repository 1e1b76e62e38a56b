"""Noise-free signal layers of a simulated CCD frame, in electrons.

Each function draws from a :class:`numpy.random.Generator` and returns the
expected charge of one kind of source; :mod:`synthetic.ccd` adds shot noise,
readout noise and the pedestal, and derives the exact labels from these
layers. Geometry convention: pixel ``(row, col)`` covers the square
``[row - 0.5, row + 0.5) x [col - 0.5, col + 0.5)``, so a charge centred on
a pixel's coordinates falls mostly into that pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

_SQRT2 = np.sqrt(2.0)
# Charge beyond 4 diffusion sigmas is below 1e-4 of a deposit: not worth rendering.
_SPREAD = 4.0


@dataclass
class Patch:
    """Charge of one source in a window of the frame: ``charge`` covers rows
    ``y0:y0+h`` and columns ``x0:x0+w``."""

    y0: int
    x0: int
    charge: np.ndarray

    @property
    def window(self) -> tuple[slice, slice]:
        h, w = self.charge.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)


def log_uniform(rng: np.random.Generator, lo: float, hi: float, size=None):
    """Values spread evenly in log scale between ``lo`` and ``hi``: source
    intensities span decades, and a plain uniform would make faint ones rare."""
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def diffusion_sigma(depth: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Lateral diffusion width (pixels) of charge freed at ``depth`` in [0, 1]
    (0 = next to the pixel gates, 1 = back of the sensor): the variance grows
    linearly with the drift time, hence with depth."""
    return np.sqrt(lo * lo + (hi * hi - lo * lo) * depth)


def render_points(ys, xs, charges, sigmas, shape: tuple[int, int], *, chunk: int = 24) -> Patch | None:
    """Pixel-integrated 2-D Gaussians of the given centres, charges and
    widths, summed into the smallest window of the frame that holds them.

    The Gaussian is integrated exactly over each pixel (erf differences), and
    being separable a set of points is one small matrix product. A long track
    is cut into runs of ``chunk`` points, each rendered in its own small
    window, so the cost grows with the track's length, not its bounding box.
    Returns ``None`` when nothing lands inside the frame.
    """
    ys, xs = np.asarray(ys, float), np.asarray(xs, float)
    charges, sigmas = np.asarray(charges, float), np.asarray(sigmas, float)
    box = _window(ys, xs, sigmas, shape)
    if box is None:
        return None
    y0, x0, y1, x1 = box
    if ys.size <= chunk:
        return Patch(y0, x0, _gaussians(ys, xs, charges, sigmas, box))
    canvas = np.zeros((y1 - y0, x1 - x0))
    for start in range(0, ys.size, chunk):
        part = slice(start, start + chunk)
        sub = _window(ys[part], xs[part], sigmas[part], shape)
        if sub is not None:
            canvas[sub[0] - y0:sub[2] - y0, sub[1] - x0:sub[3] - x0] += _gaussians(
                ys[part], xs[part], charges[part], sigmas[part], sub)
    return Patch(y0, x0, canvas)


def _window(ys, xs, sigmas, shape) -> tuple[int, int, int, int] | None:
    """Rows y0:y1 and columns x0:x1 of the frame that the points reach."""
    reach = _SPREAD * sigmas.max() + 1.0
    y0 = max(int(np.floor(ys.min() - reach)), 0)
    x0 = max(int(np.floor(xs.min() - reach)), 0)
    y1 = min(int(np.ceil(ys.max() + reach)) + 1, shape[0])
    x1 = min(int(np.ceil(xs.max() + reach)) + 1, shape[1])
    return (y0, x0, y1, x1) if y1 > y0 and x1 > x0 else None


def _gaussians(ys, xs, charges, sigmas, box) -> np.ndarray:
    y0, x0, y1, x1 = box
    scale = (_SQRT2 * sigmas)[:, None]
    edges_y = np.arange(y0, y1 + 1) - 0.5
    edges_x = np.arange(x0, x1 + 1) - 0.5
    gy = np.diff(erf((edges_y[None, :] - ys[:, None]) / scale), axis=1) * 0.5
    gx = np.diff(erf((edges_x[None, :] - xs[:, None]) / scale), axis=1) * 0.5
    return (gy * charges[:, None]).T @ gx


def glow_layer(rng: np.random.Generator, size: int, amplitude: float, length: float,
               side: str = "any") -> tuple[np.ndarray, str]:
    """Amplifier glow: a smooth excess decaying exponentially (decay length
    ``length`` pixels) from one edge or from one corner, where the output
    amplifier sits; from ``side`` when it names an edge. Returns the layer
    and where it comes from."""
    coords = np.arange(size, dtype=np.float32)
    if side != "any":
        d = coords if side in ("top", "left") else coords[::-1]
        return _along(amplitude * np.exp(-d / np.float32(length)), side, size), side
    if rng.random() < 0.5:
        corner = ("top", "bottom")[rng.integers(2)] + "-" + ("left", "right")[rng.integers(2)]
        dy = coords if corner.startswith("top") else coords[::-1]
        dx = coords if corner.endswith("left") else coords[::-1]
        distance = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
        return amplitude * np.exp(-distance / np.float32(length)), corner
    side = ("top", "bottom", "left", "right")[rng.integers(4)]
    d = coords if side in ("top", "left") else coords[::-1]
    return _along(amplitude * np.exp(-d / np.float32(length)), side, size), side


def glow_band(rng: np.random.Generator, size: int, amplitude: float, width: float,
              side: str = "any", edge: float = 0.5) -> tuple[np.ndarray, str]:
    """Amplifier glow as a band of constant level ``amplitude`` and
    ``width`` pixels along one edge (``side``, or a random edge), falling
    to nothing at its inner border as a logistic of scale ``edge`` pixels
    (0: a hard step)."""
    if side == "any":
        side = ("top", "bottom", "left", "right")[rng.integers(4)]
    coords = np.arange(size, dtype=np.float32)
    d = coords if side in ("top", "left") else coords[::-1]
    if edge <= 0:
        profile = np.where(d < np.float32(width), np.float32(amplitude), np.float32(0.0))
    else:
        profile = amplitude / (1.0 + np.exp(np.minimum((d - np.float32(width)) / np.float32(edge), 60.0)))
    return _along(profile.astype(np.float32), side, size), side


def _along(profile: np.ndarray, side: str, size: int) -> np.ndarray:
    """A square layer that varies across ``side`` as ``profile`` does."""
    layer = np.empty((size, size), np.float32)
    layer[...] = profile[:, None] if side in ("top", "bottom") else profile[None, :]
    return layer


def hot_pixels(rng: np.random.Generator, size: int, density: float, charge_range) -> tuple[np.ndarray, np.ndarray]:
    """Isolated hot pixels (lattice defects with their own dark current): flat
    indices and charges. One pixel each, no diffusion, anywhere."""
    n = rng.poisson(density * size * size)
    flat = rng.integers(0, size * size, n)
    return flat, log_uniform(rng, *charge_range, n)


def hot_lines(rng: np.random.Generator, size: int, settings) -> list[tuple[np.ndarray, np.ndarray]]:
    """Hot column and row segments (charge traps leaking into every pixel
    clocked past them): for each segment, the flat indices of its pixels and
    their charges. Segments lie wholly inside the frame, anywhere, and their
    charge varies a little along their length as real ones do."""
    n = rng.poisson(settings.hot_line_rate * size / 256.0)
    lines = []
    lo_frac, hi_frac = settings.hot_line_length_range
    for _ in range(n):
        length = int(np.clip(round(rng.uniform(lo_frac, hi_frac) * size), 3, size))
        start = int(rng.integers(0, size - length + 1))
        across = int(rng.integers(0, size))
        row = rng.random() < settings.hot_line_row_fraction
        if not row and settings.hot_line_to_edge > 0 and rng.random() < settings.hot_line_to_edge:
            # From the trap on to the readout row: every pixel clocked past it.
            start, length = (0, start + length) if settings.readout_row == "first" else (start, size - start)
        along = np.arange(start, start + length)
        if row:
            flat = across * size + along
        else:
            flat = along * size + across
        level = log_uniform(rng, *settings.hot_line_charge_range)
        lines.append((flat, level * rng.uniform(0.85, 1.15, length)))
    return lines


def point_deposit(rng: np.random.Generator, size: int, settings) -> Patch | None:
    """A diffusion-limited point deposit (X-ray, nuclear or low-energy
    electron recoil): a 2-D Gaussian whose width grows with the depth of the
    interaction."""
    sigma = diffusion_sigma(rng.random(), *settings.diffusion_sigma_range)
    y, x = rng.uniform(-0.5, size - 0.5, 2)
    q = log_uniform(rng, *settings.deposit_charge_range)
    return render_points([y], [x], [q], [sigma], (size, size))


def worm_track(rng: np.random.Generator, size: int, settings) -> Patch | None:
    """An electron track: a persistent random walk ("worm") that scatters
    more and deposits more charge per step towards its end (Bragg peak),
    all at about one depth."""
    steps = int(rng.integers(settings.worm_steps_range[0], settings.worm_steps_range[1] + 1))
    angle = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, 0.35, steps) * np.linspace(0.5, 2.0, steps))
    step = 0.7
    ys = rng.uniform(-0.5, size - 0.5) + np.cumsum(step * np.sin(angle))
    xs = rng.uniform(-0.5, size - 0.5) + np.cumsum(step * np.cos(angle))
    per_step = log_uniform(rng, *settings.worm_charge_per_step_range)
    charges = per_step * rng.gamma(4.0, 0.25, steps) * np.linspace(0.7, 1.6, steps)
    depth = np.clip(rng.random() + rng.normal(0, 0.05, steps), 0, 1)
    sigmas = diffusion_sigma(depth, *settings.diffusion_sigma_range)
    return render_points(ys, xs, charges, sigmas, (size, size))


def muon_track(rng: np.random.Generator, size: int, settings) -> Patch | None:
    """A straight minimum-ionising track crossing the whole thickness: its
    width grows from one end (front) to the other (back), and the charge
    per pixel fluctuates (Landau-like)."""
    length = max(rng.uniform(*settings.muon_length_range) * size, 3.0)
    angle = rng.uniform(0, 2 * np.pi)
    y, x = rng.uniform(-0.5, size - 0.5, 2)
    n = int(np.ceil(length / 0.5)) + 1
    t = np.linspace(0.0, 1.0, n)
    ys = y + t * length * np.sin(angle)
    xs = x + t * length * np.cos(angle)
    per_pixel = log_uniform(rng, *settings.muon_charge_per_pixel_range)
    charges = per_pixel * (length / (n - 1)) * (0.6 + rng.gamma(2.0, 0.2, n))
    sigmas = diffusion_sigma(t, *settings.diffusion_sigma_range)
    return render_points(ys, xs, charges, sigmas, (size, size))


CLUSTER_KINDS = (point_deposit, worm_track, muon_track)
CLUSTER_KIND_NAMES = ("point deposits", "worms", "muons")
