"""A user's files are never touched: outputs that overlap inputs are
refused, output folders keep what the user put in them (hidden files,
links), an emptied pool index is never read as "delete everything", model
folders are held while they are trained, and a folder's tables describe
the photos whose files are in it.

Every case runs the command line as a user types it and compares the
user's folders byte for byte (links as links) before and after.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from app import run_cli
from conftest import ROOT
from core.errors import UserInputError
from core.imageio import write_image
from helpers import exact_tree
from synthetic.scenes import render_particle_scene

BUNDLED = ROOT / "checkpoints"


def cli(capsys, *argv) -> tuple[int, str, str]:
    """Run the command in this process: (status, its error lines, all of stderr)."""
    try:
        status = run_cli([str(a) for a in argv])
    except SystemExit as exc:
        status = exc.code
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    return status, "\n".join(errors), captured.err + captured.out


def refused(capsys, *argv) -> str:
    """The command must exit 2 with one line on stderr, no traceback."""
    status, errors, everything = cli(capsys, *argv)
    assert status == 2, (argv, status, everything)
    assert len(errors.splitlines()) == 1 and "Traceback" not in everything, everything
    assert ".staging-" not in errors, errors  # the user is told the real places
    return errors


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        image, _ = render_particle_scene((96, 128), count=6, radius=(5, 8), seed=i)
        write_image(folder / f"p{i}.png", image)
    return folder


@pytest.fixture
def frames(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    frame = rng.normal(1000, 5, (64, 80)).astype(np.float32)
    frame[30:33, 40:43] += 400
    tifffile.imwrite(folder / "frame.tif", frame, description="detector 7, amplifier A")
    return folder


# -- 1, 2, 8: an output that overlaps an input ---------------------------------

def test_fit_ccd_never_writes_its_settings_over_a_frame(capsys, tmp_path, frames):
    before = exact_tree(tmp_path)
    line = refused(capsys, "fit-ccd", "--frames", frames, "--out", frames / "frame.tif")
    assert "frame.tif" in line
    line = refused(capsys, "fit-ccd", "--frames", frames / "frame.tif", "--out", frames / "frame.tif")
    assert "is the frames" in line and "itself" in line
    assert exact_tree(tmp_path) == before
    status, _, _ = cli(capsys, "fit-ccd", "--frames", frames, "--out", tmp_path / "fit.json")
    assert status == 0 and (tmp_path / "fit.json").is_file()


def test_label_ccd_never_rewrites_the_frames_it_reads(capsys, tmp_path, frames):
    out = tmp_path / "out"
    assert cli(capsys, "label-ccd", "--frames", frames, "--out", out)[0] == 0
    before = exact_tree(tmp_path)
    line = refused(capsys, "label-ccd", "--frames", out / "images", "--out", out)
    assert "holds the frames" in line
    assert exact_tree(tmp_path) == before
    assert tifffile.TiffFile(frames / "frame.tif").pages[0].description == "detector 7, amplifier A"


def test_evaluate_writes_its_report_beside_the_predictions_not_over_the_users_file(capsys, tmp_path):
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    mask = np.zeros((20, 20), np.uint8)
    mask[5:10, 5:10] = 1
    write_image(pred / "a.png", mask)
    write_image(truth / "a.png", mask)
    (pred / "report.txt").write_text("my own notes")
    before = exact_tree(pred, truth)
    assert cli(capsys, "evaluate", "--pred", pred, "--truth", truth)[0] == 0
    assert exact_tree(pred, truth) == before
    assert (tmp_path / "pred_evaluation" / "report.txt").is_file()
    assert "is the mask folder" in refused(capsys, "evaluate", "--pred", pred, "--truth", truth, "--out", pred)
    assert exact_tree(pred, truth) == before


def test_results_beside_the_photos_in_their_own_folder_leave_the_photos_alone(capsys, photos):
    """A working directory (or results folder) inside the photos folder is
    fine: photo folders are read without their subfolders."""
    before = exact_tree(photos)
    status, _, everything = cli(capsys, "autoseg", "--images", photos, "--workdir", photos)
    assert status == 0, everything
    after = exact_tree(photos)
    assert all(after[p] == h for p, h in before.items())
    assert {Path(p).relative_to(photos).parts[0] for p in after if p not in before} == {
        "objects", "autoseg", "project.json"}


# -- 3: the staged copy keeps what the user put in an output folder --------------

def _users_output_folder(tmp_path: Path, name: str = "out") -> Path:
    out = tmp_path / name
    out.mkdir()
    (out / ".thesis.partial.txt").write_text("chapter 3, unsaved")
    (out / ".staging-notes.txt").write_text("what to stage")
    (out / "keep.txt").write_text("mine")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "big.dat").write_bytes(b"x" * 1000)
    (out / "self").symlink_to(out)  # a link to the folder itself
    (out / "other_disk").symlink_to(elsewhere)  # a link to a folder elsewhere
    (out / "a_file_link.txt").symlink_to(elsewhere / "big.dat")
    return out


def test_a_staged_copy_keeps_hidden_files_and_links_as_they_are(tmp_path):
    from core.transaction import Transaction

    out = _users_output_folder(tmp_path)
    before = exact_tree(tmp_path)
    with Transaction(tmp_path) as tx:
        staged = tx.stage(out)
        (staged / "result.png").write_bytes(b"new")
        tx.commit()
    after = exact_tree(tmp_path)
    assert after.pop(str(out / "result.png")) and after == before


def test_simulated_frames_go_beside_the_users_own_files_in_the_output_folder(capsys, tmp_path):
    out = _users_output_folder(tmp_path, "sim")
    before = exact_tree(tmp_path)
    assert cli(capsys, "simulate-ccd", "--out", out, "--count", "2", "--size", "64")[0] == 0
    after = exact_tree(tmp_path)
    made = {p for p in after if p not in before}
    assert made and all(Path(p).is_relative_to(out) for p in made)
    assert all(after[p] == before[p] for p in before)


@pytest.mark.slow  # loads TensorFlow and the bundled model
def test_segment_keeps_the_users_files_in_its_output_folder(capsys, tmp_path, photos):
    out = _users_output_folder(tmp_path)
    before = exact_tree(tmp_path / "elsewhere", photos)
    users = {p: h for p, h in exact_tree(out).items()}
    status, _, everything = cli(capsys, "segment", "--model", BUNDLED, "--images", photos, "--out", out,
                                "--scale", "1", "--no-mirrors")
    assert status == 0, everything
    after = exact_tree(out)
    assert all(after.get(p) == h for p, h in users.items())  # hidden files and links as they were
    assert (out / "objects.csv").is_file() and os.path.islink(out / "self")
    assert exact_tree(tmp_path / "elsewhere", photos) == before


# -- 4: an emptied pool index -------------------------------------------------------

@pytest.mark.parametrize("damage", ["empty", "header only", "stray quote", "removed", "a folder"])
def test_an_emptied_or_damaged_pool_index_deletes_nothing(capsys, tmp_path, photos, damage):
    wd = tmp_path / "wd"
    assert cli(capsys, "autoseg", "--images", photos, "--workdir", wd)[0] == 0
    index = wd / "objects" / "index.csv"
    text = index.read_text()
    if damage == "empty":
        index.write_text("")
    elif damage == "header only":
        index.write_text(text.splitlines()[0] + "\n")
    elif damage == "stray quote":
        index.write_text('"' + text)
    elif damage == "removed":
        index.unlink()
    else:
        index.unlink()
        index.mkdir()
    before = exact_tree(wd)
    line = refused(capsys, "autoseg", "--images", photos, "--workdir", wd)
    assert "index" in line and str(index) in line
    assert exact_tree(wd) == before


def test_an_index_without_the_photo_column_is_read(capsys, tmp_path, photos):
    wd = tmp_path / "wd"
    assert cli(capsys, "autoseg", "--images", photos, "--workdir", wd)[0] == 0
    index = wd / "objects" / "index.csv"
    index.write_text(index.read_text().replace("source_image", "photo"))
    crops = sorted(os.listdir(wd / "objects" / "images"))
    status, _, everything = cli(capsys, "autoseg", "--images", photos, "--workdir", wd)
    assert status == 0, everything
    assert set(crops) <= set(os.listdir(wd / "objects" / "images"))


# -- 5: simulated frames replace only a simulation's own frames ---------------------

def test_simulate_ccd_never_overwrites_frames_it_did_not_write(capsys, tmp_path):
    out = tmp_path / "sim"
    (out / "images").mkdir(parents=True)
    tifffile.imwrite(out / "images" / "ccd_00000.tif", np.ones((8, 8), np.float32))
    before = exact_tree(out)
    line = refused(capsys, "simulate-ccd", "--out", out, "--count", "2", "--size", "64")
    assert "ccd_00000.tif" in line and "no simulation wrote it" in line
    assert exact_tree(out) == before


def test_simulating_again_replaces_the_earlier_simulation_whole(capsys, tmp_path):
    out = tmp_path / "sim"
    assert cli(capsys, "simulate-ccd", "--out", out, "--count", "3", "--size", "64")[0] == 0
    status, _, everything = cli(capsys, "simulate-ccd", "--out", out, "--count", "2", "--size", "64", "--seed", "5")
    assert status == 0 and "frame(s) of an earlier simulation" in everything
    assert sorted(os.listdir(out / "images")) == ["ccd_00000.tif", "ccd_00001.tif"]
    assert sorted(os.listdir(out / "masks")) == ["ccd_00000.png", "ccd_00001.png"]
    assert json.loads((out / "simulation.json").read_text())["frames_written"] == 2


# -- 6: model folders are held while they are trained --------------------------------

HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from core.transaction import Transaction, hold
folder = Path({folder!r})
if {refine}:  # a self-training round: the working directory's model staged
    tx = Transaction(folder.parent).__enter__()
    tx.stage(folder)
    print("held", flush=True)
    time.sleep(120)
else:
    with hold(folder):
        print("held", flush=True)
        time.sleep(120)
"""


