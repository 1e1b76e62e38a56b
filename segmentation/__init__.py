"""Classical segmentation, no learning: auto-segmentation of a user's
photos into the object pool, the pool itself, splitting touching objects,
and the click operations of the Review tab (fill closed contours, pick
objects)."""

from core.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "segmentation.autoseg": ["find_objects", "run_autoseg", "AutosegSettings", "AutosegResult"],
    "segmentation.pool": ["add_objects", "delete_objects", "read_pool_object"],
    "segmentation.instances": ["split_touching", "label_instances"],
    "segmentation.interactive": ["fill_closed_contours", "plan_fill", "object_at", "objects_at"],
    "segmentation.annotations": ["find_annotations"],
})
