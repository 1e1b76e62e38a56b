"""Scoring only: predicted masks against expert masks (per-class pixel
scores, the confusion matrix, instance F1 at IoU 0.5), the report the
``evaluate`` command writes, and the failure classes of a photo."""

from core.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "evaluation.metrics": ["confusion_matrix", "pixel_metrics", "instance_matching", "pool_matches",
                           "foreground_iou_dice", "MatchResult", "PixelScores"],
    "evaluation.report": ["run_evaluate", "EvaluationResult"],
    "evaluation.failures": ["analyse_photo", "PhotoFailures"],
})
