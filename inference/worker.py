"""One photo of the segment stage, wherever it runs (this process or a
Dask worker): read, segmented, measured, and its files written into a
folder of its own with the record the folder's tables need of it."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from core.atomic import write_json_atomic
from core.errors import UserInputError, describe_error, first_line, user_error_from
from core.gray import is_blank
from core.model_folder import class_names
from inference.fallback import BLIND_SHARE, HOLD_SHARE, auto_reading, classical_if_model_blind
from inference.photo import segment_photo
from inference.settings import SegmentSettings


def segment_one(task) -> dict:
    """Segment one photo (a :class:`inference.batch.PhotoTask`) into its
    folder of the unfinished folder, in this process or in a worker's.

    Returns a small report: ``stem``, ``name``, ``objects``, ``scale``,
    ``log`` (lines to show), and ``unreadable`` (the reason) for a photo
    that could not be read or ``error`` for one that failed otherwise;
    nothing of a photo that fails is left behind."""

    from core.errors import ImageReadError
    from core.imageio import read_image

    name = Path(task.path).name
    report = {"stem": task.stem, "name": name, "objects": 0, "scale": None, "log": [],
              "unreadable": None, "error": None}
    try:
        image = read_image(Path(task.path), warn=report["log"].append)
    except ImageReadError as exc:
        report["unreadable"] = str(exc)
        return report
    into = Path(task.into)
    part = into / f".{task.stem}.part-{uuid.uuid4().hex[:8]}"
    try:
        record = _segment_into(task, image, part)
        done = into / task.stem
        if done.exists():
            shutil.rmtree(done)
        os.rename(part, done)
    except Exception as exc:  # this photo fails (out of memory, a damaged frame); the others go on
        shutil.rmtree(part, ignore_errors=True)
        full = user_error_from(exc)
        if full is not None:  # a full disk: not this photo's fault, and no other photo would fare better
            report["no_space"] = str(full)
        report["error"] = f"{name}: {first_line(exc) if isinstance(exc, UserInputError) else describe_error(exc)}"
        return report
    report["objects"] = record["objects"]
    report["scale"] = record["scale"]
    if record["objects"] == 0 and is_blank(image):
        report["log"].append(f"{name}: a blank photo (no contrast), no objects")
    elif record.get("reading") == "auto-segmentation" and task.held:
        report["log"].append(f"{name}: {record['objects']} objects (auto-segmentation's, as when last "
                             "segmented: the model covers less than half of them)")
    elif record.get("reading") == "auto-segmentation":
        report["log"].append(f"{name}: {record['objects']} objects (the model saw next to none of the objects "
                             "auto-segmentation finds: its objects are kept instead)")
    else:
        report["log"].append(f"{name}: {record['objects']} objects (segmented at scale {record['scale']:.2f})")
    return report


def _segment_into(task, image, folder: Path) -> dict:
    from inference import batch
    from measurement.exports import photo_record, write_measurements

    settings = SegmentSettings.from_plain(task.settings)
    model, meta = batch.worker_model(task)
    classes = class_names(meta)
    auto = auto_reading(image)  # auto-segmentation for the scale check and the fallback, made once
    mask, scale, foreground = segment_photo(model, meta, image, scale=settings.scale, tile=settings.tile,
                                            flips=settings.flips, threshold=settings.threshold,
                                            start=task.start, return_foreground=True, reading=auto)
    reading = "model"
    if settings.fallback and len(classes) == 2 and not task.detector:
        def sure_objects() -> np.ndarray:
            from inference.confident import model_sure_objects

            found = model_sure_objects(model, meta, image, scale, foreground, tile=settings.tile)
            return np.where(np.isin(found.labels, found.chosen), found.labels, 0)

        classical = classical_if_model_blind(image, mask, HOLD_SHARE if task.held else BLIND_SHARE,
                                             sure_objects=sure_objects, reading=auto)
        if classical is not None:
            mask, reading = classical, "auto-segmentation"
    folder.mkdir(parents=True)
    name = Path(task.path).name
    measured = write_measurements(folder, task.stem, image, mask, pixel_size=settings.calibration,
                                  class_names=classes, image_name=name,
                                  split=settings.split, include_border=settings.include_border,
                                  formats=settings.formats)
    detector = None
    if task.detector:
        from detector.outputs import DetectorCollector
        from detector.overscan import frame_overscan, parse_overscan

        overscan = frame_overscan(task.path, parse_overscan(settings.overscan))
        measured_frame = DetectorCollector(folder, gain=settings.gain, overscan=overscan)
        detector = measured_frame.measure(folder, task.stem, image, mask, image_name=name)
        detector.pop("clusters")
    path = Path(task.path)
    record = {"key": task.key, "image": name, "stem": task.stem,
              "source": str(path.resolve()) if path.exists() else str(path),
              "scale": round(float(scale), 4), "objects": measured.count, "reading": reading,
              "measured_with": batch.measured_with(settings, classes),
              "files": sorted(p.name for p in folder.iterdir()),
              "measure": photo_record(measured, coco="coco" in settings.formats), "detector": detector}
    write_json_atomic(folder / batch.RECORD, record)
    return record
