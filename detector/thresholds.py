"""Threshold labelling of real CCD frames, without a trained model.

Pixel values alone cannot separate a faint cluster from noise, so the frame
is first put in units of its own noise and each class is then recognised by
its geometry as well as its level:

* pedestal: median of the frame (or of a region given by the user, such as
  overscan rows); noise sigma: MAD of the pedestal-subtracted values;
* glowing: a smooth excess (block medians, immune to compact sources) of at
  least ``glow_snr`` sigma, in a connected region touching a frame edge;
* hot pixels: 1-pixel-wide column or row segments (their mean along the
  line stands out while the neighbouring columns or rows do not), and
  single bright pixels whose neighbours carry almost none of their charge;
* clusters: compact connected excesses above the local background found by
  hysteresis (seeds at ``k_high`` sigma grown to ``k_low`` sigma), where a
  pixel also counts when a Gaussian matched filter around it passes the
  threshold, so faint spread-out deposits are found too.

It is a baseline and a bootstrap for frames with no labels; a model trained
on simulated frames (:mod:`synthetic.ccd`) does better on faint clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from core.errors import UserInputError
from core.model_folder import DETECTOR_CLASSES
from core.stats import robust_spread

BACKGROUND, GLOWING, HOT_PIXEL, CLUSTER = 0, 1, 2, 3
CLASS_NAMES = DETECTOR_CLASSES
_CLIPPED_STD = 0.9866  # std of a unit Gaussian cut at +-3 sigma
_EIGHT = np.ones((3, 3), bool)


@dataclass
class LabelInfo:
    """What :func:`label_frame` measured and found."""

    pedestal: float
    sigma: float
    hot_pixels: int
    hot_line_pixels: int
    clusters: int
    glow_fraction: float


def _tiles(image: np.ndarray, block: int) -> np.ndarray:
    """The ``block`` x ``block`` tiles of an image as an array (rows, cols,
    block**2), the edges padded by reflection."""
    h, w = image.shape
    bh, bw = -(-h // block), -(-w // block)
    padded = np.pad(image, ((0, bh * block - h), (0, bw * block - w)), mode="reflect")
    return padded.reshape(bh, block, bw, block).transpose(0, 2, 1, 3).reshape(bh, bw, -1)


def block_medians(image: np.ndarray, block: int) -> np.ndarray:
    """Median of each ``block`` x ``block`` tile."""
    return np.median(_tiles(image, block), axis=-1)


def _upsample(coarse: np.ndarray, block: int, shape: tuple[int, int]) -> np.ndarray:
    return ndi.zoom(coarse, block, order=1, mode="nearest", grid_mode=True)[: shape[0], : shape[1]]


def robust_level(frame: np.ndarray, region=None, *, block: int = 8) -> tuple[float, float]:
    """Pedestal and noise sigma of a frame.

    With ``region`` (e.g. overscan rows): the median and MAD x 1.4826 of
    ``frame[region]``. Without: the same statistics over the tiles whose
    median is not in excess, found by clipping tile medians iteratively, so
    that neither sources nor a glow covering a third of the frame pull the
    pedestal up. Both are then refined as the mean and standard deviation
    of the values within 3 sigma of the pedestal.
    """
    frame = np.asarray(frame, np.float64)
    values = frame if region is None else frame[region]
    values = values[np.isfinite(values)]
    if values.size < 16:
        raise UserInputError("The frame (or pedestal region) has fewer than 16 usable pixels.")
    pedestal = float(np.median(values))
    sigma = robust_spread(values, pedestal)
    if region is None and min(frame.shape) >= 2 * block:
        filled = np.where(np.isfinite(frame), frame, pedestal)
        tiles = block_medians(filled, block)
        tile_noise = 1.2533 * sigma / block  # sigma of a median of block**2 values
        for _ in range(3):
            quiet = tiles <= pedestal + 3 * tile_noise  # "<=": a flat frame has no noise at all
            pedestal = float(np.median(tiles[quiet]))
        keep = np.repeat(np.repeat(quiet, block, 0), block, 1)[: frame.shape[0], : frame.shape[1]]
        values = filled[keep]
        sigma = robust_spread(values, pedestal)
    # Whole-ADU frames make the median and MAD jump in steps of one ADU (a
    # 25 % error at 2 ADU of noise): refine both with 3-sigma-clipped moments.
    for _ in range(3):
        if not sigma > 0:
            break
        core = values[np.abs(values - pedestal) < 3 * sigma]
        if core.size < 16:
            break
        pedestal = float(core.mean())
        sigma = float(core.std()) / _CLIPPED_STD
    if not sigma > 0:  # a constant frame: any scale will do
        sigma = float(np.std(values)) or 1.0
    return pedestal, sigma


def smooth_background(z: np.ndarray, block: int) -> np.ndarray:
    """Slowly varying level (in sigma) from tile medians, interpolated back
    to full size: medians ignore clusters and hot pixels inside a tile."""
    return _upsample(block_medians(z, block), block, z.shape)


def local_noise(residual: np.ndarray, block: int) -> np.ndarray:
    """Noise sigma around each pixel relative to the frame's (never below 1):
    the shot noise of a glow raises it where the glow is bright. Each tile's
    3-sigma-clipped spread, median-filtered over neighbouring tiles, so that
    sources inside a tile barely count."""
    tiles = _tiles(residual, block)
    deviation = tiles - np.median(tiles, axis=-1, keepdims=True)
    sigma = np.maximum(robust_spread(deviation, 0.0, axis=-1, keepdims=True), 1.0)
    inside = np.abs(deviation) < 3 * sigma
    spread = np.sqrt((deviation**2 * inside).sum(-1) / np.maximum(inside.sum(-1), 1)) / _CLIPPED_STD
    # A cluster raises one tile's spread; a glow raises a whole neighbourhood's.
    spread = ndi.median_filter(spread, size=3, mode="nearest")
    return np.maximum(_upsample(spread, block, residual.shape), 1.0)


def _thin_lines(residual: np.ndarray, axis: int, *, window: int, snr: float, min_length: int) -> np.ndarray:
    """Pixels of 1-pixel-wide segments along ``axis`` (0: columns, 1: rows)."""
    mean = ndi.uniform_filter1d(residual, window, axis=axis, mode="nearest")
    across = 1 - axis
    before = np.roll(mean, 1, axis=across)
    after = np.roll(mean, -1, axis=across)
    threshold = snr / np.sqrt(window)
    candidate = (mean >= threshold) & (np.maximum(before, after) < 0.5 * mean)
    # Keep runs longer than a point source smeared by the window, then trim
    # the half window that the running mean adds at each end.
    long = np.ones((min_length + window - 1, 1) if axis == 0 else (1, min_length + window - 1), bool)
    trim = np.ones((window, 1) if axis == 0 else (1, window), bool)
    kept = ndi.binary_opening(candidate, structure=long)
    return ndi.binary_erosion(kept, structure=trim, border_value=1) & kept


def label_frame(frame: np.ndarray, *, k_low: float = 2.0, k_high: float = 4.0, glow_snr: float = 1.0, glow_block: int = 8, line_window: int = 5, line_snr: float = 4.0,
                line_min_length: int = 6, hot_peak_fraction: float = 0.8,
                smooth_sigma: float = 1.0, k_grow: float = 4, pedestal_region=None) -> tuple[np.ndarray, LabelInfo]:
    """Label a CCD frame into background, glowing, hot pixel and cluster.

    Parameters
    ----------
    frame : ndarray, shape (H, W)
        Raw or pedestal-subtracted frame, any numeric dtype.
    k_low, k_high : float
        Hysteresis thresholds in noise sigmas for compact excesses.
    glow_snr : float
        Smooth excess (sigmas) above which an edge-connected region is glowing.
    glow_block : int
        Block side in pixels for the smooth background estimate.
    line_window, line_snr, line_min_length : int, float, int
        Running-mean length along a line, the significance (sigmas of that
        mean times sqrt(window)) a line pixel needs, and the shortest line.
    hot_peak_fraction : float
        A compact excess holding at least this fraction of its charge in its
        brightest pixel is a hot pixel, not a cluster (diffusion always
        spreads a real deposit over neighbours).
    pedestal_region : tuple of slices, optional
        Where to measure pedestal and noise (e.g. overscan rows); default the
        whole frame.

    Returns
    -------
    mask : ndarray of uint8
        Class index per pixel (0 background, 1 glowing, 2 hot pixel, 3 cluster).
    info : LabelInfo
    """
    frame = np.asarray(frame)
    if frame.ndim != 2 or min(frame.shape) < 8:
        raise UserInputError(f"A CCD frame must be a 2-D image of at least 8 x 8 pixels, got shape {frame.shape}.")
    pedestal, sigma = robust_level(frame, pedestal_region, block=max(2, int(glow_block)))
    z = (np.nan_to_num(frame.astype(np.float32), nan=pedestal) - np.float32(pedestal)) / np.float32(sigma)

    background = smooth_background(z, max(2, int(glow_block)))
    excess, n_regions = ndi.label(background >= glow_snr)
    touching = np.unique(np.concatenate([excess[0], excess[-1], excess[:, 0], excess[:, -1]]))
    glow = np.isin(excess, touching[touching > 0]) if n_regions else np.zeros(z.shape, bool)

    residual = (z - background) / local_noise(z - background, 2 * max(2, int(glow_block)))
    lines = (_thin_lines(residual, 0, window=line_window, snr=line_snr, min_length=line_min_length)
             | _thin_lines(residual, 1, window=line_window, snr=line_snr, min_length=line_min_length))

    clean = np.where(lines, np.float32(0), residual)
    # A Gaussian matched to the narrowest deposits raises the significance of
    # faint, spread-out clusters; it is in units of its own noise sigma.
    matched = ndi.gaussian_filter(clean, smooth_sigma) * np.float32(2 * np.sqrt(np.pi) * smooth_sigma)
    seeds = (clean >= k_high) | (matched >= k_high)
    grown = (clean >= k_low) | (matched >= k_grow)
    compact = ndi.binary_propagation(seeds, structure=_EIGHT, mask=grown | seeds)
    labels, n = ndi.label(compact, structure=_EIGHT)
    hot_single = np.zeros(z.shape, bool)
    clusters = np.zeros(z.shape, bool)
    if n:
        index = np.arange(1, n + 1)
        peak = ndi.maximum(residual, labels, index)
        total = ndi.sum(np.clip(residual, 0, None), labels, index)
        is_hot = peak >= hot_peak_fraction * total
        component_hot = np.concatenate([[False], is_hot])[labels]
        # Only the brightest pixel of a hot component is the defect; the
        # rest is noise that happened to pass k_low next to it.
        hot_single = component_hot & (residual >= np.concatenate([[np.inf], peak])[labels])
        clusters = compact & ~component_hot

    mask = np.where(glow, np.uint8(GLOWING), np.uint8(BACKGROUND))
    mask[clusters] = CLUSTER
    mask[lines | hot_single] = HOT_PIXEL
    info = LabelInfo(pedestal, sigma, int(hot_single.sum()), int(lines.sum()),
                     int(n - (is_hot.sum() if n else 0)), float(glow.mean()))
    return mask, info


def class_scores(truth: np.ndarray, pred: np.ndarray, n_classes: int = 4) -> dict[str, dict[str, float]]:
    """Pixel precision, recall and F1 per class of ``pred`` against ``truth``
    (arrays of class indices of the same shape, or stacks of them)."""
    truth = np.asarray(truth).reshape(-1).astype(np.int64)
    pred = np.asarray(pred).reshape(-1).astype(np.int64)
    confusion = np.bincount(truth * n_classes + pred, minlength=n_classes**2).reshape(n_classes, n_classes)
    scores = {}
    for c in range(n_classes):
        tp = confusion[c, c]
        fp = confusion[:, c].sum() - tp
        fn = confusion[c].sum() - tp
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
        name = CLASS_NAMES[c] if c < len(CLASS_NAMES) else str(c)
        scores[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1)}
    return scores
