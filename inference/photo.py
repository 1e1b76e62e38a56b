"""One photo through the model: the scale chosen, the mask predicted, the
marks and faint specks taken out."""

from __future__ import annotations

import numpy as np

from core.gray import is_blank
from core.model_folder import class_names, object_diameter
from inference.marks import SPECK_SIZE, find_marks, without_faint_specks, without_marks
from inference.scale import FIRST_LOOK, SIZE_MARGIN, clip_scale, estimate_scale, median_diameter, surest_scale


def segment_photo(model, meta: dict, image: np.ndarray, *, scale: float = 0.0,
                  tile: int | None = None, return_foreground: bool = False, flips: bool | int | str = False,
                  threshold: float | None = None, start: float = 0.0, reading=None):
    """The class mask of one photo and the scale it was predicted at.

    With ``scale`` 0 the scale is chosen from the objects themselves: a
    first prediction of the whole photo at a small size measures the
    objects, and the photo is predicted again with its objects at the size
    the model works best at (``SIZE_MARGIN`` times its training median,
    with the objects' size weighted by area), or a step either side (or the
    photo at its smallest scale) where the model is surer of its objects.
    A ``start`` scale (the scale this photo was segmented at before)
    is where the check a step either side starts (instead of the first look);
    the first look's own reading is checked too where it lies more than a
    step away, so that a photo once read at a wrong scale is not held there.
    Burned-in annotations and, for a model of one object class, faint
    specks (see :func:`without_faint_specks`) are taken out of the mask
    and of the object probability.
    With ``return_foreground`` the object probability is returned too;
    ``flips`` and ``threshold`` as in :func:`inference.predict.predict_mask`
    (for the final prediction; the first look is a plain one).
    ``reading`` gives auto-segmentation's objects of ``image`` (see
    :func:`inference.scale.estimate_scale`), for a caller that needs them too.
    """
    from inference.predict import predict_mask

    if is_blank(image):  # nothing to find: a model would call the whole frame one object
        empty = np.zeros(image.shape[:2], np.uint8)
        return (empty, 1.0, empty.astype(np.float32)) if return_foreground else (empty, 1.0)
    marks = find_marks(image) if len(class_names(meta)) == 2 else None
    target = object_diameter(meta) * SIZE_MARGIN
    known = None  # the foreground at the chosen scale, where the scale check predicted it already
    if scale <= 0 and target > 0:
        first = clip_scale(FIRST_LOOK / max(image.shape[:2]), image.shape)
        mask = without_marks(predict_mask(model, meta, image, scale=first, tile=tile), marks)
        # object diameter in the photo's pixels, measured about as finely as the network saw it
        step = max(1, int(1.0 / first))
        seen = median_diameter(mask[::step, ::step]) * step
        if start <= 0:
            classical = estimate_scale(image, meta, reading=reading)
            start = target / seen if seen > 0 else classical
        else:  # the earlier scale is checked against what this model sees
            classical = target / seen if seen > 0 else 0.0
        scale, known = surest_scale(model, meta, image, clip_scale(start, image.shape), tile, marks,
                                     classical, first=mask)
    elif scale <= 0:
        scale = 1.0
    mask, foreground = predict_mask(model, meta, image, scale=scale, tile=tile, return_foreground=True,
                                    flips=flips, threshold=threshold, known=known)
    cleaned = without_marks(mask, marks)
    if cleaned is not mask:  # the probabilities say what the mask says
        foreground[(mask > 0) & (cleaned == 0)] = 0.0
        foreground[marks] = 0.0
    mask = cleaned
    if target > 0 and len(class_names(meta)) == 2:
        cleaned = without_faint_specks(image, mask, SPECK_SIZE * object_diameter(meta) / max(scale, 1.0))
        if cleaned is not mask:
            foreground[(mask > 0) & (cleaned == 0)] = 0.0
        mask = cleaned
    return (mask, scale, foreground) if return_foreground else (mask, scale)
