"""The train and evaluate subcommands, run as a user runs them."""

import subprocess
import sys

import numpy as np
import pytest
from test_train import make_discs

from conftest import ROOT
from core.imageio import write_image

pytestmark = pytest.mark.slow  # trains in child processes


def _app(*args, timeout=300):
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_train_then_evaluate_from_the_command_line(tmp_path):
    data = make_discs(tmp_path / "data", count=4, size=32)
    done = _app("train", "--data", str(data), "--model", str(tmp_path / "model"), "--epochs", "1",
                "--batch-size", "2", "--seed", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Best model (epoch 1" in done.stdout
    assert (tmp_path / "model" / "model.keras").is_file()
    assert "Traceback" not in done.stderr

    pred = tmp_path / "pred"
    for path in (data / "masks").iterdir():  # a perfect prediction of half the images
        if path.stem.endswith(("0", "1")):
            write_image(pred / f"{path.stem}_mask.png", np.asarray(__import__("PIL.Image").Image.open(path)))
    done = _app("evaluate", "--pred", str(pred), "--truth", str(data / "masks"), "--out", str(tmp_path / "rep"))
    assert done.returncode == 0, done.stderr
    assert "Evaluated 2 predicted masks" in done.stdout and "Skipped 0 predictions" in done.stdout
    assert (tmp_path / "rep" / "report.json").is_file()


def test_missing_folders_exit_2_with_one_line(tmp_path):
    for args in (("train", "--data", str(tmp_path / "none"), "--model", str(tmp_path / "m")),
                 ("evaluate", "--pred", str(tmp_path / "none"), "--truth", str(tmp_path))):
        done = _app(*args)
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        error_lines = [line for line in lines if line.startswith("error:")]
        assert len(error_lines) == 1 and "does not exist" in error_lines[0]
        assert "Traceback" not in done.stderr


def test_stage_modules_import_without_tensorflow():
    """The GUI and CLI import these at start-up; TensorFlow must wait until
    training or prediction actually starts."""
    code = ("import sys; import training.train, training.history, inference.predict, evaluation.report, "
            "evaluation.metrics, inference, measurement, detector, synthetic, segmentation, loop; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
