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


def object_outlines(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Each object's outer outline as an (n, 2) array of x, y in ImageJ
    pixel coordinates (object id -> polygon)."""
    from skimage.measure import find_contours

    labels = np.asarray(labels)
    outlines: dict[int, np.ndarray] = {}
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        own = np.pad(labels[box] == index, 1)  # closed contours for objects at the frame's edge
        contours = find_contours(own.astype(np.float32), 0.5)
        if not contours:
            continue
        outer = max(contours, key=_area)
        y0, x0 = box[0].start - 1, box[1].start - 1
        # find_contours puts pixel centres at integer coordinates; ImageJ at +0.5.
        outlines[index] = np.column_stack([outer[:, 1] + x0 + 0.5, outer[:, 0] + y0 + 0.5])
    return outlines


def _area(contour: np.ndarray) -> float:
    y, x = contour[:, 0], contour[:, 1]
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
