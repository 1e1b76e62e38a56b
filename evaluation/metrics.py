"""Segmentation scores that stay honest on unbalanced data.

Pixel accuracy is 99 % for a model that finds nothing on a frame that is 99 %
background, so the scores here are per class: precision, recall, F1 and IoU
from a confusion matrix (which adds up over any number of images), and
object-level matching in the spirit of stardist's ``matching.py``: predicted
and true objects are paired when their IoU reaches a threshold, giving true
positives, false positives and false negatives.

Conventions: a confusion matrix has the true class on rows and the predicted
class on columns. Per-class ratios with a zero denominator are NaN (class
absent from both truth and prediction); object-matching ratios with a zero
denominator are 0, as in stardist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def confusion_matrix(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixel counts ``cm[true_class, predicted_class]`` (int64, K x K).

    Raises ``ValueError`` when the shapes differ or a value is outside
    ``0 .. num_classes - 1``.
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth shape {truth.shape}")
    for name, arr in (("prediction", pred), ("truth", truth)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} holds values outside 0..{num_classes - 1}")
    flat = truth.reshape(-1).astype(np.int64) * num_classes + pred.reshape(-1).astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass
class PixelScores:
    """Per-class pixel scores (arrays indexed by class) and the confusion matrix."""

    confusion: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    iou: np.ndarray
    support: np.ndarray  # true pixels of each class

    @property
    def num_classes(self) -> int:
        return int(self.confusion.shape[0])

    def as_dict(self, class_names: list[str] | None = None) -> dict:
        names = class_names or [str(c) for c in range(self.num_classes)]
        per_class = {
            name: {"precision": _num(self.precision[c]), "recall": _num(self.recall[c]), "f1": _num(self.f1[c]),
                   "iou": _num(self.iou[c]), "support": int(self.support[c])}
            for c, name in enumerate(names)
        }
        return {"per_class": per_class, "confusion": self.confusion.tolist()}


def _num(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def scores_from_confusion(confusion: np.ndarray) -> PixelScores:
    """Per-class precision, recall, F1 and IoU from a confusion matrix."""
    cm = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    return PixelScores(
        confusion=cm,
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        iou=_ratio(tp, tp + fp + fn),
        support=cm.sum(axis=1),
    )


def pixel_metrics(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> PixelScores:
    """Per-class pixel precision, recall, F1, IoU and the confusion matrix of
    one image. For many images add their :func:`confusion_matrix` and call
    :func:`scores_from_confusion` once."""
    return scores_from_confusion(confusion_matrix(pred, truth, num_classes))


def label_objects(mask: np.ndarray) -> np.ndarray:
    """Connected components (8-connected) of the non-zero pixels, labelled 1..n."""
    from scipy.ndimage import label

    labels, _ = label(np.asarray(mask) > 0, structure=np.ones((3, 3), bool))
    return labels


@dataclass
class MatchResult:
    """Object matching at an IoU threshold."""

    thresh: float
    tp: int
    fp: int
    fn: int
    n_true: int
    n_pred: int
    precision: float
    recall: float
    f1: float
    mean_matched_iou: float  # over the true positives (0 when there is none)
    sum_matched_iou: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _safe(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else 0.0


def make_match_result(thresh: float, tp: int, fp: int, fn: int, sum_iou: float) -> MatchResult:
    return MatchResult(
        thresh=float(thresh), tp=int(tp), fp=int(fp), fn=int(fn), n_true=int(tp + fn), n_pred=int(tp + fp),
        precision=_safe(tp, tp + fp), recall=_safe(tp, tp + fn), f1=_safe(2 * tp, 2 * tp + fp + fn),
        mean_matched_iou=_safe(sum_iou, tp), sum_matched_iou=float(sum_iou),
    )


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels made consecutive 1..n (0 stays background)."""
    values, inverse = np.unique(labels.reshape(-1), return_inverse=True)
    if values[0] != 0:
        inverse = inverse + 1
        values = np.concatenate([[0], values])
    return inverse.reshape(labels.shape), len(values) - 1


