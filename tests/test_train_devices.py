"""Training across several devices (tf.distribute.MirroredStrategy), on a
machine split into two logical CPU devices, as it would run on two GPUs."""

import csv
import json
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow  # trains models

CHILD = r"""
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
import tensorflow as tf
devices = int(sys.argv[4])
if devices > 1:  # before TensorFlow starts: one CPU seen as several devices
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
from core.progress import Progress
from helpers import tiny_training
from training import run_training
progress = Progress()
result = run_training(sys.argv[2], sys.argv[3], settings=tiny_training(epochs=3), progress=progress)
print("RESULT " + json.dumps({"lines": progress.lines, "epochs": result.epochs_run}))
"""


def train(data, model, devices: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(data), str(model), str(devices)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def losses(model) -> list[float]:
    with open(model / "history.csv", newline="", encoding="utf-8") as fh:
        return [float(r["val_loss"]) for r in csv.DictReader(fh)]


def test_two_devices_train_together_and_learn_as_one_does(tiny_project, tmp_path):
    data = tiny_project / "wd" / "synthetic"
    one = train(data, tmp_path / "one", 1)
    two = train(data, tmp_path / "two", 2)
    assert not any("devices at once" in line for line in one["lines"])
    assert "Training on 2 devices at once: batches of 8 images, 4 per device." in two["lines"]
    assert one["epochs"] == two["epochs"] == 3
    meta_one = json.loads((tmp_path / "one" / "model.json").read_text())
    meta_two = json.loads((tmp_path / "two" / "model.json").read_text())
    assert meta_one["training"]["devices"] == 1 and meta_two["training"]["devices"] == 2
    # both learn: the validation loss falls (two devices take batches twice as large, so an
    # epoch has half the steps: the losses after equal epochs are not compared)
    first, second = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert min(first) < first[0] and min(second) < second[0]
    # the model trained on two devices is an ordinary model folder: it segments
    from core.imageio import read_image
    from inference.predict import load_model, predict_mask

    model, meta = load_model(tmp_path / "two")
    mask = predict_mask(model, meta, read_image(tiny_project / "photos" / "p0.png"))
    assert mask.shape == (96, 128)
