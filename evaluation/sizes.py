"""The figures users publish, scored against expert instance labels: how
many objects a photo holds, their median size, and each particle's size.

Per photo: the count error (all objects, relative to the expert count) and
the D50 error (the median equivalent diameter of the objects off the
photo's border, relative to the expert's). Over particles: for every
predicted object matched to an expert object at IoU >= 0.5, the relative
error of its equivalent diameter; their mean is what automated sizing of
particles is compared by.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MATCH_IOU = 0.5


def equivalent_diameters(labels: np.ndarray, *, off_border: bool = False) -> np.ndarray:
    """Equivalent diameter (of the disc of the same area) of every labelled
    object, in pixels; with ``off_border`` only those not touching the
    photo's edge."""
    labels = np.asarray(labels)
    areas = np.bincount(labels.ravel().astype(np.int64))
    present = np.flatnonzero(areas)
    present = present[present > 0]
    if off_border and present.size:
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        present = present[~np.isin(present, edge)]
    return np.sqrt(4.0 * areas[present] / np.pi)


def matched_diameters(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equivalent diameters (predicted, expert) of the object pairs that
    match at IoU >= 0.5 (such a match is unique)."""
    pred, truth = np.asarray(pred).astype(np.int64), np.asarray(truth).astype(np.int64)
    area_p, area_t = np.bincount(pred.ravel()), np.bincount(truth.ravel())
    both = (pred > 0) & (truth > 0)
    if not both.any():
        return np.zeros(0), np.zeros(0)
    step = int(pred.max()) + 1
    pairs, inter = np.unique(truth[both] * step + pred[both], return_counts=True)
    t, p = pairs // step, pairs % step
    iou = inter / (area_t[t] + area_p[p] - inter)
    keep = iou >= MATCH_IOU
    return np.sqrt(4.0 * area_p[p[keep]] / np.pi), np.sqrt(4.0 * area_t[t[keep]] / np.pi)


def _relative(value: float, expected: float) -> float | None:
    return abs(value - expected) / expected if expected > 0 else None


@dataclass
class PhotoSizes:
    """One photo's count and D50, predicted and expert."""

    image: str
    count: int
    expert_count: int
    d50: float | None
    expert_d50: float | None
    count_error: float | None   # |count - expert| / expert
    d50_error: float | None     # |D50 - expert D50| / expert D50
    matched: tuple[np.ndarray, np.ndarray] = field(repr=False, default=(np.zeros(0), np.zeros(0)))

    def row(self) -> dict:
        return {"image": self.image, "count": self.count, "expert_count": self.expert_count,
                "d50_px": self.d50, "expert_d50_px": self.expert_d50,
                "count_error": self.count_error, "d50_error": self.d50_error}


def photo_sizes(image: str, pred: np.ndarray, truth: np.ndarray) -> PhotoSizes:
    """The size figures of one photo's predicted objects ``pred`` against
    the expert's ``truth`` (both instance labels, 0 = background)."""
    count, expert = int(equivalent_diameters(pred).size), int(equivalent_diameters(truth).size)
    inner, expert_inner = equivalent_diameters(pred, off_border=True), equivalent_diameters(truth, off_border=True)
    d50 = float(np.median(inner)) if inner.size else None
    expert_d50 = float(np.median(expert_inner)) if expert_inner.size else None
    d50_error = _relative(d50, expert_d50) if d50 is not None and expert_d50 is not None else None
    return PhotoSizes(image, count, expert, d50, expert_d50, _relative(count, expert), d50_error,
                      matched_diameters(pred, truth))


def summarise(photos: list[PhotoSizes]) -> dict:
    """Median per-photo count and D50 errors (and the share of photos within
    10 %), and the mean relative diameter error of the matched particles."""
    counts = np.array([p.count_error for p in photos if p.count_error is not None], float)
    d50s = np.array([p.d50_error for p in photos if p.d50_error is not None], float)
    pred = np.concatenate([p.matched[0] for p in photos]) if photos else np.zeros(0)
    truth = np.concatenate([p.matched[1] for p in photos]) if photos else np.zeros(0)
    diameter = np.abs(pred - truth) / truth if truth.size else np.zeros(0)

    def median(values):
        return float(np.median(values)) if values.size else None

    return {"photos": len(photos),
            "median_count_error": median(counts),
            "count_within_10_percent": float(np.mean(counts <= 0.1)) if counts.size else None,
            "median_d50_error": median(d50s),
            "d50_within_10_percent": float(np.mean(d50s <= 0.1)) if d50s.size else None,
            "matched_particles": int(truth.size),
            "mean_diameter_error": float(diameter.mean()) if diameter.size else None,
            "median_diameter_error": median(diameter)}


def summary_text(sizes: dict) -> str:
    """One line of :func:`summarise`'s figures."""
    def pct(value):
        return "n/a" if value is None else f"{100 * value:.1f} %"

    return (f"Counts and sizes against the expert objects ({sizes['photos']} photos): median count error "
            f"{pct(sizes['median_count_error'])} ({pct(sizes['count_within_10_percent'])} of photos within 10 %), "
            f"median D50 error {pct(sizes['median_d50_error'])} ({pct(sizes['d50_within_10_percent'])} within "
            f"10 %); {sizes['matched_particles']} particles matched at IoU >= {MATCH_IOU}: mean diameter error "
            f"{pct(sizes['mean_diameter_error'])} (median {pct(sizes['median_diameter_error'])})")