def instance_matching(pred_labels: np.ndarray, truth_labels: np.ndarray, thresh: float = 0.5,
                      *, pred_are_labels: bool | None = None) -> MatchResult:
    """Match predicted objects to true objects by IoU.

    Parameters
    ----------
    pred_labels : ndarray
        Predicted instance labels, or a mask whose connected components are
        the objects (see ``pred_are_labels``).
    truth_labels : ndarray
        True instance labels (0 = background, each object its own value).
    thresh : float
        A pair counts as a match when its IoU is at least ``thresh``. For
        ``thresh >= 0.5`` a match is necessarily unique; below that, pairs
        are chosen to maximise the number of matches and their total IoU
        (Hungarian assignment).
    pred_are_labels : bool, optional
        ``True``: ``pred_labels`` are instance labels; ``False``: use the
        connected components of its non-zero pixels; ``None`` (default):
        components when it holds a single non-zero value, labels otherwise.

    Returns
    -------
    MatchResult
        tp, fp, fn, precision, recall, F1 and mean IoU of the matched pairs.
    """
    pred, truth = np.asarray(pred_labels), np.asarray(truth_labels)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from truth shape {truth.shape}")
    if pred_are_labels is None:
        pred_are_labels = len(np.unique(pred[pred > 0])) > 1
    pred = pred if pred_are_labels else label_objects(pred)
    pred, n_pred = _relabel(pred)
    truth, n_true = _relabel(truth)
    if n_pred == 0 or n_true == 0:
        return make_match_result(thresh, 0, n_pred, n_true, 0.0)
    area_pred = np.bincount(pred.reshape(-1), minlength=n_pred + 1)
    area_true = np.bincount(truth.reshape(-1), minlength=n_true + 1)
    both = (pred > 0) & (truth > 0)
    pairs, inter = np.unique(truth[both].astype(np.int64) * (n_pred + 1) + pred[both], return_counts=True)
    t_idx, p_idx = pairs // (n_pred + 1), pairs % (n_pred + 1)
    iou = inter / (area_true[t_idx] + area_pred[p_idx] - inter)
    keep = iou >= thresh
    t_idx, p_idx, iou = t_idx[keep], p_idx[keep], iou[keep]
    if thresh < 0.5 and iou.size:
        from scipy.optimize import linear_sum_assignment

        rows, r_inv = np.unique(t_idx, return_inverse=True)
        cols, c_inv = np.unique(p_idx, return_inverse=True)
        cost = np.zeros((rows.size, cols.size))
        # A match is worth 1 plus its IoU: first as many matches as possible, then the best ones.
        cost[r_inv, c_inv] = -(1.0 + iou)
        r, c = linear_sum_assignment(cost)
        chosen = cost[r, c] < 0
        matched = -cost[r, c][chosen] - 1.0
    else:
        matched = iou
    tp = int(matched.size)
    return make_match_result(thresh, tp, n_pred - tp, n_true - tp, float(matched.sum()))


def pool_matches(results: list[MatchResult]) -> MatchResult:
    """Object matching pooled over images (counts added, then the ratios)."""
    if not results:
        return make_match_result(0.5, 0, 0, 0, 0.0)
    return make_match_result(results[0].thresh, sum(r.tp for r in results), sum(r.fp for r in results),
                             sum(r.fn for r in results), sum(r.sum_matched_iou for r in results))


def foreground_iou_dice(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """IoU and Dice of the non-zero pixels of two masks (NaN when both are empty)."""
    p, t = np.asarray(pred) > 0, np.asarray(truth) > 0
    inter = np.count_nonzero(p & t)
    total = np.count_nonzero(p) + np.count_nonzero(t)
    if total == 0:
        return float("nan"), float("nan")
    return inter / (total - inter), 2.0 * inter / total
