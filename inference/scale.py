"""The scale a photo is predicted at: its objects brought to the size the
model works best at.

A model trained on synthetic images knows the median object diameter it saw
(``object_diameter`` in model.json). A first look of the model at the whole
photo reduced to ``FIRST_LOOK`` pixels measures the photo's objects; the
scale that brings them to ``SIZE_MARGIN`` times the training size is then
checked against its neighbours (:func:`surest_scale`).

Notes
-----
The network loses objects smaller than it has seen more readily than it
mis-draws larger ones, hence ``SIZE_MARGIN`` above 1. A first look can be
off by a factor of two (large particles seen as clusters of small ones, or
the reverse); at a wrong scale the network hesitates inside the objects, at
the right one it does not, so the scale where it is surest wins. Certainty
creeps up with the scale by itself (outlines, a band of doubt a few network
pixels wide, are thinner in the photo's pixels the more it is enlarged),
so a step is taken only where the model is ``CLEARLY_SURER``. The README
(*Segment*) gives the figures each value was chosen on.
"""

from __future__ import annotations

import numpy as np

from core.model_folder import class_names, object_diameter
from inference.marks import without_marks

SIZE_MARGIN = 2.0  # objects at this many times the model's training size
FIRST_LOOK = 448  # longer side of the first look: sees the objects of most photos, cheap to predict
SCALE_STEP = float(np.sqrt(2.0))  # the neighbours checked either side of a scale
CLEARLY_SURER = 0.02  # a neighbour must be this much surer (object certainty) to be taken
CHECK_SIDE = 384  # network pixels of the part of the photo each candidate scale is judged on (0: all of it)


def estimate_scale(image: np.ndarray, meta: dict, *, reading=None) -> float:
    """A first resampling factor from classical auto-segmentation's object
    size (1.0 when the model records no object size or nothing is found).
    ``reading``: a function giving auto-segmentation's objects of ``image``
    (:func:`segmentation.autoseg.find_objects`), where they may be known already."""
    target = object_diameter(meta) * SIZE_MARGIN
    if target <= 0:
        return 1.0
    from segmentation.autoseg import find_objects

    found = reading() if reading is not None else find_objects(image, scored=False)
    diameter = found.median_diameter()
    return clip_scale(target / diameter, image.shape) if diameter > 0 else 1.0


def clip_scale(scale: float, shape) -> float:
    """``scale`` kept within what a photo of this shape is predicted at: at
    most 4 (and 8000 pixels), at least 1/8 (and 32 pixels)."""
    largest = max(shape[:2])
    upper = min(4.0, 8000.0 / largest)  # never enlarge a photo beyond 8000 pixels
    lower = max(1.0 / 8.0, 32.0 / largest)
    return float(np.clip(scale, lower, max(upper, lower)))


def smallest_scale(shape) -> float:
    """The smallest resampling factor a photo of this shape is predicted
    at (1/8, and never below 32 pixels on its longer side)."""
    return clip_scale(0.0, shape)


def median_diameter(mask: np.ndarray) -> float:
    """Equivalent diameter of the object that the median object pixel
    belongs to (the area-weighted median): a crowd of specks, which a model
    can see in a photo's texture, does not drag it down as it does the
    plain median of the objects."""
    from segmentation.instances import split_touching

    labels = split_touching(mask > 0)
    if labels.max() == 0:
        return 0.0
    areas = np.bincount(labels.ravel())[1:]
    areas = np.sort(areas[areas > 0])
    cumulative = np.cumsum(areas)
    median_pixel_area = areas[np.searchsorted(cumulative, cumulative[-1] / 2)]
    return float(np.sqrt(4.0 * median_pixel_area / np.pi))


def object_certainty(mask: np.ndarray, foreground: np.ndarray) -> float:
    """How sure the model is of the objects it drew: the mean of
    ``|2p - 1|`` over the object pixels (0 when there are none).

    It leans a little towards larger scales (see ``CLEARLY_SURER``).
    Leaving the outlines out instead leaves too little inside small
    objects to compare.
    """
    objects = mask > 0
    return float(np.mean(np.abs(2.0 * foreground[objects] - 1.0))) if objects.any() else 0.0


