"""Per-object measurements and per-photo / per-folder size statistics.

Every size is given in pixels and, when the photo is calibrated, in physical
units; the unit is part of the column name (``area_px``, ``area_um2``,
``equivalent_diameter_px``, ``equivalent_diameter_um``) so a CSV read on its
own is never ambiguous.

Columns of :func:`measure_objects` (``<u>`` is ``nm``, ``um`` or ``mm``;
physical columns only when a pixel size is given)::

    image                  photo name
    object_id              label in the label image (1..N)
    class                  class index from the class mask (1 for a binary mask)
    class_name             class name, or the index as text
    touches_border         1 if the object touches the photo's edge (cut off), else 0
    area_px, area_<u>2     pixel count; physical area
    equivalent_diameter_px, _<u>   diameter of the disc of the same area
    feret_max_px, _<u>     largest caliper width (over the convex hull of the pixel squares)
    feret_min_px, _<u>     smallest caliper width (rotating calipers on the same hull)
    major_axis_px, _<u>    major axis of the ellipse with the same second moments
    minor_axis_px, _<u>    minor axis of that ellipse
    perimeter_px, _<u>     Crofton perimeter estimate (4 directions)
    circularity            4 pi area / perimeter^2, capped at 1 (1 = disc)
    solidity               area / area of the convex hull (1 = convex)
    aspect_ratio           major_axis / minor_axis (blank for one-pixel-thin objects)
    mean_intensity         mean gray value of the photo inside the object, in the
                           photo's own range (blank when no photo is given)
    centroid_x_px, centroid_y_px, centroid_x_<u>, centroid_y_<u>
    bbox_x0, bbox_y0, bbox_x1, bbox_y1   bounding box in pixels (x1, y1 exclusive)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from skimage.measure import regionprops_table

from core.errors import UserInputError
from core.gray import to_gray
from measurement.calibration import Calibration, calibration_from_pixel_size
from segmentation.instances import touches_border

# Lengths measured per object: (column stem, regionprops_table key).
_LENGTHS = (
    ("equivalent_diameter", "equivalent_diameter_area"),
    ("feret_max", "feret-0"),
    ("feret_min", "feret-1"),
    ("major_axis", "axis_major_length"),
    ("minor_axis", "axis_minor_length"),
    ("perimeter", "perimeter_crofton"),
)


def as_calibration(pixel_size: float | Calibration | None, unit: str = "µm") -> Calibration | None:
    """A :class:`Calibration` from a number (in ``unit``), a Calibration, or None."""
    if pixel_size is None or isinstance(pixel_size, Calibration):
        return pixel_size
    return calibration_from_pixel_size(pixel_size, unit)


def object_columns(calibration: Calibration | None = None) -> list[str]:
    """The columns of :func:`measure_objects` rows, in CSV order."""
    u = calibration.suffix if calibration is not None else None
    columns = ["image", "object_id", "class", "class_name", "touches_border", "area_px"]
    if u:
        columns.append(f"area_{u}2")
    for stem, _ in _LENGTHS:
        columns.append(f"{stem}_px")
        if u:
            columns.append(f"{stem}_{u}")
    columns += ["circularity", "solidity", "aspect_ratio", "mean_intensity",
                "centroid_x_px", "centroid_y_px"]
    if u:
        columns += [f"centroid_x_{u}", f"centroid_y_{u}"]
    columns += ["bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]
    return columns


def feret_diameters(region_mask: np.ndarray) -> np.ndarray:
    """Largest and smallest caliper width of one object, in pixels.

    Both come from the convex hull of the object's pixel squares (their
    corners), so an axis-aligned w x h rectangle of pixels gives exactly
    ``hypot(w, h)`` and ``min(w, h)``. The smallest width is found by
    rotating calipers: it is attained with one side of the caliper flush
    with a hull edge, so the widths across every edge are compared at once.
    """
    rows = np.flatnonzero(region_mask.any(axis=1))
    first = region_mask[rows].argmax(axis=1)
    last = region_mask.shape[1] - 1 - region_mask[rows, ::-1].argmax(axis=1)
    # Only the left- and rightmost pixel of each row can carry hull corners.
    y = np.concatenate([rows - 0.5, rows + 0.5, rows - 0.5, rows + 0.5])
    x = np.concatenate([first - 0.5, first - 0.5, last + 0.5, last + 0.5])
    points = np.column_stack([x, y])
    try:
        hull = points[ConvexHull(points).vertices]
    except QhullError:  # cannot happen with pixel squares; kept for safety
        return np.array([0.0, 0.0])
    diff = hull[:, None, :] - hull[None, :, :]
    feret_max = float(np.sqrt((diff ** 2).sum(-1).max()))
    edges = np.roll(hull, -1, axis=0) - hull
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    # Distance of every hull vertex from the line through each edge.
    cross = np.abs(edges[:, None, 0] * (-diff[:, :, 1]) - edges[:, None, 1] * (-diff[:, :, 0]))
    widths = cross.max(axis=1) / lengths
    return np.array([feret_max, float(widths.min())])


def _feret(region_mask: np.ndarray) -> np.ndarray:
    return feret_diameters(region_mask)


def measure_objects(
    labels: np.ndarray,
    *,
    image: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    pixel_size: float | Calibration | None = None,
    unit: str = "µm",
    image_name: str = "",
) -> list[dict]:
    """Measure every labelled object.

    Parameters
    ----------
    labels : (H, W) integer array
        Instance labels, 0 = background (e.g. from
        :func:`segmentation.instances.label_instances`).
    image : array, optional
        The photo (any dtype, gray or colour) for ``mean_intensity``.
    classes : (N + 1,) array, optional
        Class of each label (``classes[k]`` for label k); default 1 for all.
    class_names : sequence of str, optional
        Names indexed by class value (``class_names[0]`` is the background).
    pixel_size : float or Calibration, optional
        Length of one pixel side in ``unit``; adds physical columns.
    unit : str
        Unit of a numeric ``pixel_size``: ``"nm"``, ``"µm"`` or ``"mm"``.
    image_name : str
        Written in the ``image`` column.

    Returns
    -------
    list of dict
        One row per object with the columns of :func:`object_columns`,
        ordered by object id. Numbers are Python floats and ints.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"measure_objects expects 2-D labels, got shape {labels.shape}")
    calibration = as_calibration(pixel_size, unit)
    properties = ["label", "area", "equivalent_diameter_area", "axis_major_length",
                  "axis_minor_length", "perimeter_crofton", "solidity", "centroid", "bbox"]
    intensity = None
    if image is not None:
        intensity = to_gray(np.asarray(image))
        if intensity.shape != labels.shape:
            raise UserInputError(
                f"The photo {image_name or ''} ({intensity.shape[1]} x {intensity.shape[0]}) and its "
                f"labels ({labels.shape[1]} x {labels.shape[0]}) differ in size."
            )
        properties.append("intensity_mean")
    if not labels.any():
        return []
    table = regionprops_table(labels.astype(np.int32, copy=False), intensity_image=intensity,
                              properties=properties, extra_properties=(_feret,))
    table["feret-0"], table["feret-1"] = table.pop("_feret-0"), table.pop("_feret-1")
    ids = table["label"].astype(np.int64)
    area = table["area"].astype(float)
    border = np.isin(ids, touches_border(labels))
    object_class = np.ones(ids.size, np.int64) if classes is None else np.asarray(classes)[ids]
    perimeter = table["perimeter_crofton"]
    with np.errstate(divide="ignore", invalid="ignore"):
        circularity = np.minimum(1.0, 4.0 * np.pi * area / perimeter ** 2)
        aspect = np.where(table["axis_minor_length"] > 0,
                          table["axis_major_length"] / table["axis_minor_length"], np.nan)
    mean_intensity = table.get("intensity_mean", np.full(ids.size, np.nan))
    columns: dict[str, np.ndarray] = {"area_px": area}
    u = calibration.suffix if calibration else None
    scale = calibration.pixel_size if calibration else 1.0
    if u:
        columns[f"area_{u}2"] = area * scale ** 2
    for stem, key in _LENGTHS:
        columns[f"{stem}_px"] = table[key]
        if u:
            columns[f"{stem}_{u}"] = table[key] * scale
    columns.update(circularity=circularity, solidity=table["solidity"], aspect_ratio=aspect,
                   mean_intensity=mean_intensity,
                   centroid_x_px=table["centroid-1"], centroid_y_px=table["centroid-0"])
    if u:
        columns[f"centroid_x_{u}"] = table["centroid-1"] * scale
        columns[f"centroid_y_{u}"] = table["centroid-0"] * scale
    columns.update(bbox_x0=table["bbox-1"], bbox_y0=table["bbox-0"],
                   bbox_x1=table["bbox-3"], bbox_y1=table["bbox-2"])
    names = [_class_name(int(c), class_names) for c in object_class]
    lists = {k: np.asarray(v).tolist() for k, v in columns.items()}
    rows = []
    for i, object_id in enumerate(ids.tolist()):
        row = {"image": image_name, "object_id": object_id, "class": int(object_class[i]),
               "class_name": names[i], "touches_border": int(border[i])}
        for key, values in lists.items():
            row[key] = values[i]
        for key in ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"):
            row[key] = int(row[key])
        rows.append(row)
    return rows


