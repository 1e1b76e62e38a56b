"""Kill every writing stage at random points and check that nothing is lost.

Each stage runs in a child process as from the command line. A first run,
not interrupted, counts the points where the stage creates a temporary
file or renames one into place (every write and every step of saving
results passes one) and leaves the expected result. Then, for seeded
random points, a fresh copy of the starting state is made, the stage is
run again and killed (SIGKILL: no clean-up runs) at that point, and:

- what the next run (or the window, on opening the folder) does first is
  done: :func:`core.transaction.recover`;
- the invariants hold: every pooled file has exactly one index row and
  every row its files; the folder tables match the per-photo files; no
  file under a final name is half-written (every image, JSON and CSV reads);
- the working directory is either as it was before the run or as the
  uninterrupted run left it, never in between;
- a rerun finishes and equals the uninterrupted run.

Training is resumable rather than all-or-nothing: after a kill its model
folder must be a whole model with a history of consecutive epochs, and a
rerun finishes it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, TINY_EPOCHS

pytestmark = pytest.mark.slow  # kills stages in child processes

CHILD = r"""
import os, signal, sys, tempfile
root, limit, code = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path[:0] = [root, os.path.join(root, "tests")]
events = 0

def event():
    global events
    events += 1
    if limit and events >= limit:
        os.kill(os.getpid(), signal.SIGKILL)

def wrap(module, name):
    real = getattr(module, name)
    def wrapped(*args, **kwargs):
        event()
        return real(*args, **kwargs)
    setattr(module, name, wrapped)

for name in ("replace", "rename", "link"):
    wrap(os, name)
wrap(tempfile, "mkstemp")
try:
    exec(code)
finally:
    print(f"EVENTS {events}", flush=True)
"""

KILLED = -signal.SIGKILL


def run_child(code: str, limit: int, timeout: int = 300) -> tuple[int, int | None]:
    """Run ``code`` in a child killed at the ``limit``-th write point (0: never).
    Returns (exit status, number of write points when it finished)."""
    done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(limit), code],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if done.returncode not in (0, KILLED):
        raise AssertionError(f"the stage failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    events = [int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("EVENTS ")]
    return done.returncode, (events[0] if events else None)


def visible_files(folder: Path) -> list[Path]:
    """Files under ``folder`` whose path has no hidden part (staging, temporary files)."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def state(folder: Path, *, exact=lambda rel: True) -> dict[str, str]:
    """Visible file -> content hash (or '' where the content is not compared,
    e.g. tables with a time of creation in them)."""
    out = {}
    for path in visible_files(folder):
        rel = str(path.relative_to(folder))
        compare = path.suffix not in (".csv", ".json") and exact(rel)
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if compare else ""
    return out


def check_invariants(wd: Path) -> None:
    """What must hold in a working directory at any moment a user can see it."""
    from core.errors import ImageReadError
    from core.imageio import read_image

    for path in visible_files(wd):
        if path.suffix in (".png", ".tif", ".jpg"):
            try:
                read_image(path)
            except ImageReadError as exc:
                raise AssertionError(f"half-written image under a final name: {exc}") from None
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
            assert not rows or all(len(r) == len(rows[0]) for r in rows), f"a cut row in {path}"
    objects = wd / "objects"
    if objects.exists():
        with open(objects / "index.csv", newline="", encoding="utf-8") as fh:
            listed = [row["file"] for row in csv.DictReader(fh)]
        assert len(listed) == len(set(listed)), "an object listed twice"
        images = {p.name for p in visible_files(objects / "images")}
        masks = {p.name for p in visible_files(objects / "masks")}
        assert images == masks == set(listed), (
            f"pool files and index disagree: {sorted(images ^ set(listed))[:5]} {sorted(masks ^ set(listed))[:5]}")
    segmented = wd / "segmented"
    if (segmented / "objects.csv").exists():
        def rows(path):
            with open(path, newline="", encoding="utf-8") as fh:
                return list(csv.DictReader(fh))

        table = rows(segmented / "objects.csv")
        per_photo = [r for p in sorted(segmented.glob("*_objects.csv")) for r in rows(p)]
        assert len(table) == len(per_photo), "objects.csv does not match the per-photo tables"
        assert len(rows(segmented / "summary.csv")) == len(list(segmented.glob("*_mask.png")))
        info = json.loads((segmented / "segment.json").read_text(encoding="utf-8"))
        assert info["objects"] == len(table)