def _holder(folder: Path, *, refine: bool = False) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLDER.format(root=str(ROOT), folder=str(folder),
                                                                  refine=refine)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


@pytest.mark.parametrize("refine", [False, True], ids=["another training", "a self-training round"])
def test_a_model_folder_being_changed_is_not_trained_meanwhile(tmp_path, refine):
    from training import run_training

    wd = tmp_path / "wd"
    model = wd / "model"
    model.mkdir(parents=True)
    (model / "history.csv").write_text("epoch,loss\n1,0.5\n")
    child = _holder(model, refine=refine)
    try:
        before = exact_tree(model)
        with pytest.raises(UserInputError, match="is being changed by another run") as caught:
            run_training(tmp_path / "data", model)
        assert "process" in str(caught.value)
        assert exact_tree(model) == before
    finally:
        child.kill()
        child.wait()


def test_temporary_files_of_a_killed_training_go_with_the_next_one(tmp_path):
    from training import run_training

    model = tmp_path / "model"
    model.mkdir()
    leftovers = [model / ".model.ab12cd34.part.keras", model / ".curves.zz99yy88.part.png"]
    for path in leftovers:
        path.write_bytes(b"half")
    (model / ".my notes.txt").write_text("mine")
    (tmp_path / "data" / "images").mkdir(parents=True)
    with pytest.raises(UserInputError):
        run_training(tmp_path / "data", model)  # no masks: refused, after the leftovers went
    assert not any(path.exists() for path in leftovers)
    assert (model / ".my notes.txt").read_text() == "mine"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".staging-")]


