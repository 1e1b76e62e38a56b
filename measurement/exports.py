"""Files that carry the measurements out of the application.

Per photo ``<stem>``, :func:`write_measurements` writes into the output folder::

    <stem>_mask.png      class index per pixel (uint8, 0 = background)
    <stem>_labels.tif    instance labels (uint16; uint32 beyond 65535 objects), with the pixel
                         size when calibrated (ImageJ metadata; OME-TIFF for uint32)
    <stem>_rois.zip      ImageJ ROI set: one polygon per object, named by its object_id
    <stem>_objects.geojson  QuPath detections: outline, class and measurements per object
    <stem>_overlay.png   the photo with object outlines and ids drawn over it
    <stem>_objects.csv   one row per object (columns: measurement.measure.object_columns)

and :class:`MeasurementCollector` adds, for the whole folder::

    objects.csv          one row per object of every photo
    summary.csv          one row per photo (columns: measurement.measure.summary_columns)
    summary_all.csv      one row: totals and the pooled size distribution
    annotations.json     COCO instances: every object of every photo as an exact RLE mask
    size_histogram.png   equivalent-diameter histogram with cumulative curve

CSV files are UTF-8 with a header row, sizes carry their unit in the column
name, empty cells mean "not defined", and every file is written atomically.
The label image opens in Fiji / ImageJ and napari, each object's pixels
holding its ``object_id`` from the CSV (see :mod:`measurement.interop`).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.atomic import atomic_path, write_text_atomic
from core.errors import UserInputError
from core.imageio import write_image, write_label_image
from measurement.calibration import Calibration
from measurement.interop import CocoCollector, write_calibrated_labels, write_geojson, write_roi_zip
from measurement.measure import (
    as_calibration,
    diameters_for_distribution,
    measure_objects,
    object_columns,
    summarise_folder,
    summarise_image,
    summary_columns,
)
from measurement.measure_plot import plot_size_histogram
from measurement.overlay import draw_overlay
from segmentation.instances import label_instances

# What a segmentation can write beside the class mask and the folder tables
# (parse_formats gives the words the command line accepts).
FORMATS = ("csv", "tiff", "roi", "geojson", "coco", "overlay")


def parse_formats(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"csv,tiff,roi"`` (or a sequence) as a tuple of :data:`FORMATS`;
    None or ``"all"`` for all of them. An unknown word is refused."""
    if text is None:
        return FORMATS
    words = [w.strip().lower() for w in (text.split(",") if isinstance(text, str) else text) if w.strip()]
    if words == ["all"]:
        return FORMATS
    unknown = [w for w in words if w not in FORMATS]
    if unknown or not words:
        raise UserInputError(f"Formats are a comma-separated choice of {', '.join(FORMATS)} (or all), "
                             f"not '{text}'")
    return tuple(w for w in FORMATS if w in words)


def format_cell(value) -> str | int:
    """CSV text for one value: 7 significant digits for floats, empty for NaN."""
    if isinstance(value, float | np.floating):
        value = float(value)
        if not np.isfinite(value):
            return ""
        return repr(float(f"{value:.7g}"))
    if isinstance(value, np.integer | np.bool_):
        return int(value)
    return value


def csv_text(rows: Sequence[dict], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_cell(row.get(c, "")) for c in columns])
    return buf.getvalue()


def write_csv(path: str | os.PathLike, rows: Sequence[dict], columns: Sequence[str]) -> Path:
    """Write rows (dicts) as a UTF-8 CSV with a header row, atomically."""
    write_text_atomic(path, csv_text(rows, columns))
    return Path(path)


