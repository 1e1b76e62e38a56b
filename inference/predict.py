"""Segmenting photos of any size with a trained model.

The photo is normalised exactly as at training time (model.json), optionally
resampled by ``scale``, and cut into overlapping tiles whose sides are
multiples of ``2 ** depth`` (reflect padding where the photo is smaller).
Tile predictions are blended with weights that fall smoothly to almost zero
at the tile edges (a smooth ramp over the overlap), divided by the sum
of weights, so no seam shows and the pixels next to a tile edge, where a
network sees zero padding, hardly count.

Memory stays bounded for very large photos: tiles are predicted one row of
tiles at a time into an accumulator one tile high, and finished rows are
handed on at once (:func:`iter_probability_bands`). :func:`predict_mask`
keeps only the uint8 class mask (and, on request, the foreground
probability), so an 8000 x 8000 photo needs far less than its H x W x K
float probabilities would.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from core.model_folder import class_names, load_model, normalization, pad_multiple, tile_size
from inference.resample import RowResampler, resample_image
from training.normalize import normalize_image

DEFAULT_TILE = 512
DEFAULT_BATCH = 2  # tiles per network call: bounds the activations' memory (measured: 4 is no faster)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` with at
    least ``overlap`` pixels shared by neighbours; the last tile ends at
    ``length`` (or the single tile covers more, when ``length <= tile``)."""
    if length <= tile:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """1-D blending weights: over ``overlap`` pixels at each end a ramp
    (smootherstep of a squared sine) that stays near zero close to the tile
    edge, where the network saw padding instead of context, and near one
    towards the middle; 1 in between; never exactly zero."""
    ramp_len = max(1, min(overlap, tile // 2))
    ramp = np.sin(0.5 * np.pi * (np.arange(ramp_len) + 0.5) / ramp_len) ** 2
    ramp = ramp ** 3 * (ramp * (ramp * 6 - 15) + 10)
    ramp = np.maximum(ramp, 1e-6)
    window = np.ones(tile, np.float32)
    window[:ramp_len] = ramp
    window[tile - ramp_len:] = np.minimum(window[tile - ramp_len:], ramp[::-1])
    return window


def reflect_indices(start: int, count: int, length: int) -> np.ndarray:
    """Indices ``start .. start+count-1`` folded back into ``[0, length)`` by
    mirror reflection (edge pixel not repeated), for any overshoot."""
    idx = np.arange(start, start + count)
    if length == 1:
        return np.zeros(count, np.intp)
    period = 2 * (length - 1)
    idx = np.abs(idx) % period
    return np.where(idx >= length, period - idx, idx).astype(np.intp)


def _settings(meta: dict, tile: int | None, overlap: int | None) -> tuple[int, int, int]:
    multiple = pad_multiple(meta)
    tile = int(tile or tile_size(meta, DEFAULT_TILE))
    tile = max(multiple, _round_up(tile, multiple))
    overlap = tile // 4 if overlap is None else int(overlap)
    return tile, max(0, min(overlap, tile // 2)), multiple


def _run_model(model, batch: np.ndarray) -> np.ndarray:
    # The compiled predict function: measured twice as fast as an eager
    # model call on 512-pixel tiles, and lighter on memory.
    return np.asarray(model.predict_on_batch(batch), dtype=np.float32)


MIRROR_PIXELS = 1_000_000  # "auto" mirrors a photo of at most this many network pixels at its scale


def mirror_views(flips: bool | int | str, shape=None, scale: float = 1.0) -> int:
    """How many mirrored views ``flips`` asks for: True the three
    (left-right, top-bottom, both), False none, a number that many of them
    in that order, ``"auto"`` the three where the photo (``shape``) at
    ``scale`` is at most ``MIRROR_PIXELS`` network pixels, else none.

    Notes
    -----
    Averaging the mirrored views changes the answer most on photos the
    network sees small (a few large particles shrunk to one tile); on a
    photo enlarged to millions of network pixels it costs three passes and
    gains nothing measurable. The README (*Segment*) gives the figures.
    """
    if isinstance(flips, str):
        if flips != "auto":
            raise ValueError(f"mirrored views: True, False, 0-3 or 'auto', not {flips!r}")
        pixels = float(shape[0]) * float(shape[1]) * scale * scale if shape is not None else np.inf
        return 3 if pixels <= MIRROR_PIXELS else 0
    return 3 if flips is True else max(0, min(3, int(flips)))


def _run_flipped(model, batch: np.ndarray, *, views: int = 3, mirrors_only: bool = False) -> np.ndarray:
    """The mean of the predictions of the tiles as they are and mirrored
    (``views`` of left-right, top-bottom and both), each mirrored back
    (test-time augmentation; README, *Segment*, gives what it adds). Tile by
    tile, so memory stays bounded. ``mirrors_only``: the mean of the
    mirrored views alone (the tiles as they are were predicted before)."""
    n = len(batch)
    axes = [(2,), (1,), (1, 2)][:views]
    mirrored = [np.flip(batch, axis) for axis in axes]
    probs = _run_model(model, np.concatenate(mirrored if mirrors_only else [batch, *mirrored]))
    first = 0 if mirrors_only else 1
    total = np.zeros_like(probs[:n]) if mirrors_only else probs[:n].copy()
    for k, axis in enumerate(axes):
        total += np.flip(probs[(first + k) * n:(first + k + 1) * n], axis)
    return total / np.float32(len(axes) + first)


def iter_probability_bands(
    model, meta: dict, image: np.ndarray, *, tile: int | None = None, overlap: int | None = None,
    scale: float = 1.0, batch_size: int = DEFAULT_BATCH, progress=None, flips: bool | int | str = False,
    mirrors_only: bool = False, normalized: bool = False,
) -> Iterator[tuple[int, np.ndarray]]:
    """Class probabilities of ``image``, one horizontal band at a time.

    Yields ``(y0, band)`` with ``band`` float32 (rows, W, K) for rows
    ``y0 .. y0 + rows - 1`` of the original image, top to bottom, covering
    every row once. Parameters as :func:`predict_probabilities`;
    ``mirrors_only``: of the photo mirrored three ways only (see ``known``
    in :func:`predict_mask`). ``normalized``: ``image`` is already the
    network's input (:func:`training.normalize.normalize_image` of the
    whole photo), e.g. a part of it, which must be scaled as the whole is.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3) or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"expected a 2-D gray or colour image, got shape {image.shape}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    height, width = image.shape[:2]
    gray = np.array(image, np.float32) if normalized else normalize_image(image, normalization(meta))
    if scale != 1.0:
        gray = resample_image(gray, scale)
    tile, overlap, multiple = _settings(meta, tile, overlap)
    views = mirror_views(flips, (height, width), scale)
    batch_size = max(1, int(batch_size or DEFAULT_BATCH))
    h_s, w_s = gray.shape
    tile_y = min(tile, _round_up(h_s, multiple))
    tile_x = min(tile, _round_up(w_s, multiple))
    ys, xs = tile_starts(h_s, tile_y, overlap), tile_starts(w_s, tile_x, overlap)
    win_y, win_x = blend_window(tile_y, overlap), blend_window(tile_x, overlap)
    padded_w = max(w_s, tile_x)
    norm_y = np.zeros(max(h_s, tile_y), np.float32)
    norm_x = np.zeros(padded_w, np.float32)
    for y0 in ys:
        norm_y[y0:y0 + tile_y] += win_y
    for x0 in xs:
        norm_x[x0:x0 + tile_x] += win_x
    col_idx = [reflect_indices(x0, tile_x, w_s) for x0 in xs]
    weights = (win_y[:, None] * win_x[None, :])[..., None]
    num_classes = len(class_names(meta))
    acc = np.zeros((tile_y, padded_w, num_classes), np.float32)
    top = 0
    back = RowResampler(h_s, w_s, height, width) if scale != 1.0 else None

    def finished(rows_end: int):
        rows = min(rows_end, h_s) - top
        if rows <= 0:
            return None
        band = acc[:rows, :w_s] / (norm_y[top:top + rows, None, None] * norm_x[None, :w_s, None])
        return band

    for row, y0 in enumerate(ys):
        if progress is not None:
            progress.check_cancelled()
            progress.update(row, len(ys), f"tile row {row + 1}/{len(ys)}")
        band = finished(y0)
        if band is not None:
            yield from (back.push(top, band) if back else [(top, band)])
        shift = y0 - top
        if shift:
            acc[:tile_y - shift] = acc[shift:]
            acc[tile_y - shift:] = 0.0
            top = y0
        rows = gray[reflect_indices(y0, tile_y, h_s)]
        for i in range(0, len(xs), batch_size):
            chunk = range(i, min(i + batch_size, len(xs)))
            batch = np.stack([rows[:, col_idx[j]] for j in chunk])[..., None]
            if views or mirrors_only:
                probs = _run_flipped(model, batch, views=views or 3, mirrors_only=mirrors_only)
            else:
                probs = _run_model(model, batch)
            for j, p in zip(chunk, probs):
                acc[:, xs[j]:xs[j] + tile_x] += p * weights
    if progress is not None:
        progress.update(len(ys), len(ys), "tiles done")
    band = finished(top + tile_y)
    if band is not None:
        yield from (back.push(top, band, last=True) if back else [(top, band)])


def predict_probabilities(
    model, meta: dict, image: np.ndarray, *, tile: int | None = None, overlap: int | None = None,
    scale: float = 1.0, batch_size: int = DEFAULT_BATCH, progress=None, flips: bool | int | str = False,
) -> np.ndarray:
    """Per-pixel class probabilities of a photo of any size and type.

    Parameters
    ----------
    model : keras.Model
        From :func:`load_model`.
    meta : dict
        The model's model.json (normalisation, classes, depth).
    image : ndarray
        Gray (H, W) or colour (H, W, 3|4), uint8, uint16 or float.
    tile : int, optional
        Tile side (rounded up to a multiple of ``2 ** depth``); default the
        model's ``tile_size``.
    overlap : int, optional
        Pixels shared by neighbouring tiles (default ``tile // 4``: measured
        with a trained depth-4 network, 512-pixel tiles sharing 128 pixels
        give the class of a whole-image prediction on all but 2 pixels in a
        million, 99.9 % of probabilities within 0.01).
    scale : float
        Resample the photo by this factor before predicting (e.g. 0.5 to
        halve objects that are twice the size the model was trained on);
        the probabilities are resampled back to the photo's size.
    batch_size : int
        Tiles per network call.
    progress : core.progress.Progress, optional
        Receives ``update(row, rows)`` per row of tiles; when the user has
        cancelled, :class:`core.errors.StageCancelled` is raised between rows.
    flips : bool, int or "auto"
        Average each tile's prediction over its four mirror images (four
        times the work), or over the first ``flips`` mirrored views and the
        tile as it is; ``"auto"``: the four where the photo at ``scale`` is
        small (see :func:`mirror_views`).

    Returns
    -------
    ndarray
        float32 (H, W, K), summing to 1 over the last axis. This holds
        H x W x K floats; for very large photos use :func:`predict_mask`.
    """
    image = np.asarray(image)
    out = np.empty(image.shape[:2] + (len(class_names(meta)),), np.float32)
    for y0, band in iter_probability_bands(model, meta, image, tile=tile, overlap=overlap, scale=scale,
                                           batch_size=batch_size, progress=progress, flips=flips):
        out[y0:y0 + band.shape[0]] = band
    return out


def predict_mask(
    model, meta: dict, image: np.ndarray, *, tile: int | None = None, overlap: int | None = None,
    scale: float = 1.0, batch_size: int = DEFAULT_BATCH, return_foreground: bool = False, progress=None,
    flips: bool | int | str = False, threshold: float | None = None, known: np.ndarray | None = None,
    normalized: bool = False,
):
    """The class-index mask of a photo (uint8 H x W, 0 = background).

    Parameters as :func:`predict_probabilities`. With
    ``return_foreground=True`` returns ``(mask, foreground)`` where
    ``foreground`` is float32 (H, W), the probability of not being
    background. Only these arrays are held in full, never H x W x K.
    ``threshold`` (two-class models only): a pixel is an object where its
    object probability reaches it, instead of where it is the likelier class.
    ``known`` (two-class models only): the foreground of this photo
    predicted before at the same ``scale`` and ``tile`` without flips. It
    is not predicted again: with ``flips`` only the three mirrored views
    are, and averaged with it (the mean of the four views, as without it).
    A float32 ``known`` becomes the returned foreground (it is changed in
    place, so that a very large photo's probabilities are not held twice).
    """
    image = np.asarray(image)
    if known is not None:
        return _from_known(model, meta, image, known, tile=tile, overlap=overlap, scale=scale,
                           batch_size=batch_size, return_foreground=return_foreground, progress=progress,
                           flips=flips, threshold=threshold, normalized=normalized)
    mask = np.empty(image.shape[:2], np.uint8)
    foreground = np.empty(image.shape[:2], np.float32) if return_foreground else None
    binary = threshold is not None and len(class_names(meta)) == 2
    for y0, band in iter_probability_bands(model, meta, image, tile=tile, overlap=overlap, scale=scale,
                                           batch_size=batch_size, progress=progress, flips=flips,
                                           normalized=normalized):
        rows = slice(y0, y0 + band.shape[0])
        mask[rows] = band[..., 1] >= threshold if binary else np.argmax(band, axis=-1)
        if foreground is not None:
            foreground[rows] = 1.0 - band[..., 0]
    return (mask, foreground) if return_foreground else mask


def _from_known(model, meta: dict, image: np.ndarray, known: np.ndarray, *, return_foreground: bool,
                flips: bool | int | str, threshold: float | None, **bands):
    if len(class_names(meta)) != 2 or known.shape != image.shape[:2]:
        raise ValueError("a known foreground needs a two-class model and the photo's shape")
    foreground = np.asarray(known, np.float32)
    views = mirror_views(flips, image.shape, bands.get("scale", 1.0))
    if views:
        for y0, band in iter_probability_bands(model, meta, image, mirrors_only=True, flips=views, **bands):
            rows = foreground[y0:y0 + band.shape[0]]
            rows += np.float32(views) * (np.float32(1) - band[..., 0])
            rows /= np.float32(views + 1)
    # two classes: the object class is the likelier one where its probability passes 1/2
    mask = (foreground >= threshold if threshold is not None else foreground > 0.5).astype(np.uint8)
    return (mask, foreground) if return_foreground else mask


__all__ = ["load_model", "predict_probabilities", "predict_mask", "iter_probability_bands", "tile_starts",
           "blend_window", "reflect_indices"]
