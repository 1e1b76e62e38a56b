"""Mistakes a user makes on the command line: each gets one line on stderr,
exit status 2, and nothing is written."""

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from app import run_cli
from conftest import ROOT
from core.imageio import write_image
from helpers import run_app, tree_digest
from synthetic.scenes import render_particle_scene

pytestmark = pytest.mark.slow  # child processes and the bundled model

BUNDLED = ROOT / "checkpoints"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_inputs") / "photos"
    folder.mkdir()
    image, _ = render_particle_scene((96, 128), count=6, radius=(5, 8), seed=2)
    write_image(folder / "p.png", image)
    return folder


def one_line_error(capsys, argv) -> str:
    """Run the command in this process; it must exit 2 with one line on stderr."""
    try:
        status = run_cli([str(a) for a in argv])
    except SystemExit as exc:  # argument mistakes
        status = exc.code
    err = capsys.readouterr().err.strip()
    assert status == 2, (argv, status, err)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("[")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("argv, says", [
    (["autoseg", "--images", "{photos}", "--workdir", "{wd}", "--seed", "-5"], "seed from 0"),
    (["synthesize", "--workdir", "{wd}", "--seed", "-5"], "seed from 0"),
    (["train", "--data", "{wd}", "--model", "{wd}/model", "--seed", str(2**32)], "seed from 0"),
    (["segment", "--model", BUNDLED, "--images", "{photos}", "--out", "{wd}/out", "--scale", "nan"], "scale"),
    (["segment", "--model", BUNDLED, "--images", "{photos}"], "required"),
    (["autoseg", "--images", "{photos}", "--workdir", "{wd}", "--variants", "many"], "whole number"),
])
def test_argument_mistakes(capsys, tmp_path, photos, argv, says):
    argv = [str(a).format(photos=photos, wd=tmp_path / "wd") for a in argv]
    line = one_line_error(capsys, argv)
    assert says in line and "--help" in line
    assert not (tmp_path / "wd").exists()


BAD_DESCRIPTIONS = {
    "object_diameter": ("object_diameter", "abc"),
    "mode": ("normalization", {"mode": "zscore"}),
    "normalisation list": ("normalization", [0.5, 99.5]),
    "no depth": ("architecture", {"base_filters": 8}),
    "tile": ("tile_size", -64),
    "one class": ("classes", ["object"]),
    "percentiles": ("normalization", {"mode": "percentile", "low": 99, "high": 1}),
}


@pytest.mark.parametrize("name", sorted(BAD_DESCRIPTIONS))
def test_an_edited_model_description_is_refused_before_any_work(capsys, tmp_path, photos, name):
    key, value = BAD_DESCRIPTIONS[name]
    model = tmp_path / "model"
    shutil.copytree(BUNDLED, model)
    meta = json.loads((model / "model.json").read_text())
    meta[key] = value
    (model / "model.json").write_text(json.dumps(meta))
    line = one_line_error(capsys, ["segment", "--model", model, "--images", photos, "--out", tmp_path / "out"])
    assert "model.json" in line and "is not a valid model description" in line, line
    assert not (tmp_path / "out").exists()


def _unwritable(tmp_path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder / "out"
    if not Path("/sys/kernel").is_dir():
        pytest.skip("running as root on a system without /sys: no folder here refuses writing")
    return Path("/sys/kernel/segloop_out")  # refuses even root


def test_an_output_folder_that_cannot_be_written(capsys, tmp_path, photos):
    out = _unwritable(tmp_path)
    line = one_line_error(capsys, ["segment", "--model", BUNDLED, "--images", photos, "--out", out])
    assert "Cannot" in line and str(out.parent) in line
    truth = tmp_path / "truth"
    truth.mkdir()
    write_image(truth / "p.png", np.zeros((96, 128), np.uint8))
    line = one_line_error(capsys, ["evaluate", "--pred", truth, "--truth", truth, "--out", out])
    assert "Cannot" in line and str(out) in line


def test_photos_that_cannot_be_read_are_named_and_the_status_says_so(capsys, tmp_path, photos):
    folder = tmp_path / "photos"
    shutil.copytree(photos, folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    status = run_cli(["segment", "--model", str(BUNDLED), "--images", str(folder), "--out", str(tmp_path / "out"),
                      "--scale", "1"])
    err = capsys.readouterr().err
    assert status == 3 and "1 photo(s) could not be read and were skipped: broken.jpg" in err
    info = json.loads((tmp_path / "out" / "segment.json").read_text())
    assert info["skipped"] == ["broken.jpg"] and info["photos"] == 1


def test_the_window_without_a_display_says_so_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    import subprocess

    if not sys.platform.startswith("linux"):
        pytest.skip("only Linux opens windows through DISPLAY / WAYLAND_DISPLAY")
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "--workdir", str(tmp_path / "wd")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: no display") and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "wd").exists()


def test_a_mistake_on_the_command_line_as_a_user_types_it(tmp_path, photos):
    before = tree_digest(photos)
    done = run_app("autoseg", "--images", photos, "--workdir", tmp_path / "wd", "--seed", "-5")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "wd").exists() and tree_digest(photos) == before


@pytest.mark.parametrize("content", [b"", np.random.default_rng(0).bytes(4096)])
def test_a_damaged_model_file_is_called_damaged(capsys, tmp_path, photos, content):
    model = tmp_path / "model"
    shutil.copytree(BUNDLED, model)
    (model / "model.keras").write_bytes(content)
    line = one_line_error(capsys, ["segment", "--model", model, "--images", photos, "--out", tmp_path / "out"])
    assert "damaged" in line and "model.keras" in line, line
    assert not (tmp_path / "out").exists()


def test_a_colour_photo_given_as_the_expert_masks_is_refused(capsys, tmp_path):
    rng = np.random.default_rng(0)
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    mask = np.zeros((40, 50), np.uint8)
    mask[5:15, 5:20] = 255
    mask[25:35, 30:45] = 255
    write_image(pred / "p.png", mask)
    write_image(truth / "p.png", rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))  # the photo, by mistake
    line = one_line_error(capsys, ["evaluate", "--pred", pred, "--truth", truth, "--out", tmp_path / "report"])
    assert "looks like a photo, not a mask" in line and "p.png" in line
    assert not (tmp_path / "report").exists()
    # a mask saved in colour (white objects on black) is still a mask
    write_image(truth / "p.png", np.dstack([mask] * 3))
    assert run_cli(["evaluate", "--pred", str(pred), "--truth", str(truth), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report").is_dir()
