"""What is taken out of a model's mask: burned-in annotations (scale bars,
their labels, panel letters) and faint specks.

Notes
-----
A model that enlarges a grainy photo can take clumps of its grain for small
particles. An object much smaller than the objects the model was trained
on (below ``SPECK_SIZE`` times their diameter, at the scale the photo was
predicted at, or in the photo's own pixels where it was shrunk: the grain
of a shrunk photo is averaged away) is dropped where it does not stand out
from the background around it by ``SPECK_CONTRAST`` times that
background's own spread. A small piece beside a larger object is part of
that object's outline, and a photo whose objects are mostly such faint
pieces has particles of low contrast rather than grain: both are kept. The
README (*Segment*) gives the figures the values were chosen on.
"""

from __future__ import annotations

import numpy as np

from core.stats import robust_spread

SPECK_SIZE = 0.75  # specks: objects under this share of the model's object diameter...
SPECK_CONTRAST = 2.0  # ...standing out from the background by less than this many spreads


def without_faint_specks(image: np.ndarray, mask: np.ndarray, diameter: float) -> np.ndarray:
    """``mask`` without its faint specks: objects smaller than
    ``diameter`` (in the photo's pixels) that do not stand out from the
    background around them (see ``SPECK_CONTRAST``); ``mask`` itself where
    none is dropped. A speck with too little background around it to judge
    or beside a larger object is kept, and so is every speck where they
    would take half the mask's area."""
    from scipy import ndimage as ndi

    from core.gray import to_gray

    objects = mask > 0
    components, count = ndi.label(objects)
    if count == 0:
        return mask
    area = np.bincount(components.ravel(), minlength=count + 1)
    small = np.flatnonzero(area[1:] < np.pi / 4 * diameter ** 2) + 1
    if small.size == 0:
        return mask
    larger = objects & ~np.isin(components, small)
    gray = to_gray(image).astype(np.float32)
    boxes = ndi.find_objects(components)
    faint = []
    for label in small:
        reach = max(2, int(round(np.sqrt(area[label] / np.pi))))
        window = tuple(slice(max(0, b.start - reach - 1), b.stop + reach + 1) for b in boxes[label - 1])
        inside = components[window] == label
        band = ndi.binary_dilation(inside, iterations=reach) & ~inside
        ring = band & ~objects[window]
        if np.count_nonzero(ring) < 5 or (band & larger[window]).any():
            continue
        around = gray[window][ring]
        middle = np.median(around)
        spread = robust_spread(around, middle)
        if abs(float(gray[window][inside].mean()) - middle) < SPECK_CONTRAST * spread:
            faint.append(label)
    if not faint or area[faint].sum() > 0.5 * np.count_nonzero(objects):
        return mask
    mask = mask.copy()
    mask[np.isin(components, faint)] = 0
    return mask


def find_marks(image: np.ndarray) -> np.ndarray | None:
    """Burned-in scale bars, their labels and panel letters of a photo."""
    from core.gray import to_gray
    from segmentation.annotations import find_annotations

    marks = find_annotations(to_gray(image).astype(np.float32))
    return marks if marks.any() else None


def without_marks(mask: np.ndarray, marks: np.ndarray | None) -> np.ndarray:
    """``mask`` with burned-in annotations taken out: their pixels, and
    what is left of an object that lay mostly on one. A scale bar or a
    letter is never a particle, and a model that takes one for an object
    would also misjudge the photo's object size."""
    if marks is None or not (marks & (mask > 0)).any():
        return mask
    from scipy import ndimage as ndi

    components, count = ndi.label(mask > 0)
    area = np.bincount(components.ravel(), minlength=count + 1)
    on_marks = np.bincount(components[marks], minlength=count + 1)
    mostly = np.flatnonzero(on_marks > area / 2)
    mask = mask.copy()
    mask[marks | np.isin(components, mostly[mostly > 0])] = 0
    return mask