# -- the mistakes that ended in a traceback -------------------------------------------

def test_the_current_folder_or_nothing_as_the_output(capsys, tmp_path, frames, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    (here / "mine.txt").write_text("mine")
    monkeypatch.chdir(here)
    before = exact_tree(here)
    for argv in (["simulate-ccd", "--out", ".", "--count", "1", "--size", "64"],
                 ["label-ccd", "--frames", frames, "--out", "."]):
        assert "is the current folder" in refused(capsys, *argv)
    for argv in (["simulate-ccd", "--out", "", "--count", "1"], ["label-ccd", "--frames", frames, "--out", ""]):
        assert "is empty" in refused(capsys, *argv)
    assert exact_tree(here) == before


def test_broken_descriptions_get_one_line(capsys, tmp_path, photos):
    wd = tmp_path / "wd"
    assert cli(capsys, "autoseg", "--images", photos, "--workdir", wd)[0] == 0
    for text, says in (("[1, 2]", "holds a list"), ('{"stages": "abc"}', "'stages' entry is not an object"),
                       ("[" * 50_000 + "]" * 50_000, "nested too deeply")):
        (wd / "project.json").write_text(text)
        before = exact_tree(wd)
        assert says in refused(capsys, "synthesize", "--workdir", wd, "--count", "2")
        assert exact_tree(wd) == before
    settings = tmp_path / "settings.json"
    settings.write_text('{"cluster_mix": [1, "a", 0]}')
    assert "cluster_mix" in refused(capsys, "simulate-ccd", "--settings", settings, "--out", tmp_path / "sim")
    assert not (tmp_path / "sim").exists()


@pytest.mark.parametrize("case", ["no model.keras", "model.keras a folder", "nested model.json"])
def test_a_wrong_model_folder_is_named_before_tensorflow_loads(capsys, tmp_path, photos, case):
    model = tmp_path / "model"
    model.mkdir()
    meta = (BUNDLED / "model.json").read_text()
    if case == "nested model.json":
        meta = "[" * 50_000 + "]" * 50_000
        (model / "model.keras").symlink_to(BUNDLED / "model.keras")
    elif case == "model.keras a folder":
        (model / "model.keras").mkdir()
    (model / "model.json").write_text(meta)
    line = refused(capsys, "segment", "--model", model, "--images", photos, "--out", tmp_path / "out")
    says = {"no model.keras": "has no trained model", "model.keras a folder": "is not a file",
            "nested model.json": "nested too deeply"}[case]
    assert says in line and not (tmp_path / "out").exists()


def test_absurd_numbers_are_refused_before_any_work(capsys, tmp_path, photos, frames):
    out = tmp_path / "out"
    for size in ("1e-300", "1e300"):
        assert "between 0.001 nm and 100 mm" in refused(capsys, "segment", "--model", BUNDLED, "--images", photos,
                                                        "--out", out, "--pixel-size", size)
    assert "worker processes are more than this computer can run" in refused(
        capsys, "segment", "--model", BUNDLED, "--images", photos, "--out", out, "--workers", "1000")
    assert "A must be below B" in refused(capsys, "label-ccd", "--frames", frames, "--out", out,
                                          "--overscan", "8:0")
    assert not out.exists()


def test_a_batch_that_does_not_fit_in_memory_is_refused(monkeypatch):
    import core.machine
    from training.session import check_training_memory

    monkeypatch.setattr(core.machine, "available_memory", lambda: 8_000_000_000)
    check_training_memory(8, 256, 8, 1024)  # the default fits
    with pytest.raises(UserInputError, match="choose a batch size of at most"):
        check_training_memory(4096, 256, 8, 1024)


def test_a_full_disk_gets_one_line_and_changes_nothing(tmp_path, photos):
    wd = tmp_path / "wd"

    def small_files():  # every file written past 1 kB fails, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "autoseg", "--images", str(photos), "--workdir",
                           str(wd), "--variants", "2"], capture_output=True, text=True, cwd=ROOT,
                          preexec_fn=small_files, timeout=300)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no space left" in errors[0] and "Traceback" not in done.stderr
    assert not [p for p in wd.rglob("*") if p.is_file()]  # nothing half-written kept


