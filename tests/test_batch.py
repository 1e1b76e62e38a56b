"""Batch segmentation: on a real local Dask cluster, resumable after a kill,
and the same results however the photos were shared out."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from core.imageio import write_image
from helpers import run_app
from inference import SegmentSettings, run_segment
from inference.batch import RECORD, RECORDS, unfinished_folder
from synthetic.scenes import render_particle_scene

pytestmark = pytest.mark.slow  # trains a model, starts Dask workers

PHOTOS = 6


@pytest.fixture(scope="module")
def batch(tiny_project, tmp_path_factory):
    """Six small photos and the tiny model, and the folder one in-process run makes of them."""
    root = tmp_path_factory.mktemp("batch")
    photos = root / "photos"
    photos.mkdir()
    for i in range(PHOTOS):
        image, _ = render_particle_scene((96, 128), count=6 + i, radius=(6, 11), seed=70 + i)
        write_image(photos / f"b{i}.png", image)
    reference = run_segment(tiny_project / "model", photos, root / "reference")
    assert reference.photos == PHOTOS
    return tiny_project / "model", photos, root / "reference"


def digest(folder: Path, *, hidden: bool = True) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()
            and (hidden or not any(part.startswith(".") for part in p.relative_to(folder).parts))}


def segmented_lines(text: str) -> int:
    """How many photos a run segmented (rather than kept), from its log."""
    return sum(1 for line in text.splitlines() if "objects (segmented at scale" in line)


def test_two_workers_give_the_same_folder_byte_for_byte(batch, tmp_path):
    model, photos, _ = batch
    mixed = tmp_path / "photos"
    mixed.mkdir()
    for p in sorted(photos.iterdir()):
        (mixed / p.name).write_bytes(p.read_bytes())
    (mixed / "broken.png").write_bytes(b"\x89PNG and nothing after")
    in_process = run_segment(model, mixed, tmp_path / "one")
    assert in_process.failed == ["broken.png"] and in_process.photos == PHOTOS
    done = run_app("segment", "--model", model, "--images", mixed, "--out", tmp_path / "two", "--workers", "2")
    assert done.returncode == 3, done.stderr  # finished, with a photo that could not be read
    assert "broken.png" in done.stderr and "Traceback" not in done.stderr
    assert "on 2 Dask worker processes on this computer" in done.stderr
    assert segmented_lines(done.stderr) == PHOTOS
    # every file: masks, labels, ROI zips, overlays, the folder tables, annotations.json, segment.json
    assert digest(tmp_path / "two") == digest(tmp_path / "one")
    assert not unfinished_folder(tmp_path / "two").exists()  # nothing left beside the results


def test_a_killed_run_resumes_with_only_the_unfinished_photos(batch, tmp_path):
    model, photos, reference = batch
    out = tmp_path / "out"
    into = unfinished_folder(out)
    child = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "segment", "--model", str(model),
                              "--images", str(photos), "--out", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(list(into.glob(f"*/{RECORD}"))) < 2:
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    finished = len(list(into.glob(f"*/{RECORD}")))
    assert 2 <= finished < PHOTOS, f"{finished} photos were done when the run was killed"
    assert not out.exists()  # the results folder appears only when every photo is done

    done = run_app("segment", "--model", model, "--images", photos, "--out", out)
    assert done.returncode == 0, done.stderr
    assert f"{finished} of {PHOTOS} photo(s) done before" in done.stderr
    assert segmented_lines(done.stderr) == PHOTOS - finished  # only the unfinished photos were redone
    assert digest(out) == digest(reference)
    assert not into.exists()

    from core.progress import Progress

    again = Progress()
    run_segment(model, photos, out, progress=again)
    assert segmented_lines("\n".join(again.lines)) == 0
    assert f"{PHOTOS} of {PHOTOS} photo(s) done before" in "\n".join(again.lines)
    assert digest(out) == digest(reference)

    forced = Progress()
    run_segment(model, photos, out, progress=forced, force=True)
    assert segmented_lines("\n".join(forced.lines)) == PHOTOS
    assert digest(out) == digest(reference)


def test_other_settings_or_a_changed_photo_are_segmented_again(batch, tmp_path):
    model, photos, reference = batch
    out = tmp_path / "out"
    run_segment(model, photos, out)
    assert digest(out) == digest(reference)
    kept = run_segment(model, photos, out, settings=SegmentSettings(scale=1.0))
    assert kept.photos == PHOTOS and set(kept.scales.values()) == {1.0}  # a new scale: every photo redone
    changed = tmp_path / "photos"
    changed.mkdir()
    for p in photos.iterdir():
        (changed / p.name).write_bytes(p.read_bytes())
    run_segment(model, changed, tmp_path / "out2")
    image, _ = render_particle_scene((96, 128), count=3, radius=(6, 11), seed=99)
    write_image(changed / "b0.png", image)
    os.utime(changed / "b0.png", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    from core.progress import Progress

    log = Progress()  # keeps its log lines
    run_segment(model, changed, tmp_path / "out2", progress=log)
    redone = [line for line in log.lines if "objects (segmented at scale" in line]
    assert [line.split(":")[0] for line in redone] == ["b0.png"]


def test_a_photo_that_fails_is_reported_and_the_others_are_kept(batch, tmp_path, monkeypatch):
    model, photos, reference = batch
    import inference.worker as segment_module

    real = segment_module._segment_into

    def failing(task, image, folder):
        if task.stem == "b2":
            raise RuntimeError("the network ran out of memory")
        return real(task, image, folder)

    monkeypatch.setattr(segment_module, "_segment_into", failing)
    result = run_segment(model, photos, tmp_path / "out")
    assert result.photos == PHOTOS - 1 and result.failed == ["b2.png"]
    out = tmp_path / "out"
    assert not (out / "b2_mask.png").exists() and (out / "b3_mask.png").exists()
    info = json.loads((out / "segment.json").read_text())
    assert info["skipped"] == ["b2.png"] and info["photos"] == PHOTOS - 1


def test_records_are_kept_hidden_in_the_output_folder(batch):
    _, _, reference = batch
    records = sorted(p.name for p in (reference / RECORDS).iterdir())
    assert records == [f"b{i}.json" for i in range(PHOTOS)]
    record = json.loads((reference / RECORDS / "b0.json").read_text())
    assert record["image"] == "b0.png" and record["objects"] == len(record["measure"]["rows"])
    assert all((reference / name).is_file() for name in record["files"])


def test_workers_and_scheduler_are_checked(batch, tmp_path, capsys):
    from app import run_cli

    model, photos, _ = batch

    def one_line(*extra):
        try:
            status = run_cli(["segment", "--model", str(model), "--images", str(photos), "--out", str(tmp_path / "o"),
                              *extra])
        except SystemExit as exc:  # argument mistakes
            status = exc.code
        err = capsys.readouterr().err
        lines = [x for x in err.splitlines() if x.strip() and not x.startswith("[")]
        assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
        assert not (tmp_path / "o").exists()
        return lines[0]

    assert "not both" in one_line("--workers", "2", "--scheduler", "tcp://127.0.0.1:1")
    assert "--workers" in one_line("--workers", "-1")
    assert "Cannot reach the Dask scheduler at tcp://127.0.0.1:9" in one_line("--scheduler", "tcp://127.0.0.1:9")


def test_a_photo_whose_worker_dies_is_reported_and_the_others_are_kept(batch, tmp_path, monkeypatch):
    import dask

    import inference.stage as segment_module
    from core.progress import Progress
    from helpers import segment_or_die

    model, photos, reference = batch
    monkeypatch.setattr(segment_module, "segment_one", segment_or_die)
    log = Progress()
    # One worker that is handed every photo at once and dies on b2: the
    # photos it held with b2 are lost with it, and must be tried again.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.scheduler.worker-saturation": "inf"}):
        result = run_segment(model, photos, tmp_path / "out", progress=log, workers=1)
    assert result.failed == ["b2.png"] and result.photos == PHOTOS - 1
    text = "\n".join(log.lines)
    assert "b2.png: the worker process segmenting it stopped, on every try" in text, text
    out = tmp_path / "out"
    done, expected = digest(out, hidden=False), digest(reference, hidden=False)
    for i in set(range(PHOTOS)) - {2}:
        mine = {name: value for name, value in expected.items() if name.startswith(f"b{i}_")}
        assert mine and all(done.get(name) == value for name, value in mine.items())
    assert not any(name.startswith("b2_") for name in done)
    assert json.loads((out / "segment.json").read_text())["skipped"] == ["b2.png"]


def test_segment_on_a_dask_cluster_started_by_the_user(batch, tmp_path):
    """A scheduler and a worker started with Dask's own commands, as on a
    cluster: `segment --scheduler` gives the folder of the one-process run."""
    model, photos, reference = batch
    dask = Path(sys.executable).with_name("dask")
    address_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the application importable on the worker
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env, "cwd": tmp_path}
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", address_file], **quiet)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(address_file.read_text())["address"]
        worker = subprocess.Popen([dask, "worker", "--scheduler-file", address_file, "--nthreads", "1",
                                   "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"], **quiet)
        done = run_app("segment", "--model", model, "--images", photos, "--out", tmp_path / "out",
                       "--scheduler", address)
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    assert done.returncode == 0, done.stderr
    assert f"at {address}" in done.stderr
    assert segmented_lines(done.stderr) == PHOTOS
    assert digest(tmp_path / "out") == digest(reference)
