"""The segment stage: a trained model applied to a photo or a folder of
photos, and every object measured.

For each photo ``<stem>.<ext>`` the output folder receives ``<stem>_mask.png``
(uint8 class index, 0 background), ``<stem>_labels.tif`` (instances),
``<stem>_overlay.png`` (outlines and ids over the photo) and
``<stem>_objects.csv``; for the folder ``objects.csv`` (one row per object),
``summary.csv`` (one row per photo), ``size_histogram.png`` and
``segment.json`` (the scale each photo was segmented at). A detector model's
frames also get their cluster catalogue, hot mask and a row of the folder's
quality table (:mod:`detector.outputs`). Each photo is done by
:func:`inference.worker.segment_one` (the scale chosen as
:mod:`inference.scale` says, the final prediction averaged over the tile's
mirror images); :mod:`inference.batch` runs them here or on Dask workers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from core.atomic import write_json_atomic
from core.errors import UserInputError
from core.imageio import list_images
from core.model_folder import class_names
from core.progress import Progress
from inference.settings import SegmentResult, SegmentSettings
from inference.worker import segment_one


def _previous_record(folder: str | Path) -> dict:
    """The segment.json of an earlier run into ``folder`` ({} when there is none or it cannot be read)."""
    import json

    try:
        record = json.loads((Path(folder) / "segment.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def previous_scales(folder: str | Path) -> dict[str, float]:
    """The scale each photo was segmented at into ``folder`` (empty when unknown)."""
    try:
        return {str(k): float(v) for k, v in _previous_record(folder).get("scales", {}).items() if float(v) > 0}
    except (ValueError, TypeError, AttributeError):
        return {}


def previous_auto_segmented(folder: str | Path) -> set[str]:
    """The photos that had auto-segmentation's objects when segmented into
    ``folder`` (empty when unknown)."""
    names = _previous_record(folder).get("auto_segmented", [])
    return {str(name) for name in names} if isinstance(names, list) else set()


def _with_file_calibration(settings: SegmentSettings, files: list[Path], progress: Progress) -> SegmentSettings:
    """``settings`` measuring in the pixel size every photo carries in its
    metadata (:func:`measurement.calibration.common_file_calibration`), when
    they all carry the same; else as they are."""
    from dataclasses import replace

    from measurement.calibration import common_file_calibration

    found = common_file_calibration(files)
    if found is None:
        return settings
    progress.log(f"Sizes also in {found.unit}: {found.pixel_size:.6g} {found.unit} per pixel, read from the "
                 f"photos' {found.source} (a pixel size given or set would win).")
    return replace(settings, calibration=found)


def _names(names: list[str], most: int = 10) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def run_segment(model_dir: str | Path, images: str | Path, out: str | Path, *,
                settings: SegmentSettings | None = None, progress: Progress | None = None,
                start_scales: dict[str, float] | None = None, held: set[str] | None = None,
                workers: int = 0, scheduler: str | None = None, force: bool = False) -> SegmentResult:
    """Segment a photo or a folder of photos and measure every object.

    ``start_scales`` (photo file name -> scale) is where the scale check
    starts for the photos it names (see :func:`segment_photo`). The photos that had
    auto-segmentation's objects when last segmented into ``out`` (or those
    ``held`` names) keep them unless the model now covers half of them
    (``HOLD_SHARE``).

    ``workers`` > 0 segments the photos on a local Dask cluster of that many
    worker processes, ``scheduler`` (``tcp://host:port``) on a running Dask
    cluster; otherwise, and for a single photo, one after another in this
    process (see :mod:`inference.batch`). The results are the same.

    All or nothing: the results are written into a staged copy of ``out``
    that replaces it only when every photo is done, so a run that is
    cancelled or fails leaves ``out`` as it was (see :mod:`core.transaction`).
    Resumable: the photos done by a run that was killed or cancelled, and
    those of a completed run into ``out``, are kept and not done again by
    the next run with the same model and settings; ``force`` redoes them."""
    from core.model_folder import read_trained_meta
    from core.overlap import output_path, refuse_overlap
    from core.transaction import Transaction

    settings = settings or SegmentSettings()
    settings.check()
    progress = progress or Progress()
    if workers < 0 or workers > 1024:
        raise UserInputError(f"The number of workers must be between 1 and 1024 (0: this process), not {workers}")
    if workers and not scheduler:
        from inference.batch import check_local_workers

        check_local_workers(workers)
    files = list_images(images, what="photos folder or photo", hdu=settings.hdu)
    if settings.calibration is None:
        settings = _with_file_calibration(settings, files, progress)
    out = output_path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"The output folder is a file: {out}")
    refuse_overlap(out, [images, *files], output_kind="the output folder", input_kind="the photos",
                   remedy="choose an output folder apart from the photos")
    refuse_overlap(out, [model_dir], output_kind="the output folder", input_kind="the model folder",
                   remedy="choose an output folder apart from the model")
    read_trained_meta(model_dir)  # a wrong model folder is reported before any work
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"Cannot create the output folder {out}: {exc.strerror}") from None
    held = previous_auto_segmented(out) if held is None else held
    from inference.batch import unfinished_folder

    try:
        with Transaction(out.parent, inputs=[images, model_dir]) as tx:
            result = _segment(model_dir, files, out, tx.stage(out), settings, progress, start_scales,
                              held, workers=workers, scheduler=scheduler, force=force)
            if not result.cancelled:
                tx.commit()
    except BaseException:
        with contextlib.suppress(OSError):  # kept only when it holds photos done, for the next run
            unfinished_folder(out).rmdir()
        raise
    if not result.cancelled:
        import shutil

        shutil.rmtree(unfinished_folder(out), ignore_errors=True)
    return result


def _segment(model_dir, files: list[Path], out: Path, staged: Path, settings: SegmentSettings, progress: Progress,
             start_scales: dict[str, float] | None, held: set[str], *, workers: int, scheduler: str | None,
             force: bool) -> SegmentResult:
    """Segment ``files`` into ``staged``, the copy of ``out`` being written."""
    from core.imageio import output_stems
    from core.model_folder import is_detector_model, read_meta
    from detector.outputs import DetectorCollector
    from detector.overscan import parse_overscan
    from inference import batch
    from measurement.exports import MeasurementCollector

    meta = read_meta(model_dir)
    classes = class_names(meta)
    detector_model = is_detector_model(classes)
    into = batch.unfinished_folder(out)
    result = SegmentResult(out=str(out))
    progress.update(0, len(files), "looking for photos done before")
    tasks = batch.make_tasks(files, output_stems(files), model_dir, settings, start_scales or {}, into,
                             detector_model, held)
    batch.clean_unfinished(into, force=force)
    records: dict[str, tuple[dict, Path]] = {}
    if not force:
        for task in tasks:
            found = batch.done_record(task, staged)
            if found is not None:
                records[task.stem] = found
    todo = [t for t in tasks if t.stem not in records]
    if records:
        progress.log(f"{len(records)} of {len(tasks)} photo(s) done before with this model and these settings: "
                     "kept (force to redo them)")
    on_cluster = bool(todo) and (workers > 0 or bool(scheduler)) and len(todo) > 1
    if todo:  # a damaged model is reported once, before any photo (and loaded once here)
        progress.update(len(records), len(tasks), "loading the model")
        network, _ = batch.worker_model(todo[0])
        if not on_cluster:  # (workers load their own)
            refused = getattr(network, "onnx_refused", None)
            progress.log("The network runs on ONNX Runtime (its output checked against TensorFlow's)"
                         if hasattr(network, "session") else
                         f"The network runs on TensorFlow{f' (ONNX Runtime not used: {refused})' if refused else ''}")
    if on_cluster:
        reports = batch.run_on_cluster(todo, segment_one, progress, len(tasks), len(records), workers=workers,
                                       scheduler=scheduler)
    else:
        reports = batch.run_in_process(todo, segment_one, progress, len(tasks), len(records))
    failed: dict[str, str] = {}
    by_stem = {t.stem: t for t in todo}
    for report in reports:
        if report.get("no_space"):
            raise UserInputError(report["no_space"])
        for line in report["log"]:
            progress.log(line)
        if report["unreadable"]:
            result.failed.append(report["name"])
            progress.log(f"skipped: {report['unreadable']}")
        elif report["error"]:
            failed[report["stem"]] = report["error"]
            progress.log(f"failed: {report['error']}")
        else:
            records[report["stem"]] = batch.done_record(by_stem[report["stem"]], staged)
    if progress.cancelled:
        result.cancelled = True
        return result
    unreadable = set(result.failed)
    result.failed = [Path(t.path).name for t in tasks
                     if Path(t.path).name in unreadable or t.stem in failed]
    progress.update(len(tasks), len(tasks), "writing the folder's tables")
    collector = MeasurementCollector(staged, pixel_size=settings.calibration,
                                     class_names=classes, include_border=settings.include_border,
                                     split=settings.split, formats=settings.formats)
    detector = (DetectorCollector(staged, gain=settings.gain, overscan=parse_overscan(settings.overscan))
                if detector_model else None)
    done = [records[t.stem] for t in tasks if records.get(t.stem) is not None]
    # The photos segmented into this folder before, not among these, whose
    # files are still there: the folder's tables describe them too.
    earlier, left_out = batch.earlier_records(staged, {t.stem for t in tasks},
                                              batch.measured_with(settings, classes))
    if earlier:
        names = [record["image"] for record, _ in earlier]
        progress.log(f"{len(earlier)} photo(s) segmented into {out} before, not among these, are kept in its "
                     f"tables: {_names(names)}")
    if left_out:
        progress.log(f"{len(left_out)} photo(s) segmented into {out} before with another pixel size, unit or model "
                     f"keep their files there but are left out of its tables: {_names(left_out)} (segment them "
                     "again into it, or remove their files)")
    try:
        batch.merge_records(done + earlier, staged, collector, detector)
    except BaseException:
        collector.abort()
        raise
    for record, _ in done:
        result.photos += 1
        result.objects += int(record["objects"])
    result.kept_before = [record["image"] for record, _ in earlier]
    for record, _ in done + earlier:
        result.scales[record["image"]] = record["scale"]
        result.sources[record["stem"]] = record["source"]
        if record.get("reading") == "auto-segmentation":
            result.auto_segmented.append(record["image"])
    result.left_out = left_out
    folder = collector.finish()
    if detector is not None:
        detector.finish()
    result.measurement_text = folder.summary_text()
    if result.photos == 0 and result.failed:
        if failed:
            raise UserInputError(f"None of the {len(files)} photo(s) could be segmented (first: "
                                 f"{next(iter(failed.values()))})")
        raise UserInputError(f"None of the {len(files)} photo(s) could be read (first: {result.failed[0]})")
    write_json_atomic(staged / "segment.json", {"model": str(Path(model_dir).resolve()),
                                             "settings": settings.plain(), "scales": result.scales,
                                             "photos": result.photos, "objects": result.objects,
                                             "skipped": result.failed, "sources": result.sources,
                                             "auto_segmented": result.auto_segmented,
                                             "kept_from_before": result.kept_before,
                                             "left_out_of_tables": result.left_out})
    progress.update(len(files), len(files), "done")
    return result
