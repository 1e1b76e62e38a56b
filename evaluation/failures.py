"""Where a segmentation loses against expert masks: per photo, a failure
class, and for the objects, why each one was not counted.

Used for scoring only (benchmarks and reports); the application never reads
expert masks.

A true object that no predicted object matches (IoU >= 0.5) is lost because
it was

- ``merged``: most of it lies in one predicted object that covers most of
  another true object too (touching particles taken as one);
- ``split``: most of it is covered, by two or more predicted objects, none
  of which matches it;
- ``missed``: less than half of it is covered at all;
- ``misshapen``: mostly covered by one predicted object that is too big or
  too small for a match (a halo, a shadow, an eroded rim).

A predicted object that matches nothing is a ``speck`` (smaller than a
quarter of the photo's median true object), a ``false`` object (mostly on
the background, holding no true object) or a ``fragment`` (the other side
of a merge, a split or a misshapen object).

A photo's class is the first that applies: ``ok`` (IoU >= 0.7 and instance
F1 >= 0.7), ``polarity`` (the prediction fits the background better than
the objects), ``nothing`` (almost nothing found), ``too much`` (more than
1.5 times the true area: halos, shadows, background), ``too little`` (less
than 0.6 times: low contrast, missed objects), else the largest of the
object losses above (``merged``, ``split``, ``missed``, ``misshapen``,
``specks``, ``false``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from evaluation.metrics import _relabel, foreground_iou_dice, instance_matching, label_objects

LOSSES = ("merged", "split", "missed", "misshapen")
EXTRAS = ("speck", "false", "fragment")
PHOTO_CLASSES = ("ok", "polarity", "nothing", "too much", "too little", "merged", "split", "missed",
                 "misshapen", "specks", "false")


@dataclass
class PhotoFailures:
    iou: float
    dice: float
    tp: int
    fp: int
    fn: int
    true_objects: int
    predicted_objects: int
    area_ratio: float                 # predicted foreground / true foreground
    lost: dict = field(default_factory=dict)    # LOSSES -> count of true objects
    extra: dict = field(default_factory=dict)   # EXTRAS -> count of predicted objects
    photo_class: str = "ok"

    @property
    def f1(self) -> float:
        den = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / den if den else 1.0

    def as_row(self) -> dict:
        row = {k: v for k, v in asdict(self).items() if k not in ("lost", "extra")}
        row["f1"] = round(self.f1, 4)
        row.update({f"lost_{k}": self.lost.get(k, 0) for k in LOSSES})
        row.update({f"extra_{k}": self.extra.get(k, 0) for k in EXTRAS})
        return row


def analyse_photo(pred: np.ndarray, truth: np.ndarray, *, pred_are_labels: bool = True) -> PhotoFailures:
    """Failure class and object losses of one photo's prediction (instance
    labels, or a mask whose connected components are the objects) against
    its true instance labels."""
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    pred_labels = pred if pred_are_labels else label_objects(pred)
    pred_labels, n_pred = _relabel(pred_labels)
    truth_labels, n_true = _relabel(truth)
    iou, dice = foreground_iou_dice(pred_labels, truth_labels)
    match = instance_matching(pred_labels, truth_labels, 0.5, pred_are_labels=True)
    area_p = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)
    area_t = np.bincount(truth_labels.ravel(), minlength=n_true + 1)
    true_area, pred_area = area_t[1:].sum(), area_p[1:].sum()
    result = PhotoFailures(iou=float(np.nan_to_num(iou, nan=1.0)), dice=float(np.nan_to_num(dice, nan=1.0)),
                           tp=match.tp, fp=match.fp, fn=match.fn, true_objects=n_true, predicted_objects=n_pred,
                           area_ratio=float(pred_area / true_area) if true_area else float("inf"),
                           lost=dict.fromkeys(LOSSES, 0), extra=dict.fromkeys(EXTRAS, 0))
    # overlap table: inter[t, p] for every pair that touches
    both = (pred_labels > 0) & (truth_labels > 0)
    inter = np.zeros((n_true + 1, n_pred + 1), np.int64)
    np.add.at(inter, (truth_labels[both], pred_labels[both]), 1)
    union = area_t[:, None] + area_p[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        pair_iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    pair_iou[0, :] = 0
    pair_iou[:, 0] = 0
    matched_t = pair_iou.max(axis=1) >= 0.5
    matched_p = pair_iou.max(axis=0) >= 0.5
    # a predicted object "holds" a true one when it covers at least half of it
    holds = inter >= 0.5 * area_t[:, None]
    holds[0, :] = False
    holds[:, 0] = False
    holders_of = holds.sum(axis=0)  # per predicted object: how many true objects it holds
    for t in range(1, n_true + 1):
        if matched_t[t]:
            continue
        covered = inter[t, 1:].sum() / area_t[t]
        main = int(np.argmax(inter[t])) if inter[t, 1:].any() else 0
        if main and holds[t, main] and holders_of[main] >= 2:
            result.lost["merged"] += 1
        elif covered >= 0.5 and not holds[t].any():
            result.lost["split"] += 1
        elif covered < 0.5:
            result.lost["missed"] += 1
        else:
            result.lost["misshapen"] += 1
    median_true = float(np.median(area_t[1:])) if n_true else 0.0
    for p in range(1, n_pred + 1):
        if matched_p[p]:
            continue
        on_objects = inter[1:, p].sum() / area_p[p]
        if area_p[p] < 0.25 * median_true:
            result.extra["speck"] += 1
        elif on_objects < 0.5 and not holds[:, p].any():
            result.extra["false"] += 1
        else:
            result.extra["fragment"] += 1
    result.photo_class = _photo_class(result, pred_labels > 0, truth_labels > 0)
    return result


def _photo_class(r: PhotoFailures, pred: np.ndarray, truth: np.ndarray) -> str:
    if r.iou >= 0.7 and r.f1 >= 0.7:
        return "ok"
    if pred.any() and truth.any():
        inverse_iou, _ = foreground_iou_dice(pred, ~truth)
        if inverse_iou > r.iou:
            return "polarity"
    if r.area_ratio < 0.05:
        return "nothing"
    if r.area_ratio > 1.5:
        return "too much"
    if r.area_ratio < 0.6:
        return "too little"
    counts = {**r.lost, "specks": r.extra["speck"], "false": r.extra["false"]}
    return max(counts, key=lambda k: counts[k]) if any(counts.values()) else "misshapen"


def summarise(photos: dict[str, PhotoFailures]) -> dict:
    """Counts of photo classes and of lost and extra objects over photos."""
    classes = dict.fromkeys(PHOTO_CLASSES, 0)
    lost = dict.fromkeys(LOSSES, 0)
    extra = dict.fromkeys(EXTRAS, 0)
    for r in photos.values():
        classes[r.photo_class] += 1
        for k in LOSSES:
            lost[k] += r.lost[k]
        for k in EXTRAS:
            extra[k] += r.extra[k]
    return {"classes": {k: v for k, v in classes.items() if v}, "lost": lost, "extra": extra,
            "true_objects": sum(r.true_objects for r in photos.values())}
