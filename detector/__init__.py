"""Real detector frames (CCD, FITS or TIFF): their overscan, threshold
labels without a model, the fit of the simulator to a user's frames, and
the outputs a physicist uses (cluster catalogue, hot-pixel mask, quality
table)."""

from core.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "detector.overscan": ["parse_overscan", "frame_overscan", "overscan_columns"],
    "detector.thresholds": ["label_frame", "robust_level", "LabelInfo"],
    "detector.label_frames": ["run_label_ccd", "LabelCCDResult"],
    "detector.fit": ["run_fit_ccd", "measure_frame", "fit_settings", "FitCCDResult"],
    "detector.outputs": ["DetectorCollector", "frame_clusters", "hot_mask"],
})