def test_a_fits_unit_by_its_name(capsys, tmp_path):
    from astropy.io import fits

    rng = np.random.default_rng(1)
    units = [fits.PrimaryHDU()] + [fits.ImageHDU(rng.normal(1000, 5, (40, 48)).astype(np.float32), name=name)
                                   for name in ("AMP1", "AMP2")]
    path = tmp_path / "mef.fits"
    fits.HDUList(units).writeto(path)
    status, _, everything = cli(capsys, "label-ccd", "--frames", f"{path}[AMP2]", "--out", tmp_path / "out")
    assert status == 0, everything
    assert sorted(os.listdir(tmp_path / "out" / "images")) == ["mef_hdu2.tif"]
    line = refused(capsys, "label-ccd", "--frames", f"{path}[AMP9]", "--out", tmp_path / "out2")
    assert "no image unit named AMP9" in line and "2 (AMP2)" in line


def test_a_flat_frame_is_labelled_without_warnings_or_nan(capsys, tmp_path):
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "flat.tif", np.full((64, 64), 1000, np.float32))
    status, _, everything = cli(capsys, "label-ccd", "--frames", tmp_path / "in", "--out", tmp_path / "out")
    assert status == 0 and "RuntimeWarning" not in everything
    assert "NaN" not in (tmp_path / "out" / "ccd_labels.json").read_text()