@dataclass
class PhotoMeasurement:
    """What :func:`write_measurements` measured and wrote for one photo."""

    image: str
    stem: str
    rows: list[dict]
    summary: dict
    labels: np.ndarray = field(repr=False)
    classes: np.ndarray = field(repr=False)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.rows)

    def summary_text(self) -> str:
        s = self.summary
        text = f"{self.image}: {_plural(s['count'], 'object')} ({s['count_border']} touching the edge)"
        if s["count_measured"]:
            text += f", median equivalent diameter {_median_text(s)}"
        return text + "."


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _median_text(summary: dict) -> str:
    for key, value in summary.items():
        if key.startswith("equivalent_diameter_d50_") and not key.endswith("_px"):
            unit = key.rsplit("_", 1)[1].replace("um", "µm")
            return f"{value:.4g} {unit}"
    return f"{summary['equivalent_diameter_d50_px']:.4g} px"


def write_measurements(
    out_dir: str | os.PathLike,
    stem: str,
    photo: np.ndarray,
    class_mask: np.ndarray,
    *,
    pixel_size: float | Calibration | None = None,
    unit: str = "µm",
    class_names: Sequence[str] | None = None,
    image_name: str | None = None,
    split: bool = True,
    labels: np.ndarray | None = None,
    classes: np.ndarray | None = None,
    include_border: bool = False,
    write_mask: bool = True,
    per_photo_csv: bool = True,
    formats: Sequence[str] = FORMATS,
) -> PhotoMeasurement:
    """Split a photo's class mask into objects, measure them and write the
    per-photo files (see the module docstring).

    Parameters
    ----------
    out_dir : path
        Output folder (created if missing).
    stem : str
        File-name stem of the photo; files are ``<stem>_mask.png`` etc.
    photo : array
        The photo (any dtype, gray or colour), for the overlay and intensities.
    class_mask : (H, W) array
        Class index per pixel, 0 = background (bool for one class).
    pixel_size, unit
        Calibration: a :class:`Calibration` or the length of a pixel in ``unit``.
    class_names : sequence of str, optional
        Class names indexed by class value, for the ``class_name`` column.
    image_name : str, optional
        Name in the ``image`` column (default ``stem``).
    split : bool
        Split touching objects (:func:`segmentation.instances.split_touching`).
    labels, classes : arrays, optional
        Instance labels already made (e.g. edited by the user) and the class
        of each label (``classes[k]``); then ``class_mask`` is only written.
    include_border : bool
        Count objects touching the edge in the size statistics.
    write_mask, per_photo_csv : bool
        Write ``<stem>_mask.png`` and ``<stem>_objects.csv``.
    formats : sequence of str
        Which of :data:`FORMATS` to write (the mask is written regardless).

    Raises
    ------
    UserInputError
        When the photo and the mask differ in size.
    """
    photo = np.asarray(photo)
    class_mask = np.asarray(class_mask)
    if class_mask.ndim != 2 or photo.shape[:2] != class_mask.shape:
        raise UserInputError(
            f"The mask of {image_name or stem} has shape {class_mask.shape}, "
            f"but the photo is {photo.shape[1]} x {photo.shape[0]} pixels."
        )
    calibration = as_calibration(pixel_size, unit)
    name = image_name if image_name is not None else stem
    if labels is None:
        labels, classes = label_instances(class_mask, split=split)
    elif np.shape(labels) != class_mask.shape:
        raise UserInputError(f"The labels of {name} do not match its mask in size.")
    rows = measure_objects(labels, image=photo, classes=classes, class_names=class_names,
                           pixel_size=calibration, image_name=name)
    summary = summarise_image(rows, image_shape=labels.shape, image_name=name, pixel_size=calibration,
                              class_names=class_names, include_border=include_border)
    out = Path(out_dir)
    files: dict[str, Path] = {}
    if write_mask:
        files["mask"] = write_image(out / f"{stem}_mask.png", class_mask.astype(np.uint8, copy=False))
    if "tiff" in formats and calibration is not None:  # Fiji and napari then show physical sizes
        files["labels"] = write_calibrated_labels(out / f"{stem}_labels.tif", labels, calibration.pixel_size,
                                                  calibration.unit)
    elif "tiff" in formats:
        files["labels"] = write_label_image(out / f"{stem}_labels.tif", labels)
    if "roi" in formats:
        files["rois"] = write_roi_zip(out / f"{stem}_rois.zip", labels)
    if "geojson" in formats:
        files["geojson"] = write_geojson(out / f"{stem}_objects.geojson", labels, rows)
    if "overlay" in formats:
        overlay = draw_overlay(photo, labels, classes=classes, stretch=_stretch(class_names))
        files["overlay"] = write_image(out / f"{stem}_overlay.png", overlay)
    if per_photo_csv and "csv" in formats:
        files["objects"] = write_csv(out / f"{stem}_objects.csv", rows, object_columns(calibration))
    return PhotoMeasurement(name, stem, rows, summary, labels, classes, files)