def _class_name(value: int, names: Sequence[str] | None) -> str:
    if names is not None and 0 <= value < len(names):
        return str(names[value])
    return str(value)


# --------------------------------------------------------------------------
# statistics


def size_statistics(diameters: Iterable[float]) -> dict:
    """Number-based statistics of a list of diameters: ``n``, ``mean``,
    ``std``, ``min``, ``d10``, ``d50`` (the median), ``d90``, ``max``.
    Empty input gives n = 0 and NaN elsewhere."""
    values = np.asarray(list(diameters) if not isinstance(diameters, np.ndarray) else diameters, float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"n": 0, **{k: float("nan") for k in ("mean", "std", "min", "d10", "d50", "d90", "max")}}
    d10, d50, d90 = np.percentile(values, [10, 50, 90])
    return {"n": int(values.size), "mean": float(values.mean()), "std": float(values.std()),
            "min": float(values.min()), "d10": float(d10), "d50": float(d50), "d90": float(d90),
            "max": float(values.max())}


_STAT_KEYS = ("mean", "std", "d10", "d50", "d90")


def summary_columns(calibration: Calibration | None = None, class_names: Sequence[str] | None = None) -> list[str]:
    """The columns of :func:`summarise_image` (one row per photo in summary.csv)."""
    columns = ["image", "width_px", "height_px", "count", "count_measured", "count_border",
               "area_fraction"]
    if class_names is not None and len(class_names) > 2:
        columns += [f"count_{_safe(name)}" for name in class_names[1:]]
    units = ["px"] + ([calibration.suffix] if calibration else [])
    for u in units:
        columns += [f"equivalent_diameter_{key}_{u}" for key in _STAT_KEYS]
    return columns


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(name)).strip("_") or "class"