def kill_points(events: int, trials: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return sorted({int(n) for n in rng.integers(1, events + 1, size=trials)})


@pytest.fixture(scope="module")
def start(tiny_project, tmp_path_factory):
    """The state every trial starts from: three photos (the pool holds the
    objects of the first two), a synthetic set, a tiny model and an earlier
    segmentation of the first two photos."""
    from core.imageio import write_image
    from inference import SegmentSettings, run_segment
    from synthetic.scenes import render_particle_scene

    root = tmp_path_factory.mktemp("faults") / "start"
    shutil.copytree(tiny_project, root)
    run_segment(root / "model", root / "photos", root / "wd" / "segmented", settings=SegmentSettings(scale=1.0))
    image, _ = render_particle_scene((96, 128), count=8, radius=(6, 11), seed=43)
    write_image(root / "photos" / "p2.png", image)
    return root


STAGES = {
    # name: (code run in the child, trials, what the state compares exactly)
    "autoseg": ('from app import run_cli; sys.exit(run_cli(["autoseg", "--images", "{root}/photos", '
                '"--workdir", "{root}/wd"]))', 8, lambda rel: True),
    "synthesize": ('from app import run_cli; sys.exit(run_cli(["synthesize", "--workdir", "{root}/wd", '
                   '"--count", "8", "--size", "64"]))', 8, lambda rel: True),
    "segment": ('from app import run_cli; sys.exit(run_cli(["segment", "--model", "{root}/model", "--images", '
                '"{root}/photos", "--out", "{root}/wd/segmented", "--scale", "1"]))', 2,
                lambda rel: not rel.endswith(".png") or "_mask" in rel),
    "refine": ('from loop.refine import RefineSettings, run_refine; run_refine("{root}/photos", "{root}/wd", '
               '"{root}/model", settings=RefineSettings(epochs=1, synthetic_count=8, synthetic_size=64))', 1,
               lambda rel: rel.startswith("objects/images/")),
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_killed_anywhere_loses_nothing_and_a_rerun_finishes_it(start, tmp_path, stage):
    from core.transaction import recover

    code, trials, exact = STAGES[stage]
    reference = tmp_path / "reference"
    shutil.copytree(start, reference)
    status, events = run_child(code.format(root=reference), 0)
    assert status == 0 and events and events > 5
    before = state(start / "wd", exact=exact)
    after = state(reference / "wd", exact=exact)
    assert after != before
    killed = 0
    for n in kill_points(events, trials, seed=len(stage)):
        trial = tmp_path / f"kill_{n}"
        shutil.copytree(start, trial)
        status, _ = run_child(code.format(root=trial), n)
        killed += status == KILLED
        recover(trial / "wd")  # what the next stage, or the window on opening the folder, does first
        if stage == "refine":
            recover(trial)  # the model folder's staging lies beside it
        check_invariants(trial / "wd")
        now = state(trial / "wd", exact=exact)
        assert now in (before, after), (
            f"killed at write point {n} of {events}: neither as before nor as after "
            f"({sorted(set(now) ^ set(before))[:4]} / {sorted(set(now) ^ set(after))[:4]})")
        if n == max(kill_points(events, trials, seed=len(stage))):
            status, _ = run_child(code.format(root=trial), 0)  # the rerun
            assert status == 0
            check_invariants(trial / "wd")
            assert state(trial / "wd", exact=exact) == after
        shutil.rmtree(trial)
    print(f"{stage}: killed at {killed} of {events} write points, 0 invariant violations")
    assert killed >= 1


def test_training_killed_anywhere_leaves_a_whole_model_that_a_rerun_finishes(start, tmp_path):
    from core.model_folder import meta_problem
    from core.transaction import recover

    code = ('from helpers import tiny_training; from training.train import run_training; '
            'run_training("{root}/wd/synthetic", "{root}/model", settings=tiny_training(epochs=3))')
    reference = tmp_path / "reference"
    shutil.copytree(start, reference)
    status, events = run_child(code.format(root=reference), 0)
    assert status == 0 and events > 5

    def check_model(model: Path) -> dict:
        import zipfile

        meta = json.loads((model / "model.json").read_text(encoding="utf-8"))
        assert meta_problem(meta) is None and zipfile.is_zipfile(model / "model.keras")
        with open(model / "history.csv", newline="", encoding="utf-8") as fh:
            epochs = [int(float(r["epoch"])) for r in csv.DictReader(fh)]
        assert epochs == list(range(1, len(epochs) + 1)), f"history epochs {epochs}"
        # the saved model is the best epoch in the history: no epoch recorded against weights that were lost
        with open(model / "history.csv", newline="", encoding="utf-8") as fh:
            losses = {int(float(r["epoch"])): float(r["val_loss"]) for r in csv.DictReader(fh)}
        if meta["best_epoch"] not in losses:  # killed between saving the best epoch and writing its row
            assert meta["best_epoch"] == meta["epochs_done"] == len(epochs) + 1 and not meta["finished"]
            assert meta["metrics"]["val_loss"] <= min(losses.values()) * (1 + 1e-4)
        else:
            assert losses[meta["best_epoch"]] <= min(losses.values()) * (1 + 1e-4), (meta["best_epoch"], losses)
        assert meta["epochs_done"] >= meta["best_epoch"] and meta["epochs_done"] >= len(epochs) - 1
        return meta

    finished = check_model(reference / "model")
    assert finished["finished"] and finished["epochs_done"] == TINY_EPOCHS + 3
    for n in kill_points(events, 2, seed=5):
        trial = tmp_path / f"kill_{n}"
        shutil.copytree(start, trial)
        status, _ = run_child(code.format(root=trial), n)
        assert status == KILLED
        recover(trial)
        check_model(trial / "model")
        status, _ = run_child(code.format(root=trial), 0)  # the rerun resumes
        assert status == 0
        meta = check_model(trial / "model")
        assert meta["finished"] and meta["epochs_done"] >= TINY_EPOCHS + 3
