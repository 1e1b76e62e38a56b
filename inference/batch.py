"""A folder of photos segmented photo by photo, resumable, in this process
or on a Dask cluster.

Each photo is one task (:class:`PhotoTask`), done by
:func:`inference.worker.segment_one` wherever it runs: it reads the photo, segments it, writes the photo's files
into a folder of its own under the *unfinished* folder beside the output
folder (``<out parent>/.<out name>.unfinished/<stem>/``, renamed into place
when complete) with a record (``record.json``) of what the folder tables
need of it. When every photo is done, the records are merged in the photos'
order into the folder tables (:func:`merge_records`), so the tables are the
same byte for byte however many workers made the photos.

Resuming: a photo is done already when its record carries the same *key*
(a hash of the model's files, the settings, the photo file's size and time
and its start scale) in the unfinished folder (a run that was killed or
cancelled) or in the output folder itself (``.segloop/<stem>.json``, a run
that completed). Such photos are not segmented again; ``force`` redoes all.

Workers (``workers`` > 0, or ``scheduler`` the address of a running Dask
scheduler): the model folder, the photos and the output folder must be
readable, and the output folder's parent writable, at the same paths from
every worker (one machine, or a shared file system), and the application
must be importable there (``pip install .``). A worker loads the model once
and keeps it for the next photos; TensorFlow in a worker uses
``threads`` threads, so that the workers share the cores rather than fight
over them, and lets GPU memory grow, so that several workers share a card.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from core.atomic import write_json_atomic
from core.progress import Progress

RECORDS = ".segloop"  # in an output folder: <stem>.json, the record of each photo done
RECORD = "record.json"  # in a photo's folder of the unfinished folder
# Above this many photos to do, the window segments on a local cluster of
# worker processes (below it, starting the workers costs more than they win).
FEW_PHOTOS = 8
# No dashboard shows it, so a local cluster's workers run without Dask's
# statistical profiler (a thread sampling the running task's stack every 10 ms).
WORKER_PROFILER = False


@dataclass
class PhotoTask:
    """One photo to segment; plain data, so that it travels to a worker."""

    path: str          # the photo (a FITS unit as 'file.fits[2]')
    stem: str          # its result files' name (core.imageio.output_stems)
    model_dir: str
    model_hash: str
    settings: dict     # SegmentSettings as a dict
    start: float       # start scale (0: the first look decides)
    key: str           # what the photo's results depend on (see photo_key)
    into: str          # the unfinished folder
    detector: bool     # a detector model: cluster catalogue and quality row too
    threads: int = 0   # TensorFlow threads in a worker process (0: TensorFlow's choice)
    held: bool = False  # had auto-segmentation's objects when last segmented (see segment.HOLD_SHARE)


def unfinished_folder(out: Path) -> Path:
    """Where the photos of a run into ``out`` are kept until the run completes."""
    out = Path(out)
    return out.parent / f".{out.name}.unfinished"


def model_fingerprint(model_dir: str | os.PathLike) -> str:
    """A hash of the model folder's files (the network and its description)."""
    from core.model_folder import META_FILE, MODEL_FILE

    digest = hashlib.sha256()
    for name in (MODEL_FILE, META_FILE):
        with open(Path(model_dir) / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _file_stamp(path: str) -> list:
    """Size and modification time of the file a photo comes from."""
    from core.imageio import split_unit

    file, _ = split_unit(Path(path))
    try:
        info = os.stat(file)
        return [info.st_size, info.st_mtime_ns]
    except OSError:
        return [None, None]


def photo_key(path: str, stem: str, model_hash: str, settings: dict, start: float, held: bool = False) -> str:
    """What a photo's results depend on, hashed: the model, the settings, the
    photo's file (name, size, time), the scale it starts from and whether
    it had auto-segmentation's objects when last segmented."""
    parts = [str(Path(path).resolve()) if Path(path).exists() else str(path), stem, _file_stamp(path),
             model_hash, settings, round(float(start), 6)]
    text = json.dumps(parts + (["held"] if held else []), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def make_tasks(files: list[Path], stems: dict[Path, str], model_dir, settings, start_scales: dict[str, float],
               into: Path, detector: bool, held: set[str] = frozenset()) -> list[PhotoTask]:
    model_hash = model_fingerprint(model_dir)
    plain_settings = json.loads(json.dumps(settings.plain(), default=list))
    tasks = []
    for path in files:
        start = float(start_scales.get(path.name, 0.0))
        stem = stems[path]
        was_held = path.name in held
        tasks.append(PhotoTask(str(path), stem, str(Path(model_dir).resolve()), model_hash, plain_settings,
                               start, photo_key(str(path), stem, model_hash, plain_settings, start, was_held),
                               str(Path(into).resolve()), detector, held=was_held))
    return tasks


# -- one photo, wherever it runs --------------------------------------------

_MODELS: dict[tuple[str, str], tuple] = {}  # (model folder, hash) -> (model, meta), per process


def worker_model(task: PhotoTask):
    """The task's model, loaded once per process (TensorFlow set up for a worker first)."""
    key = (task.model_dir, task.model_hash)
    if key not in _MODELS:
        network = _cached_model(task)
        if network is not None:
            return network
        from core.quiet_tf import import_tensorflow

        tf = import_tensorflow()
        if task.threads:
            with contextlib.suppress(RuntimeError):  # set already in this process
                tf.config.threading.set_intra_op_parallelism_threads(task.threads)
                tf.config.threading.set_inter_op_parallelism_threads(task.threads)
        for gpu in tf.config.list_physical_devices("GPU"):
            with contextlib.suppress(RuntimeError, ValueError):  # several workers share a card
                tf.config.experimental.set_memory_growth(gpu, True)
        from core.model_folder import load_model
        from inference.runtime import prediction_network

        _MODELS.clear()  # one model per process
        model, meta = load_model(task.model_dir)
        _MODELS[key] = (prediction_network(model, threads=task.threads, key=task.model_hash), meta)
    return _MODELS[key]


def _cached_model(task: PhotoTask):
    """The task's model as :func:`worker_model` gives it, from the converted
    network kept for this model's files (see :func:`inference.runtime.cached_network`),
    without loading TensorFlow; None where there is none, or where it does
    not give the classes model.json names (the model is then loaded, and
    reported, as without it)."""
    from core.model_folder import read_trained_meta
    from inference.runtime import cached_network

    network = cached_network(task.model_hash, threads=task.threads)
    if network is None:
        return None
    meta = read_trained_meta(task.model_dir)
    if network.classes != len(meta["classes"]):
        return None
    _MODELS.clear()  # one model per process
    _MODELS[(task.model_dir, task.model_hash)] = (network, meta)
    return _MODELS[(task.model_dir, task.model_hash)]


# -- what is done already ------------------------------------------------------

def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return record if isinstance(record, dict) and "key" in record else None
    except (OSError, ValueError):
        return None


def done_record(task: PhotoTask, staged_out: Path) -> tuple[dict, Path] | None:
    """The record of ``task``'s photo done with the same key, and the folder
    holding its files: its folder in the unfinished folder, or the output
    folder (staged copy) of a completed run; None when it must be done."""
    folder = Path(task.into) / task.stem
    record = _read_record(folder / RECORD)
    if record is not None and record["key"] == task.key and all((folder / f).is_file() for f in record["files"]):
        return record, folder
    record = _read_record(staged_out / RECORDS / f"{task.stem}.json")
    if record is not None and record["key"] == task.key and all((staged_out / f).is_file() for f in record["files"]):
        return record, staged_out
    return None


def measured_with(settings, classes) -> dict:
    """What a photo's table rows depend on besides the photo and the model's
    mask: photos measured alike can share a folder's tables."""
    calibration = settings.calibration
    return {"pixel_size": calibration.pixel_size if calibration else None,
            "unit": calibration.unit if calibration else None,
            "classes": list(classes), "include_border": settings.include_border, "split": settings.split}


def earlier_records(staged_out: Path, current: set[str], alike: dict) -> tuple[list[tuple[dict, Path]], list[str]]:
    """The photos of a run into the output folder before this one that are
    not among ``current`` (stems) and whose files are all still there: the
    records of those measured ``alike`` (see :func:`measured_with`), in name
    order, and the names of the others."""
    kept, other = [], []
    for path in sorted((staged_out / RECORDS).glob("*.json")):
        if path.stem in current:
            continue
        record = _read_record(path)
        if record is None or not isinstance(record.get("files"), list) or not isinstance(record.get("measure"), dict):
            continue
        if not all((staged_out / f).is_file() for f in record["files"]):
            continue  # its files were removed: the photo is no longer in the folder
        if record.get("measured_with") == alike:
            kept.append((record, staged_out))
        else:
            other.append(str(record.get("image", path.stem)))
    return kept, other


def clean_unfinished(into: Path, *, force: bool) -> None:
    """Remove what a killed worker left half-made, and with ``force`` every
    photo done before; photos of other runs (another model, other settings)
    are replaced when their photo is done again."""
    if force:
        shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True, exist_ok=True)
    for entry in into.iterdir():
        if entry.name.startswith(".") and ".part-" in entry.name:
            shutil.rmtree(entry, ignore_errors=True)


# -- merging -------------------------------------------------------------------

def _link(source: Path, target: Path) -> None:
    """``target`` becomes ``source``'s content, atomically (hard link where possible)."""
    tmp = target.with_name(f".{target.name}.part-{uuid.uuid4().hex[:8]}")
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copy2(source, tmp)
    os.replace(tmp, target)


def merge_records(records: list[tuple[dict, Path]], staged_out: Path, collector, detector) -> None:
    """Bring each photo's files into the (staged) output folder and add its
    record to the folder's tables, in the order given."""
    (staged_out / RECORDS).mkdir(parents=True, exist_ok=True)
    for record, folder in records:
        if folder != staged_out:
            for name in record["files"]:
                if name != RECORD:
                    _link(folder / name, staged_out / name)
            kept = {k: v for k, v in record.items()}
            kept["files"] = [f for f in record["files"] if f != RECORD]
            write_json_atomic(staged_out / RECORDS / f"{record['stem']}.json", kept)
        collector.add_record(record["measure"])
        if detector is not None and record.get("detector") is not None:
            detector.add_record(record["detector"])


# -- running the tasks -------------------------------------------------------

def run_in_process(tasks: list[PhotoTask], work, progress: Progress, total: int, done_before: int):
    """Yield ``work(task)`` (a photo's report) for each task, one photo after
    another, until cancelled."""
    for i, task in enumerate(tasks):
        if progress.cancelled:
            return
        progress.update(done_before + i, total, f"segmenting {Path(task.path).name}")
        yield work(task)


# Memory of one local worker process: TensorFlow, the model and one photo
# being segmented (about 0.6 GB for TensorFlow and a small model alone).
WORKER_MEMORY = 1_000_000_000


def worker_room() -> int:
    """How many local worker processes this computer can run at once: one per
    core, each with ``WORKER_MEMORY`` of free memory (at least one)."""
    from core.machine import available_memory, cores

    free = available_memory()
    return cores() if free is None else max(1, min(cores(), free // WORKER_MEMORY))


def check_local_workers(workers: int) -> None:
    """Refuse more local worker processes than :func:`worker_room`."""
    from core.errors import UserInputError
    from core.machine import available_memory, cores, gigabytes

    room = worker_room()
    if workers > room:
        free = available_memory()
        memory = f" and {gigabytes(free)} of free memory" if free is not None else ""
        raise UserInputError(f"{workers} worker processes are more than this computer can run at once: it has "
                             f"{cores()} core(s){memory}, room for {room} (each loads TensorFlow and the model, "
                             f"about {gigabytes(WORKER_MEMORY)}); give {room} or fewer")


def local_workers(photos: int) -> int:
    """How many worker processes the window segments ``photos`` photos on:
    none (this process) for a few photos, else as many as the computer has room for."""
    room = worker_room()
    return 0 if photos <= FEW_PHOTOS or room < 2 else min(room, photos)


def cluster_threads(workers: int) -> int:
    """TensorFlow threads per worker so that ``workers`` share this machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def worker_environment(threads: int) -> dict[str, str]:
    """Environment of a local worker process: numpy's BLAS and OpenMP get
    the worker's share of the cores. Dask's default for its workers (one
    thread each, and a malloc trim threshold, which turns off glibc's own
    tuning) is not used: with it a 1024x1024 photo took 6.0 s longer in a
    worker than in this process, without it 1.9 s (of about 28 s)."""
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def _as_done(futures: list, progress: Progress, poll_s: float = 0.1):
    """``futures`` as they finish; None once the user cancels."""
    import time

    pending = list(futures)
    while pending:
        if progress.cancelled:
            yield None
            return
        finished = [f for f in pending if f.done()]
        if not finished:
            time.sleep(poll_s)
            continue
        for future in finished:
            pending.remove(future)
            yield future


def _lost_photo(name: str, exc: Exception) -> str:
    """What to tell the user of a photo whose result never came back from a worker."""
    from distributed import KilledWorker

    from core.errors import describe_error

    if isinstance(exc, KilledWorker):
        return (f"{name}: the worker process segmenting it stopped, on every try (out of memory, or "
                "killed); the other photos were done")
    return f"{name}: {describe_error(exc)}"


def run_on_cluster(tasks: list[PhotoTask], work, progress: Progress, total: int, done_before: int, *,
                   workers: int = 0, scheduler: str | None = None):
    """Yield ``work(task)`` for each task as workers finish them (any order), on a
    LocalCluster of ``workers`` processes or the Dask scheduler at
    ``scheduler`` (``work``: a module-level function, which the workers
    import). A Cancel stops handing out photos and abandons the photos being
    segmented (nothing of them is kept)."""
    from dask.distributed import Client, LocalCluster

    from core.errors import UserInputError

    cluster = None
    try:
        if scheduler:
            progress.update(done_before, total, f"connecting to the Dask scheduler at {scheduler}")
            try:
                client = Client(scheduler, timeout="10s")
            except OSError as exc:
                raise UserInputError(f"Cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        else:
            progress.update(done_before, total, f"starting {workers} worker processes")
            import multiprocessing

            # A stage run in a child process of the window may start worker processes of its own.
            multiprocessing.current_process().daemon = False
            import dask

            threads = cluster_threads(workers)
            with dask.config.set({"distributed.worker.profile.enabled": WORKER_PROFILER,
                                  "distributed.nanny.pre-spawn-environ": worker_environment(threads)}):
                # Dask's own log lines stay out of the user's terminal, errors
                # included: a worker that misses the scheduler's last heartbeat
                # as the cluster closes logs a traceback there. What goes wrong
                # with a photo comes back through its future and is reported
                # in one line.
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None, silence_logs=logging.CRITICAL)
            client = Client(cluster)
            tasks = [PhotoTask(**{**asdict(t), "threads": threads}) for t in tasks]
    except (OSError, ValueError) as exc:
        if cluster is not None:
            cluster.close()
        raise UserInputError(f"Could not start the Dask workers: {exc}") from None
    try:
        count = len(client.scheduler_info().get("workers", {})) or workers
        where = f"at {scheduler}" if scheduler else "on this computer"
        if count:
            progress.log(f"Segmenting {len(tasks)} photos on {count} Dask worker processes {where}")
        else:
            progress.log(f"Segmenting {len(tasks)} photos on the Dask cluster {where}: no worker has joined it "
                         "yet, the photos wait for one")
        from distributed import KilledWorker

        done = done_before
        progress.update(done, total, f"segmenting on {count or 'the'} workers")
        # A worker that dies takes every photo it was holding with it, not
        # only the one that killed it: those photos are tried again
        # afterwards, one at a time, so that only a photo that kills its
        # worker on its own is reported lost.
        again = []
        rounds = [[(task, f"segment-{task.key}") for task in tasks]]
        while rounds:
            batch = rounds.pop(0)
            futures = [client.submit(work, task, key=key, pure=False) for task, key in batch]
            for future in _as_done(futures, progress):
                if future is None:  # cancelled: no more photos handed out, those under way abandoned
                    client.cancel(futures)
                    return
                task = batch[futures.index(future)][0]
                try:
                    report = future.result()
                except Exception as exc:  # a worker died (out of memory, killed) holding this photo
                    if isinstance(exc, KilledWorker) and len(batch) > 1:
                        again.append(task)
                        continue
                    report = {"stem": task.stem, "name": Path(task.path).name, "objects": 0, "scale": None,
                              "log": [], "unreadable": None, "error": _lost_photo(Path(task.path).name, exc)}
                done += 1
                progress.update(done, total,
                                f"segmenting on {count or 'the'} workers: {done} of {total} photos done")
                yield report
            if again:
                progress.log(f"{len(again)} photo(s) were on a worker process that stopped: trying each again "
                             "on its own")
                rounds = [[(task, f"segment-{task.key}-again")] for task in again]
                again = []
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
