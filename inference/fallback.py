"""Auto-segmentation standing in where the model sees next to none of a
photo's objects.

Notes
-----
A model trained on the pool knows the kinds of particle the pool holds; a
photo of another kind (large flat particles when the pool holds small round
ones) it can see as empty background at every scale. Where the model covers
less than ``BLIND_SHARE`` of the area auto-segmentation finds objects in,
and auto-segmentation is sure of its polarity (border margin at least
``BLIND_MARGIN``, see :func:`segmentation.foreground.detect_polarity`),
auto-segmentation's objects are the photo's mask.

A photo that had auto-segmentation's objects when last segmented keeps them
unless the model now covers at least ``HOLD_SHARE`` of their area: a
self-training round learns nothing from such a photo (the model gave it no
confident objects), and a retrained model that now sees a few specks there
has not learnt its particles.

Auto-segmentation can take a photo's background for its object (the lit
half of an unevenly lit photo, a film or a grid under the particles). A
model that sees the particles then covers a few hundredths of that
"object" and would be taken for blind: where ``SEVERAL_SURE`` objects the
model is sure of (:mod:`inference.confident`) lie in one of
auto-segmentation's objects, the model's mask stays. Two is the least that
makes "several". The README (*Segment*) gives the figures the other values
were chosen on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.gray import is_blank

BLIND_SHARE = 0.1  # the model covers less than this share of auto-segmentation's objects: blind
BLIND_MARGIN = 0.1  # ...where auto-segmentation's polarity margin is at least this
HOLD_SHARE = 0.5  # a photo given auto-segmentation's objects keeps them below this share
SEVERAL_SURE = 2  # sure objects in one auto-segmentation object: that object is background


def classical_if_model_blind(image: np.ndarray, mask: np.ndarray, share: float = BLIND_SHARE, *,
                             sure_objects: Callable[[], np.ndarray] | None = None,
                             reading: Callable | None = None) -> np.ndarray | None:
    """Auto-segmentation's mask of ``image`` (class 1) where the model's
    ``mask`` covers less than ``share`` of the area of the objects it finds
    (see ``BLIND_SHARE``), else None. Auto-segmentation runs only where the
    model covers less than ``share`` of the photo. ``sure_objects`` gives
    the labels of the objects the model is sure of (asked only when
    auto-segmentation would stand in): where ``SEVERAL_SURE`` of them lie
    in one of auto-segmentation's objects, that object is the photo's
    background and the model's mask stays (see ``SEVERAL_SURE``).
    ``reading`` gives auto-segmentation's objects where they may be known
    already (the scale check's)."""
    model_area = int(np.count_nonzero(mask))
    if model_area >= share * mask.size or is_blank(image):
        return None
    from segmentation.autoseg import find_objects

    found = reading() if reading is not None else find_objects(image, scored=False)
    if found.polarity_margin < BLIND_MARGIN or model_area >= share * np.count_nonzero(found.foreground):
        return None
    if sure_objects is not None and holds_several(found.foreground, sure_objects()):
        return None
    return found.foreground.astype(np.uint8)


def auto_reading(image: np.ndarray) -> Callable:
    """A function giving auto-segmentation's objects of ``image``
    (:func:`segmentation.autoseg.find_objects`), found on the first call
    and kept for the next without the label and annotation images and
    without scoring the objects (the foreground, the polarity margin and
    the objects' areas are what the scale check and the fallback read), so
    that a large photo does not hold them meanwhile."""
    found = []

    def reading():
        if not found:
            from dataclasses import replace

            from segmentation.autoseg import find_objects

            empty = np.zeros((0, 0), np.int32)
            found.append(replace(find_objects(image, scored=False), labels=empty, annotations=empty.astype(bool)))
        return found[0]

    return reading


def holds_several(foreground: np.ndarray, sure: np.ndarray, several: int = SEVERAL_SURE) -> bool:
    """Whether one object of ``foreground`` (a region of connected pixels)
    holds at least ``several`` of the labelled objects in ``sure``, each
    with more than half of its area in it."""
    from scipy import ndimage as ndi

    regions, count = ndi.label(foreground > 0)
    if count == 0:
        return False
    holders = []
    for k in np.unique(sure[sure > 0]):
        hits = np.bincount(regions[sure == k], minlength=count + 1)
        holder = int(hits[1:].argmax()) + 1
        if hits[holder] > hits.sum() / 2:
            holders.append(holder)
    return bool(holders) and int(np.bincount(holders).max()) >= several
