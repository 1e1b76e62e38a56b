"""Batch segmentation on Dask: photos per minute in this process, on a local
cluster of 1 worker and of 2 workers, on the same photos in one run;
scheduling overhead per photo; peak memory per worker process; and a run
killed half-way then resumed, counting the photos done again.

Renders ``--photos`` particle photos of 1024x1024 and segments them with a
model folder (default: the bundled ``checkpoints/``) through the same
function as ``python app.py segment [--workers N]``. The machine is shared
and noisy: the ratios between runs made one after another here are the
figures, not the absolute speeds.

    python benchmarks/bench_dask_segment.py [--photos 100] [--model DIR] [--workers 1,2] [--no-kill]
                                           [--profiler] [--no-mirrors] [--scale F]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT
from core.imageio import write_image
from core.progress import Progress
from synthetic.scenes import render_particle_scene


class PeakMemory:
    """Samples the resident memory of this process's child processes (the
    workers) every 0.2 s; the peak per process in MB."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            for child in self.me.children(recursive=True):
                try:
                    mb = child.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                self.peaks[child.pid] = max(self.peaks.get(child.pid, 0.0), mb)
            time.sleep(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def timed(label: str, fn) -> float:
    t0 = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t0
    print(f"{label}: {elapsed:.1f} s", flush=True)
    return elapsed


def scheduling_overhead(tasks: int = 500) -> float:
    """Seconds per task of a do-nothing task on a 1-worker LocalCluster."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
        client.submit(abs, -1).result()
        t0 = time.perf_counter()
        futures = [client.submit(abs, -i, pure=False) for i in range(tasks)]
        client.gather(futures)
        return (time.perf_counter() - t0) / tasks


def fixed_cost(model: Path, photo: Path) -> tuple[float, float, float]:
    """Seconds a 1-worker LocalCluster costs once per run: starting it, the
    worker's TensorFlow and model, and closing it."""
    from dask.distributed import Client, LocalCluster

    from inference.batch import make_tasks
    from inference.settings import SegmentSettings

    with tempfile.TemporaryDirectory() as tmp:
        task = make_tasks([photo], {photo: photo.stem}, model, SegmentSettings(), {}, Path(tmp), False)[0]
        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
        started = time.perf_counter() - t0
        t1 = time.perf_counter()
        client.submit(_load_only, task, pure=False).result()
        loaded = time.perf_counter() - t1
        t2 = time.perf_counter()
        client.close()
        cluster.close()
        closed = time.perf_counter() - t2
    return started, loaded, closed


def _load_only(task) -> None:
    from inference.batch import worker_model

    worker_model(task)


def kill_and_resume(model: Path, images: Path, out: Path, photos: int, workers: int, extra: list[str]) -> None:
    from inference.batch import RECORD, unfinished_folder

    command = [sys.executable, str(ROOT / "app.py"), "segment", "--model", str(model), "--images", str(images),
               "--out", str(out), "--workers", str(workers), *extra]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    into = unfinished_folder(out)
    while child.poll() is None and len(list(into.glob(f"*/{RECORD}"))) < photos // 2:
        time.sleep(0.1)
    import os

    os.killpg(child.pid, signal.SIGKILL)  # the run and its workers, no clean-up
    child.wait()
    kept = len(list(into.glob(f"*/{RECORD}")))
    t0 = time.perf_counter()
    rerun = subprocess.run(command, capture_output=True, text=True)
    redone = sum(1 for line in rerun.stderr.splitlines() if "objects (segmented at scale" in line)
    print(f"killed with {kept} of {photos} photos done; the rerun segmented {redone} "
          f"(expected {photos - kept}) in {time.perf_counter() - t0:.0f} s, exit {rerun.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--model", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--workers", default="1,2", help="cluster sizes to measure, comma-separated")
    parser.add_argument("--no-kill", action="store_true", help="leave out the kill-and-resume run")
    parser.add_argument("--no-mirrors", action="store_true",
                        help="as segment --no-mirrors: each photo predicted once, not also mirrored (the scale "
                             "check is unchanged)")
    parser.add_argument("--scale", type=float, default=0.0,
                        help="as segment --scale: every photo at this scale, no scale check (default 0: checked)")
    parser.add_argument("--profiler", action="store_true",
                        help="also a 1-worker run with Dask's statistical profiler of the workers switched on")
    args = parser.parse_args()
    from core.quiet_tf import import_tensorflow

    import_tensorflow()
    from inference.settings import SegmentSettings
    from inference.stage import run_segment

    sizes = [int(w) for w in args.workers.split(",") if w.strip()]
    settings = SegmentSettings(flips=not args.no_mirrors, scale=args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "photos"
        images.mkdir()
        for i in range(args.photos):
            image, _ = render_particle_scene((1024, 1024), count=60, radius=(10, 24), touching=0.2, seed=i)
            write_image(images / f"photo_{i:03d}.png", image)

        def segment(out: str, photos: Path = images, **kwargs):
            return run_segment(args.model, photos, Path(tmp) / out, settings=settings, **kwargs)

        segment("warmup", images / "photo_000.png", progress=Progress())
        results = {}
        results[0] = timed("in this process", lambda: segment("out0"))
        for n in sizes:
            with PeakMemory() as memory:
                results[n] = timed(f"local cluster, {n} worker(s)", lambda n=n: segment(f"out{n}", workers=n))
            workers = sorted(memory.peaks.values(), reverse=True)[:n]
            print(f"  peak resident memory of the {n} largest child processes (the workers): "
                  + ", ".join(f"{mb:.0f} MB" for mb in workers), flush=True)
        if args.profiler:
            import inference.batch

            inference.batch.WORKER_PROFILER = True
            results["1p"] = timed("local cluster, 1 worker, Dask's profiler on",
                                  lambda: segment("out1p", workers=1))
            inference.batch.WORKER_PROFILER = False
        started, loaded, closed = fixed_cost(args.model, images / "photo_000.png")
        print(f"a 1-worker cluster once per run: start {started:.1f} s, TensorFlow and the model in the worker "
              f"{loaded:.1f} s, close {closed:.1f} s", flush=True)
        merge = timed("the same run again, every photo done already (the check and the folder tables only)",
                      lambda: segment("out0"))
        overhead = scheduling_overhead()
        if not args.no_kill:
            kill_and_resume(args.model, images, Path(tmp) / "killed", args.photos, max(sizes),
                            (["--no-mirrors"] if args.no_mirrors else []) + ["--scale", str(args.scale)])
    rate = {n: 60 * args.photos / s for n, s in results.items()}
    print(f"\n{args.photos} photos of 1024x1024, model {args.model.name}"
          + (", each predicted once (--no-mirrors)" if args.no_mirrors else "")
          + (f", at scale {args.scale:g}" if args.scale else "") + ":")
    print(f"  in this process: {rate[0]:.1f} photos/min")
    for n in sizes:
        print(f"  {n} worker(s): {rate[n]:.1f} photos/min ({rate[n] / rate[0]:.2f} x in-process"
              + (f", {rate[n] / rate[1]:.2f} x 1 worker" if 1 in rate and n != 1 else "") + ")")
    if 1 in results:
        once = started + loaded + closed
        per_photo = (results[1] - once - results[0]) / args.photos
        print(f"  1 worker against in-process: {results[1] - results[0]:+.1f} s in all = {once:.1f} s once per run "
              f"(start, TensorFlow and model, close) + {per_photo:+.2f} s per photo")
    if "1p" in results:
        print(f"  1 worker with Dask's profiler on: {60 * args.photos / results['1p']:.1f} photos/min "
              f"({results['1p'] / results[1]:.2f} x the time with it off)")
    print(f"  scheduling overhead on a LocalCluster: {1000 * overhead:.2f} ms per task")
    print(f"  finding photos done and merging the folder tables: {1000 * merge / args.photos:.1f} ms per photo")


if __name__ == "__main__":
    main()