def check_region(mask: np.ndarray | None, shape, side: int) -> tuple[slice, slice]:
    """The ``side`` x ``side`` part of a photo (in its pixels) where the
    scale check judges the candidates: where the first look's ``mask``
    has most object outline (many objects, not the inside of one), or the
    photo's centre when it saw nothing; the whole photo when it is no larger."""
    height, width = shape[:2]
    sy, sx = min(side, height), min(side, width)
    if sy == height and sx == width:
        return slice(0, height), slice(0, width)
    y0, x0 = (height - sy) // 2, (width - sx) // 2
    if mask is not None and mask.any():
        objects = mask > 0
        edges = np.zeros(objects.shape, np.float64)
        edges[1:] += objects[1:] != objects[:-1]
        edges[:, 1:] += objects[:, 1:] != objects[:, :-1]
        total = np.pad(edges.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        sums = total[sy:, sx:] - total[:-sy, sx:] - total[sy:, :-sx] + total[:-sy, :-sx]
        if sums.max() > 0:
            y0, x0 = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return slice(int(y0), int(y0) + sy), slice(int(x0), int(x0) + sx)


def surest_scale(model, meta: dict, image: np.ndarray, scale: float, tile: int | None,
                 marks: np.ndarray | None, classical: float = 0.0,
                 first: np.ndarray | None = None) -> tuple[float, np.ndarray | None]:
    """Of ``scale`` and the scales ``SCALE_STEP`` either side of it, the
    one at which the model is surest of its objects (``scale`` itself
    unless another is surer by more than ``CLEARLY_SURER``), and the
    foreground predicted there (None where the whole photo was not
    predicted at that scale), so that the photo's own prediction need not
    repeat it.

    The first look's object size can be off by a factor of two (a model
    that sees large particles as clusters of small ones, or the reverse);
    at a wrong scale the network hesitates inside the objects, at the right
    one it does not. The photo at its smallest scale is a candidate too:
    a particle that fills half the frame shows at any larger scale only as
    texture, and the first look then measures specks. So is the scale from
    auto-segmentation's object size (``classical``) and a step either side
    of it, where it lies more than a step from ``scale``: the model's first
    look can take the texture inside large particles for small objects and
    ask for the photo enlarged four times, where it then sees nothing; the
    classical reading, which saw the particles, does not make that mistake.
    Where the check starts from an earlier scale, ``classical`` is the
    first look's reading instead.

    Each candidate is judged on the part of the photo that is
    ``CHECK_SIDE`` network pixels wide at that candidate's scale, where
    the first look's mask ``first`` has most outline (:func:`check_region`),
    or on the whole photo where it is no larger: so each is judged on as
    much evidence as the network sees in about one tile, and a candidate
    costs at most about one tile however much it enlarges the photo (a
    small candidate sees large particles whole, as it must to be fair to
    them). It is predicted with a margin around its part, for context; a
    candidate whose whole photo costs little more is predicted whole.
    ``CHECK_SIDE`` 0 judges every candidate on the whole photo.
    """
    from inference.predict import predict_mask

    steps = (1 / SCALE_STEP, 1.0, SCALE_STEP)
    candidates = {clip_scale(scale * f, image.shape) for f in steps} | {smallest_scale(image.shape)}
    if classical > 0 and abs(np.log(classical / scale)) > np.log(SCALE_STEP) * 1.01:
        candidates |= {clip_scale(classical * f, image.shape) for f in steps}
    candidates = sorted(candidates)
    if len(candidates) == 1:
        return candidates[0], None
    start = min(candidates, key=lambda c: abs(c - scale))
    from core.model_folder import normalization
    from training.normalize import normalize_image

    height, width = image.shape[:2]
    whole = (slice(0, height), slice(0, width))
    network_input = normalize_image(image, normalization(meta))  # parts scaled as the whole photo is
    certainty, kept = {}, {}
    for candidate in candidates:
        region = check_region(first, image.shape, int(CHECK_SIDE / candidate)) if CHECK_SIDE else whole
        window = _with_margin(region, image.shape, candidate)
        if height * width * candidate ** 2 <= 2 * CHECK_SIDE ** 2 or not CHECK_SIDE:
            window = whole
        inside = (slice(region[0].start - window[0].start, region[0].stop - window[0].start),
                  slice(region[1].start - window[1].start, region[1].stop - window[1].start))
        mask, foreground = predict_mask(model, meta, network_input[window], scale=candidate, tile=tile,
                                        return_foreground=True, normalized=True)
        near = None if marks is None else marks[window]
        certainty[candidate] = object_certainty(without_marks(mask, near)[inside], foreground[inside])
        best = max(certainty, key=certainty.get)
        # only the start and the surest so far can be chosen: the rest is let go at once
        if window == whole:
            kept[candidate] = foreground
        kept = {c: f for c, f in kept.items() if c in (start, best)}
    chosen = best if certainty[best] > certainty[start] + CLEARLY_SURER else start
    return chosen, (kept.get(chosen) if len(class_names(meta)) == 2 else None)


def _with_margin(region: tuple[slice, slice], shape, scale: float) -> tuple[slice, slice]:
    """``region`` grown by a quarter of the check's side in network pixels
    (at ``scale``), within the photo: context for the region's edges."""
    margin = int(np.ceil(CHECK_SIDE / 4 / scale))
    return (slice(max(0, region[0].start - margin), min(shape[0], region[0].stop + margin)),
            slice(max(0, region[1].start - margin), min(shape[1], region[1].stop + margin)))
