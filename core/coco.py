"""COCO instance annotations (``annotations.json``): each object of each
image as pycocotools' compressed run-length encoding, exact, with its area,
box and class, so the objects can train or be checked by other tools
(Detectron2, MMDetection, YOLO converters, ...). Written for a segmented
folder (:mod:`measurement.exports`) and for a synthetic training set
(:mod:`synthetic.compose`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from core.atomic import write_json_atomic


def _column_runs(crop: np.ndarray, box, height: int, width: int) -> list[int]:
    """COCO's uncompressed RLE of one object (given by its crop and box):
    alternating run lengths of 0 and 1 over the whole image read column by
    column, computed from the object's pixels alone (no full-size mask)."""
    ys, xs = np.nonzero(crop)
    flat = np.sort((xs + box[1].start).astype(np.int64) * height + ys + box[0].start)
    breaks = np.flatnonzero(np.diff(flat) != 1)
    starts = np.concatenate([flat[:1], flat[breaks + 1]])
    ends = np.concatenate([flat[breaks], flat[-1:]]) + 1
    gaps = starts - np.concatenate([[0], ends[:-1]])
    runs = np.empty(2 * starts.size + 1, np.int64)
    runs[0:-1:2], runs[1:-1:2] = gaps, ends - starts
    runs[-1] = height * width - ends[-1]
    return runs.tolist()


def image_entries(labels: np.ndarray, classes: np.ndarray | None) -> dict:
    """A photo's objects as COCO annotations without ids (JSON-ready):
    ``{"height", "width", "annotations": [...]}``."""
    from pycocotools import mask as coco_mask

    labels = np.asarray(labels)
    height, width = labels.shape
    annotations = []
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        rle = coco_mask.frPyObjects({"size": [height, width],
                                     "counts": _column_runs(labels[box] == index, box, height, width)},
                                    height, width)
        x, y, w, h = (float(v) for v in coco_mask.toBbox(rle))
        category = int(classes[index]) if classes is not None and index < len(classes) else 1
        annotations.append({
            "category_id": max(category, 1),
            "segmentation": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")},
            "area": float(coco_mask.area(rle)), "bbox": [x, y, w, h], "iscrowd": 0,
            "object_id": index})
    return {"height": int(height), "width": int(width), "annotations": annotations}


class CocoCollector:
    """COCO instance annotations of a folder of photos: each object as a
    run-length encoded mask (pycocotools' compressed RLE, exact), with its
    area, box and class; written as ``annotations.json`` by :meth:`write`."""

    def __init__(self, class_names: list[str] | None) -> None:
        names = list(class_names) if class_names else ["background", "object"]
        self.categories = [{"id": i, "name": name, "supercategory": "object"}
                           for i, name in enumerate(names) if i > 0]
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    def add(self, file_name: str, labels: np.ndarray, classes: np.ndarray | None) -> None:
        """Add a photo's objects (``labels``: instance labels, ``classes[k]``: class of label k)."""
        self.add_entries(file_name, image_entries(labels, classes))

    def add_entries(self, file_name: str, entries: dict) -> None:
        """Add a photo from :func:`image_entries` (made elsewhere, e.g. by
        another process); image and annotation ids are given here, in the
        order photos are added."""
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": file_name,
                            "height": int(entries["height"]), "width": int(entries["width"])})
        for annotation in entries["annotations"]:
            self.annotations.append({"id": len(self.annotations) + 1, "image_id": image_id, **annotation})

    def write(self, path: str | os.PathLike, *, description: str) -> Path:
        write_json_atomic(path, {"info": {"description": description},
                                 "images": self.images, "annotations": self.annotations,
                                 "categories": self.categories})
        return Path(path)
