"""The application as a package: `pip install .` gives a `segloop` command,
and napari opens a segmented folder through the npe2 reader."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from measurement import MeasurementCollector
from measurement.napari_reader import napari_get_reader

ROOT = Path(__file__).resolve().parents[1]


def _segmented_folder(tmp_path, pixel_size=0.5):
    from core.imageio import write_image

    photos = tmp_path / "photos"
    photos.mkdir()
    yy, xx = np.mgrid[:60, :80]
    mask = (((yy - 20) ** 2 + (xx - 20) ** 2) <= 100).astype(np.uint8)
    mask[40:55, 50:70] = 1
    photo = (50 + 120 * mask).astype(np.uint16)
    write_image(photos / "a.tif", photo)
    out = tmp_path / "out"
    with MeasurementCollector(out, pixel_size=pixel_size, unit="µm") as collector:
        collector.add("a", photo, mask, image_name="a.tif")
    (out / "segment.json").write_text(json.dumps({"sources": {"a": str(photos / "a.tif")}}))
    return out, photo, mask


def test_napari_reader_gives_the_photo_and_its_objects_at_their_pixel_size(tmp_path):
    out, photo, mask = _segmented_folder(tmp_path)
    reader = napari_get_reader(str(out))
    assert reader is not None
    layers = reader(str(out))
    assert [kind for _, _, kind in layers] == ["image", "labels"]
    (image, image_meta, _), (labels, labels_meta, _) = layers
    np.testing.assert_array_equal(image, photo)
    assert labels.shape == mask.shape and labels.max() == 2 and set(np.unique(labels[mask == 0])) == {0}
    assert image_meta["scale"] == pytest.approx((0.5, 0.5)) and labels_meta["scale"] == pytest.approx((0.5, 0.5))
    assert labels_meta["metadata"]["units"] == "µm" and labels_meta["name"] == "a objects"
    # One label image of the folder opens that photo alone.
    assert len(napari_get_reader(str(out / "a_labels.tif"))(None)) == 2


def test_napari_reader_stands_in_the_overlay_for_a_moved_photo_and_declines_other_paths(tmp_path):
    out, _, _ = _segmented_folder(tmp_path)
    (tmp_path / "photos" / "a.tif").unlink()
    image, meta, kind = napari_get_reader(str(out))(str(out))[0]
    assert kind == "image" and meta["name"] == "a_overlay.png" and meta["rgb"]
    assert napari_get_reader(str(tmp_path / "photos")) is None  # not a segmented folder
    assert napari_get_reader(str(tmp_path / "nowhere")) is None
    assert napari_get_reader([str(out), str(out)]) is None


def test_napari_manifest_names_the_reader():
    manifest = yaml.safe_load((ROOT / "measurement" / "napari.yaml").read_text())
    command = manifest["contributions"]["commands"][0]
    module, function = command["python_name"].split(":")
    assert getattr(importlib.import_module(module), function) is napari_get_reader
    reader = manifest["contributions"]["readers"][0]
    assert reader["command"] == command["id"] and reader["accepts_directories"] is True


@pytest.mark.slow  # builds and installs the package
def test_pip_install_gives_a_working_segloop_command(tmp_path):
    """`pip install .` (without downloading: the build tools and dependencies
    of this environment) puts a `segloop` command that runs the CLI and
    carries the bundled model."""
    import shutil

    source = tmp_path / "source"  # a copy: the build leaves build/ and *.egg-info where it runs
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "*.egg-info", "__pycache__", "working_directory", "docs", ".*cache"))
    prefix = tmp_path / "prefix"
    build = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                            "--prefix", str(prefix), str(source)], capture_output=True, text=True, timeout=600,
                           cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-3000:]
    site = next(prefix.glob("lib/python*/site-packages"))
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([str(prefix / "bin" / "segloop"), "--help"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: segloop "), result.stdout[:200]
    for command in ("autoseg", "segment", "fit-ccd", "label-ccd", "pipeline"):
        assert command in result.stdout
    assert (site / "checkpoints" / "model.keras").is_file() and (site / "measurement" / "napari.yaml").is_file()
    probe = subprocess.run([sys.executable, "-c", "import core.model_folder as m; print(m.BUNDLED_MODEL)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert Path(probe.stdout.strip()) == site / "checkpoints"
