"""The objects a model is sure of in one photo: a clear probability margin
inside and around the object, the same object found in the mirrored photo,
a plausible shape (solid, not cut by the border, a size like its
neighbours', not two particles touching). Self-training puts them into the
pool (leaving out those the pool holds already); segmentation asks whether
a region auto-segmentation calls one object holds several of them.

Notes
-----
Two touching particles the splitter left whole are as solid as one, and
the model as sure of them; pooled, such a pair is pasted into every
synthetic image it lands in and teaches the network that touching
particles are one. They are told by two deep bays either side of their
contact (:func:`segmentation.confidence.is_pair`), the test auto-segmentation
pools its own objects by.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass(frozen=True)
class Sureness:
    min_margin: float = 0.85       # mean object probability inside, at least
    max_outside: float = 0.3       # mean object probability in the ring around it, at most
    min_flip_iou: float = 0.85     # agreement with the mirrored photo's result
    min_solidity: float = 0.85
    max_per_photo: int = 40        # so that crowded photos do not fill the pool alone


@dataclass
class ConfidentObjects:
    labels: np.ndarray
    chosen: list[int]
    foreground: np.ndarray   # object probability, float32


def confident_objects(probability: np.ndarray, mirrored: np.ndarray, rules: Sureness = Sureness(),
                      taken: np.ndarray | None = None) -> ConfidentObjects:
    """Objects of a probability map that the model is sure of.

    Parameters
    ----------
    probability : (H, W) float
        Object probability (1 - background) of the photo.
    mirrored : (H, W) float
        The same for the mirrored photo, mirrored back.
    rules : Sureness
        What the model must show of an object to be sure of it.
    taken : (H, W) int array, optional
        The objects of this photo already in the pool (one label each): an
        object sharing half of its pixels with them, or half of one of
        theirs, is one of them again and is left out.
    """
    from skimage.measure import regionprops

    from segmentation.confidence import is_pair, second_bay_depth
    from segmentation.instances import split_touching

    mask = probability >= 0.5
    labels = split_touching(mask)
    mirrored_mask = mirrored >= 0.5
    h, w = mask.shape
    candidates = []
    props = regionprops(labels, intensity_image=probability)
    if not props:
        return ConfidentObjects(labels, [], probability)
    median_area = float(np.median([p.area for p in props]))
    taken_areas = np.bincount(taken.ravel()) if taken is not None else None
    for p in props:
        r0, c0, r1, c1 = p.bbox
        if r0 == 0 or c0 == 0 or r1 == h or c1 == w:
            continue
        if p.solidity < rules.min_solidity or not 0.2 <= p.area / median_area <= 5.0 or p.area < 16:
            continue
        if p.intensity_mean < rules.min_margin or is_pair(*second_bay_depth(p.image, p.image_convex)):
            continue
        if taken is not None and _repeats(taken, taken_areas, labels, p):
            continue
        pad = max(2, int(0.2 * max(r1 - r0, c1 - c0)))
        R0, C0, R1, C1 = max(0, r0 - pad), max(0, c0 - pad), min(h, r1 + pad), min(w, c1 + pad)
        inside = labels[R0:R1, C0:C1] == p.label
        ring = ndi.binary_dilation(inside, iterations=pad) & ~ndi.binary_dilation(inside)
        ring &= labels[R0:R1, C0:C1] == 0
        if ring.any() and probability[R0:R1, C0:C1][ring].mean() > rules.max_outside:
            continue
        other = mirrored_mask[R0:R1, C0:C1]
        component = ndi.label(other)[0]
        hits = np.unique(component[inside & other])
        match = np.isin(component, hits[hits > 0])
        flip_iou = (inside & match).sum() / max(1, (inside | match).sum())
        if flip_iou < rules.min_flip_iou:
            continue
        candidates.append((float(p.intensity_mean) * flip_iou, p.label))
    candidates.sort(reverse=True)
    return ConfidentObjects(labels, [label for _, label in candidates[:rules.max_per_photo]], probability)


def _repeats(taken: np.ndarray, taken_areas: np.ndarray, labels: np.ndarray, p) -> bool:
    """Whether object ``p`` of ``labels`` shares half of its pixels with the
    objects of ``taken``, or half of one of theirs."""
    r0, c0, r1, c1 = p.bbox
    under = taken[r0:r1, c0:c1][labels[r0:r1, c0:c1] == p.label]
    shared = np.bincount(under, minlength=taken_areas.size)
    shared[0] = 0
    return bool(shared.sum() >= 0.5 * p.area or np.any(shared[1:] >= 0.5 * np.maximum(taken_areas[1:], 1)))


def model_sure_objects(model, meta: dict, image: np.ndarray, scale: float, probability: np.ndarray,
                       rules: Sureness = Sureness(), tile: int | None = None,
                       taken: np.ndarray | None = None) -> ConfidentObjects:
    """The objects the model is sure of in ``image``, whose object
    ``probability`` it predicted at ``scale``: the mirrored photo is
    predicted at the same scale for the comparison. ``taken``: as in
    :func:`confident_objects`."""
    from inference.predict import predict_mask

    _, mirrored = predict_mask(model, meta, np.ascontiguousarray(image[:, ::-1]), scale=scale, tile=tile,
                               return_foreground=True)
    return confident_objects(probability, mirrored[:, ::-1], rules, taken)
