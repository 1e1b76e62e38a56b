"""A trained model applied to photos: the scale each photo is predicted at,
the tiled prediction, the marks and specks taken out, auto-segmentation
standing in where the model is blind, and the segment stage that measures
every object, photo by photo in this process or on Dask workers."""

from core.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "inference.settings": ["SegmentSettings", "SegmentResult"],
    "inference.stage": ["run_segment", "previous_scales", "previous_auto_segmented"],
    "inference.photo": ["segment_photo"],
    "inference.predict": ["predict_mask", "predict_probabilities"],
    "inference.confident": ["Sureness", "confident_objects", "model_sure_objects"],
})
