"""Results in the formats other tools open: ImageJ / Fiji ROI sets and label
images that carry their pixel size.

* :func:`write_roi_zip` writes ``<stem>_rois.zip``: one polygon ROI per
  object, named by its ``object_id`` (the number in the CSV tables and in the
  label image), in ImageJ's pixel coordinates (a pixel's top-left corner is
  its integer coordinate). The outline is the object's outer contour at half
  height (scikit-image ``find_contours``): it follows the pixels' outer edges
  and cuts each corner diagonally, so its area is the pixel count (holes
  filled) less an eighth of a pixel per corner. Opens in Fiji with *File >
  Open* (the ROI Manager lists the objects) and in QuPath's ImageJ import.
* :func:`write_calibrated_labels` writes the instance label image so that
  Fiji and napari show physical sizes: ImageJ TIFF metadata (resolution and
  unit) for uint16 labels, OME-TIFF ``PhysicalSizeX/Y`` with their unit for
  uint32 (more than 65535 objects), which ImageJ's own format cannot hold.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from core.atomic import atomic_path

# ImageJ's names for length units (its "micron" shows as µm).
_IMAGEJ_UNITS = {"nm": "nm", "µm": "micron", "um": "micron", "mm": "mm"}
_OME_UNITS = {"nm": "nm", "µm": "µm", "um": "µm", "mm": "mm"}


def object_rings(labels: np.ndarray) -> dict[int, list[np.ndarray]]:
    """Each object's contours at half height as (n, 2) arrays of x, y in
    ImageJ / QuPath pixel coordinates, the largest (its outline) first,
    then its holes (object id -> rings)."""
    from skimage.measure import find_contours

    labels = np.asarray(labels)
    found: dict[int, list[np.ndarray]] = {}
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        own = np.pad(labels[box] == index, 1)  # closed contours for objects at the frame's edge
        y0, x0 = box[0].start - 1, box[1].start - 1
        # find_contours puts pixel centres at integer coordinates; ImageJ at +0.5.
        rings = [np.column_stack([c[:, 1] + x0 + 0.5, c[:, 0] + y0 + 0.5])
                 for c in find_contours(own.astype(np.float32), 0.5) if len(c) >= 4]
        if rings:
            found[index] = sorted(rings, key=_area, reverse=True)
    return found


def object_outlines(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Each object's outer outline (object id -> polygon, see :func:`object_rings`)."""
    return {index: rings[0] for index, rings in object_rings(labels).items()}


def _area(ring: np.ndarray) -> float:
    """Area enclosed by a ring of points (shoelace)."""
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def write_roi_zip(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """An ImageJ ROI set (zip) of the objects of ``labels``, written atomically."""
    import roifile

    rois = []
    for index, polygon in object_outlines(labels).items():
        roi = roifile.ImagejRoi.frompoints(polygon.astype(np.float32), name=str(index))
        roi.roitype = roifile.ROI_TYPE.POLYGON
        rois.append(roi)
    with atomic_path(path) as tmp:
        if rois:
            roifile.roiwrite(tmp, rois, mode="w")
        else:  # no object: an empty ROI set
            import zipfile

            with zipfile.ZipFile(tmp, "w"):
                pass
    return Path(path)


def write_calibrated_labels(path: str | os.PathLike, labels: np.ndarray, pixel_size: float, unit: str) -> Path:
    """Instance labels as a TIFF that carries ``pixel_size`` (in ``unit``)."""
    import tifffile

    labels = np.asarray(labels)
    dtype = np.uint16 if int(labels.max(initial=0)) <= np.iinfo(np.uint16).max else np.uint32
    data = np.ascontiguousarray(labels, dtype=dtype)
    per_unit = 1.0 / float(pixel_size)
    with atomic_path(path) as tmp:
        if dtype == np.uint16:
            tifffile.imwrite(tmp, data, imagej=True, resolution=(per_unit, per_unit),
                             metadata={"unit": _IMAGEJ_UNITS.get(unit, unit), "axes": "YX"})
        else:
            ome_unit = _OME_UNITS.get(unit, unit)
            tifffile.imwrite(tmp, data, ome=True, resolution=(per_unit, per_unit),
                             metadata={"axes": "YX", "PhysicalSizeX": float(pixel_size),
                                       "PhysicalSizeXUnit": ome_unit, "PhysicalSizeY": float(pixel_size),
                                       "PhysicalSizeYUnit": ome_unit})
    return Path(path)


# -- QuPath GeoJSON --------------------------------------------------------------------
def object_polygons(labels: np.ndarray) -> dict[int, object]:
    """Each object as a valid shapely geometry in ImageJ / QuPath pixel
    coordinates: its outer outline with its holes (a polygon; a
    multipolygon only where pixels touch at a corner and the outline would
    cross itself)."""
    from shapely.geometry import Polygon
    from shapely.validation import make_valid

    shapes: dict[int, object] = {}
    for index, rings in object_rings(labels).items():
        shape = Polygon(rings[0], holes=rings[1:])
        shapes[index] = shape if shape.is_valid else make_valid(shape)
    return shapes


def geojson_features(labels: np.ndarray, rows: list[dict]) -> dict:
    """A GeoJSON FeatureCollection of detection objects as QuPath imports
    them: the object's geometry, its class as classification and every
    numeric measurement of its CSV row as measurements."""
    from shapely.geometry import mapping

    shapes = object_polygons(labels)
    features = []
    for row in rows:
        shape = shapes.get(int(row["object_id"]))
        if shape is None:
            continue
        measurements = {k: float(v) for k, v in row.items()
                        if k not in ("object_id", "class") and isinstance(v, int | float | np.number)
                        and not isinstance(v, bool) and np.isfinite(v)}
        features.append({
            "type": "Feature",
            "id": f"{row.get('image', '')}#{row['object_id']}",
            "geometry": mapping(shape),
            "properties": {"objectType": "detection", "name": str(row["object_id"]),
                           "classification": {"name": str(row.get("class_name", "object"))},
                           "measurements": measurements},
        })
    return {"type": "FeatureCollection", "features": features}


def write_geojson(path: str | os.PathLike, labels: np.ndarray, rows: list[dict]) -> Path:
    """``<stem>_objects.geojson`` (see :func:`geojson_features`), atomically."""
    import json

    from core.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(geojson_features(labels, rows), allow_nan=False))
    return Path(path)


# -- COCO instances: core.coco (the synthetic training set writes them too) ------------------
from core.coco import CocoCollector  # noqa: E402

__all__ = ["CocoCollector", "geojson_features", "object_outlines", "object_polygons", "write_calibrated_labels",
           "write_geojson", "write_roi_zip"]