def diameters_for_distribution(rows: Sequence[dict], *, include_border: bool = False) -> np.ndarray:
    """Equivalent diameters (pixels) of the objects that enter the size
    distribution: by default those not touching the photo's edge."""
    return np.asarray([r["equivalent_diameter_px"] for r in rows
                       if include_border or not r["touches_border"]], float)


def summarise_image(
    rows: Sequence[dict],
    *,
    image_shape: tuple[int, int],
    image_name: str = "",
    pixel_size: float | Calibration | None = None,
    unit: str = "µm",
    class_names: Sequence[str] | None = None,
    include_border: bool = False,
) -> dict:
    """One photo's summary (a row of summary.csv).

    ``count`` is every object; objects touching the photo's edge are cut
    off, so by default (``include_border=False``) they are left out of the
    size distribution and counted separately in ``count_border``;
    ``count_measured`` is the number that went into the diameter statistics.
    ``area_fraction`` is the fraction of the photo covered by all objects.
    Diameter statistics are number-based (every object counts once);
    ``d50`` is the median.
    """
    calibration = as_calibration(pixel_size, unit)
    height, width = int(image_shape[0]), int(image_shape[1])
    border = sum(1 for r in rows if r["touches_border"])
    diameters = diameters_for_distribution(rows, include_border=include_border)
    summary = {"image": image_name, "width_px": width, "height_px": height,
               "count": len(rows), "count_measured": int(diameters.size), "count_border": border,
               "area_fraction": float(sum(r["area_px"] for r in rows)) / max(1, width * height)}
    if class_names is not None and len(class_names) > 2:
        counts = np.bincount([int(r["class"]) for r in rows], minlength=len(class_names))
        for value, name in enumerate(class_names[1:], start=1):
            summary[f"count_{_safe(name)}"] = int(counts[value])
    summary.update(_diameter_columns(diameters, calibration))
    return summary


def _diameter_columns(diameters_px: np.ndarray, calibration: Calibration | None) -> dict:
    stats = size_statistics(diameters_px)
    out = {f"equivalent_diameter_{k}_px": stats[k] for k in _STAT_KEYS}
    if calibration is not None:
        out.update({f"equivalent_diameter_{k}_{calibration.suffix}": stats[k] * calibration.pixel_size
                    for k in _STAT_KEYS})
    return out


def summarise_folder(
    image_summaries: Sequence[dict],
    diameters_px: Iterable[float],
    *,
    pixel_size: float | Calibration | None = None,
    unit: str = "µm",
) -> dict:
    """The whole folder's summary: photo and object counts over every photo,
    and the size statistics of all measured objects pooled (border objects
    left out as in :func:`summarise_image`; pass the same diameters that
    :func:`diameters_for_distribution` gives per photo)."""
    calibration = as_calibration(pixel_size, unit)
    diameters = np.asarray(list(diameters_px) if not isinstance(diameters_px, np.ndarray) else diameters_px,
                           float)
    pixels = sum(s["width_px"] * s["height_px"] for s in image_summaries)
    covered = sum(s["area_fraction"] * s["width_px"] * s["height_px"] for s in image_summaries)
    summary = {"image": "ALL", "photos": len(image_summaries),
               "count": int(sum(s["count"] for s in image_summaries)),
               "count_measured": int(diameters.size),
               "count_border": int(sum(s["count_border"] for s in image_summaries)),
               "area_fraction": covered / pixels if pixels else float("nan")}
    summary.update(_diameter_columns(diameters, calibration))
    return summary