def test_the_pipeline_composites_smaller_images_from_small_photos(tmp_path):
    from core.progress import Progress
    from segmentation import run_autoseg
    from synthetic import SynthesisSettings, run_synthesize

    photos = tmp_path / "photos"
    photos.mkdir()
    image, _ = render_particle_scene((120, 150), count=10, radius=(12, 16), seed=3)
    write_image(photos / "small.png", image)
    run_autoseg(photos, tmp_path / "wd")
    with pytest.raises(UserInputError, match="choose a size of at most"):
        run_synthesize(tmp_path / "wd", settings=SynthesisSettings(count=2, size=256))
    lines = []

    class Log(Progress):
        def log(self, text):
            lines.append(text)

    result = run_synthesize(tmp_path / "wd", settings=SynthesisSettings(count=2, size=256, fit_size=True),
                            progress=Log())
    assert result.images == 2 and any("synthetic images of" in line for line in lines)


# -- 7: a folder's tables describe the photos whose files are in it -------------------

@pytest.mark.slow  # loads TensorFlow and the bundled model
def test_segmenting_fewer_photos_into_a_folder_keeps_the_others_in_its_tables(capsys, tmp_path, photos):
    import csv

    out = tmp_path / "out"
    more = tmp_path / "more"
    more.mkdir()
    image, _ = render_particle_scene((96, 128), count=5, radius=(5, 8), seed=9)
    write_image(more / "q.png", image)
    common = ["--model", BUNDLED, "--out", out, "--scale", "1", "--no-mirrors"]
    assert cli(capsys, "segment", "--images", photos, *common)[0] == 0
    status, _, everything = cli(capsys, "segment", "--images", more, *common)
    assert status == 0, everything
    with open(out / "summary.csv", newline="") as fh:
        listed = sorted(row["image"] for row in csv.DictReader(fh))
    assert listed == ["p0.png", "p1.png", "q.png"]
    with open(out / "objects.csv", newline="") as fh:
        assert {row["image"] for row in csv.DictReader(fh)} == set(listed)
    record = json.loads((out / "segment.json").read_text())
    assert record["kept_from_before"] == ["p0.png", "p1.png"] and "kept in its tables" in everything
    # Measured in another unit: their files stay, they are left out of the tables, and the log says so.
    status, _, everything = cli(capsys, "segment", "--images", more, *common, "--pixel-size", "0.5")
    assert status == 0 and "left out of its tables: p0.png, p1.png" in everything
    with open(out / "summary.csv", newline="") as fh:
        assert [row["image"] for row in csv.DictReader(fh)] == ["q.png"]
    assert json.loads((out / "segment.json").read_text())["left_out_of_tables"] == ["p0.png", "p1.png"]
    assert (out / "p0_mask.png").is_file()


@pytest.mark.slow  # loads TensorFlow and the bundled model
def test_a_refused_segmentation_leaves_no_unfinished_folder(capsys, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "broken.png").write_bytes(b"not a picture")
    refused(capsys, "segment", "--model", BUNDLED, "--images", photos, "--out", tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == ["photos"]


@pytest.mark.slow  # loads TensorFlow and the bundled model
def test_a_full_disk_while_segmenting_stops_the_run_with_one_line(monkeypatch, tmp_path, photos):
    import errno

    import inference.stage as stage
    import inference.worker as worker

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "p0_mask.png"))

    monkeypatch.setattr(worker, "_segment_into", full)
    with pytest.raises(UserInputError, match="no space left on the disk"):
        stage.run_segment(BUNDLED, photos, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.unfinished").exists()


def test_a_photos_folder_that_cannot_be_listed_gets_one_line(capsys, tmp_path, photos, monkeypatch):
    real = Path.iterdir

    def refuse(self):
        if self == photos:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", refuse)
    line = refused(capsys, "autoseg", "--images", photos, "--workdir", tmp_path / "wd")
    assert "cannot be read (Permission denied)" in line and not (tmp_path / "wd").exists()