def plain(value):
    """``value`` with numpy scalars, arrays and tuples turned into plain
    Python (JSON-ready), the way :func:`format_cell` writes them: a float
    stays the same float, an integer or a numpy bool becomes an int."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, np.bool_ | np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def photo_record(measured: PhotoMeasurement, *, coco: bool) -> dict:
    """What the folder's tables need of one measured photo, as plain JSON-ready
    data: its object rows, its summary row and (with ``coco``) its COCO
    annotations. The same photo gives the same folder tables whether it was
    added to a :class:`MeasurementCollector` directly or as this record,
    written in another process and read back."""
    from core.coco import image_entries

    return {"image": measured.image, "stem": measured.stem, "rows": plain(measured.rows),
            "summary": plain(measured.summary),
            "coco": image_entries(measured.labels, measured.classes) if coco else None}


def _stretch(class_names) -> str:
    """Detector frames are shown around their pedestal (see
    :func:`core.gray.detector_display`), photos by percentiles."""
    from core.model_folder import is_detector_model

    return "detector" if is_detector_model(class_names) else "percentile"


@dataclass
class FolderMeasurement:
    """What a :class:`MeasurementCollector` wrote for a folder of photos."""

    photos: int
    summary: dict
    files: dict[str, Path]
    unit: str = "px"

    def summary_text(self) -> str:
        s = self.summary
        text = (f"Measured {_plural(s['count'], 'object')} in {_plural(self.photos, 'photo')} "
                f"({s['count_border']} touching the edge, left out of the size distribution)")
        if s["count_measured"]:
            d = {k: s[f"equivalent_diameter_{k}_{self.unit}"] for k in ("d10", "d50", "d90")}
            shown = self.unit.replace("um", "µm")
            text += (f"; equivalent diameter D50 {d['d50']:.4g} {shown} "
                     f"(D10 {d['d10']:.4g}, D90 {d['d90']:.4g})")
        return text + "."


class MeasurementCollector:
    """Measures photos one at a time and gathers the folder-level files.

    Only a few numbers per object are kept (the diameters for the pooled
    histogram); rows go straight to ``objects.csv``, so memory stays flat
    however many photos are measured. ``objects.csv`` is written under a
    temporary name and appears when :meth:`finish` is called; after a
    Cancel, call :meth:`finish` to keep what was measured so far. Used as a
    context manager, :meth:`finish` runs on normal exit and the partial
    file is removed if an exception escapes.

    Examples
    --------
    >>> with MeasurementCollector(out_dir, pixel_size=0.5) as collector:  # doctest: +SKIP
    ...     for path in photos:
    ...         collector.add(path.stem, read_image(path), predict(path))
    >>> collector.result.summary_text()  # doctest: +SKIP
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        *,
        pixel_size: float | Calibration | None = None,
        unit: str = "µm",
        class_names: Sequence[str] | None = None,
        include_border: bool = False,
        split: bool = True,
        per_photo_csv: bool = True,
        formats: Sequence[str] = FORMATS,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.calibration = as_calibration(pixel_size, unit)
        self.class_names = class_names
        self.include_border = include_border
        self.split = split
        self.per_photo_csv = per_photo_csv
        self.formats = tuple(formats)
        self.columns = object_columns(self.calibration)
        self.summaries: list[dict] = []
        self._diameters: list[np.ndarray] = []
        self.result: FolderMeasurement | None = None
        self.coco = CocoCollector(list(class_names) if class_names else None)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._objects_ctx = atomic_path(self.out_dir / "objects.csv")
        self._objects_tmp = self._objects_ctx.__enter__()
        self._objects_file = open(self._objects_tmp, "w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._objects_file, lineterminator="\n")
        self._writer.writerow(self.columns)

    def add(self, stem: str, photo: np.ndarray, class_mask: np.ndarray, *,
            image_name: str | None = None, labels: np.ndarray | None = None,
            classes: np.ndarray | None = None, write_mask: bool = True) -> PhotoMeasurement:
        """Measure one photo, write its files, append its rows to objects.csv
        (arguments as for :func:`write_measurements`)."""
        if self.result is not None:
            raise RuntimeError("this collector is finished")
        measured = write_measurements(
            self.out_dir, stem, photo, class_mask, pixel_size=self.calibration,
            class_names=self.class_names, image_name=image_name, split=self.split,
            labels=labels, classes=classes,
            include_border=self.include_border, write_mask=write_mask, per_photo_csv=self.per_photo_csv,
            formats=self.formats)
        self.add_record(photo_record(measured, coco="coco" in self.formats))
        return measured

    def add_record(self, record: dict) -> None:
        """Add a photo measured before (a :func:`photo_record`, possibly read
        back from JSON) to the folder's tables."""
        if self.result is not None:
            raise RuntimeError("this collector is finished")
        rows = record["rows"]
        for row in rows:
            self._writer.writerow([format_cell(row.get(c, "")) for c in self.columns])
        self._objects_file.flush()
        self.summaries.append(record["summary"])
        if "coco" in self.formats and record.get("coco") is not None:
            self.coco.add_entries(record["image"], record["coco"])
        self._diameters.append(diameters_for_distribution(rows, include_border=self.include_border))

    def finish(self) -> FolderMeasurement:
        """Write objects.csv, summary.csv, summary_all.csv, size_histogram.png and annotations.json."""
        if self.result is not None:
            return self.result
        self._objects_file.close()
        self._objects_ctx.__exit__(None, None, None)
        diameters = np.concatenate(self._diameters) if self._diameters else np.zeros(0)
        folder = summarise_folder(self.summaries, diameters, pixel_size=self.calibration)
        out = self.out_dir
        files = {"objects": out / "objects.csv"}
        if "coco" in self.formats:
            files["coco"] = self.coco.write(out / "annotations.json",
                                            description="objects segmented by SegLoop (COCO instances, RLE masks)")
        files["summary"] = write_csv(out / "summary.csv", self.summaries,
                                     summary_columns(self.calibration, self.class_names))
        files["summary_all"] = write_csv(out / "summary_all.csv", [folder], list(folder))
        unit = self.calibration.suffix if self.calibration else "px"
        scale = self.calibration.pixel_size if self.calibration else 1.0
        shown = self.calibration.unit if self.calibration else "px"
        files["histogram"] = plot_size_histogram(
            diameters * scale, out / "size_histogram.png", unit=shown,
            title=f"{len(self.summaries)} photos, objects not touching the edge"
            if not self.include_border else f"{len(self.summaries)} photos")
        self.result = FolderMeasurement(len(self.summaries), folder, files, unit)
        return self.result

    def abort(self) -> None:
        """Drop the unfinished objects.csv (the per-photo files stay)."""
        if self.result is not None or self._objects_file.closed:
            return
        self._objects_file.close()
        # Leaving atomic_path with an exception deletes the temporary file.
        error = RuntimeError("measurement aborted")
        self._objects_ctx.__exit__(RuntimeError, error, None)

    def __enter__(self) -> MeasurementCollector:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()
