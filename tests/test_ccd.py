"""CCD detector simulator and threshold labeller: determinism, physics
proportions, exact labels, bad input and the command line."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import ROOT
from core.errors import UserInputError
from core.imageio import read_image
from core.progress import Progress
from detector.thresholds import class_scores, label_frame
from synthetic.ccd import (
    CLUSTER,
    GLOWING,
    HOT_PIXEL,
    CCDSettings,
    frame_rng,
    render_frame,
    run_simulate_ccd,
    simulate_frame,
)

QUIET = dict(glow_probability=0.0, hot_pixel_density=0.0, hot_line_rate=0.0, cluster_count_range=(0.0, 0.0))


def fraction(settings: CCDSettings, cls: int, frames: int, seed: int = 0) -> float:
    masks = [simulate_frame(frame_rng(seed, i), settings)[1] for i in range(frames)]
    return float(np.mean(np.stack(masks) == cls))


def folder_bytes(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in (".tif", ".png")}


# -- determinism ---------------------------------------------------------------

def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    settings = CCDSettings(count=3, size=64, seed=5)
    run_simulate_ccd(tmp_path / "a", settings=settings)
    run_simulate_ccd(tmp_path / "b", settings=settings)
    run_simulate_ccd(tmp_path / "c", settings=replace(settings, seed=6))
    a, b, c = (folder_bytes(tmp_path / x) for x in "abc")
    assert sorted(a) == ["images/ccd_00000.tif", "images/ccd_00001.tif", "images/ccd_00002.tif",
                         "masks/ccd_00000.png", "masks/ccd_00001.png", "masks/ccd_00002.png"]
    assert a == b
    assert all(a[name] != c[name] for name in a if name.startswith("images/"))


def test_frame_does_not_depend_on_count(tmp_path):
    run_simulate_ccd(tmp_path / "two", settings=CCDSettings(count=2, size=64, seed=9))
    run_simulate_ccd(tmp_path / "four", settings=CCDSettings(count=4, size=64, seed=9))
    for name in ("images/ccd_00001.tif", "masks/ccd_00001.png"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "four" / name).read_bytes()
    frame, mask = simulate_frame(frame_rng(9, 3), CCDSettings(size=64))
    assert np.array_equal(read_image(tmp_path / "four/images/ccd_00003.tif"), frame)
    assert np.array_equal(read_image(tmp_path / "four/masks/ccd_00003.png"), mask)


# -- files and their contract --------------------------------------------------

def test_written_files_pair_by_stem_and_json_reports_fractions(tmp_path):
    result = run_simulate_ccd(tmp_path, settings=CCDSettings(count=2, size=48, seed=1))
    for stem in ("ccd_00000", "ccd_00001"):
        frame = read_image(tmp_path / "images" / f"{stem}.tif")
        mask = read_image(tmp_path / "masks" / f"{stem}.png")
        assert frame.dtype == np.float32 and frame.shape == (48, 48)
        assert mask.dtype == np.uint8 and mask.shape == (48, 48) and mask.max() <= 3
    info = json.loads((tmp_path / "simulation.json").read_text())
    assert info["frames_written"] == 2 and info["settings"]["seed"] == 1
    assert info["classes"] == ["background", "glowing", "hot pixel", "cluster"]
    assert sum(info["class_pixel_fractions"].values()) == pytest.approx(1.0)
    assert info["class_pixel_fractions"] == result.class_fractions
    assert "2 CCD frames" in result.summary() and not result.cancelled


def test_a_cancelled_simulation_keeps_the_earlier_frames_as_they_were(tmp_path):
    from helpers import tree_digest

    class CancelAfterTwo(Progress):
        def on_update(self, done, total, message):
            if done == 2:
                self.cancel()

    out = tmp_path / "frames"
    run_simulate_ccd(out, settings=CCDSettings(count=3, size=32, seed=1))
    before = tree_digest(out)
    result = run_simulate_ccd(out, settings=CCDSettings(count=5, size=32, seed=2), progress=CancelAfterTwo())
    assert result.cancelled and result.written == 2
    assert tree_digest(out) == before
    assert json.loads((out / "simulation.json").read_text())["frames_written"] == 3
    assert "none was kept" in result.summary()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


# -- physics: proportions follow the settings ---------------------------------

def test_hot_line_fraction_follows_density():
    # Columns and rows of exactly half the side: hot fraction = rate * 0.5 / 256.
    base = CCDSettings(size=128, **{**QUIET, "hot_line_rate": 12.0, "hot_line_length_range": (0.5, 0.5)},
                       readout_noise_range=(2.0, 3.0))
    low = fraction(base, HOT_PIXEL, 30)
    high = fraction(replace(base, hot_line_rate=24.0), HOT_PIXEL, 30)
    assert low == pytest.approx(12.0 * 0.5 / 256, rel=0.2)
    assert high == pytest.approx(24.0 * 0.5 / 256, rel=0.2)
    assert 1.6 < high / low < 2.4


def test_isolated_hot_pixel_fraction_follows_density():
    settings = CCDSettings(size=128, **{**QUIET, "hot_pixel_density": 2e-3}, readout_noise_range=(2.0, 3.0))
    assert fraction(settings, HOT_PIXEL, 20) == pytest.approx(2e-3, rel=0.2)


def test_more_clusters_give_a_larger_cluster_fraction():
    few = CCDSettings(size=128, **{**QUIET, "cluster_count_range": (3.0, 3.0)})
    many = replace(few, cluster_count_range=(30.0, 30.0))
    f_few, f_many = fraction(few, CLUSTER, 25), fraction(many, CLUSTER, 25)
    assert f_few > 0
    assert 4 < f_many / f_few < 12
    assert fraction(few, HOT_PIXEL, 5) == 0 and fraction(few, GLOWING, 5) == 0


def test_default_frames_are_mostly_background_with_every_class():
    masks = np.stack([simulate_frame(frame_rng(2, i), CCDSettings(size=128))[1] for i in range(24)])
    shares = np.bincount(masks.reshape(-1), minlength=4) / masks.size
    assert shares[0] > 0.8
    assert all(shares[1:] > 0.001)
    assert shares[CLUSTER] < 0.1 and shares[HOT_PIXEL] < 0.03


def test_classes_appear_anywhere_not_in_strips():
    settings = CCDSettings(size=128, glow_probability=0.5)
    quadrants = np.zeros(4, int)
    line_columns, glow_origins = [], set()
    for i in range(30):
        frame = render_frame(frame_rng(4, i), settings)
        labels, n = ndi.label(frame.mask == CLUSTER)
        for cy, cx in ndi.center_of_mass(np.ones_like(labels), labels, range(1, n + 1)):
            quadrants[(cy >= 64) * 2 + (cx >= 64)] += 1
        columns = np.flatnonzero((frame.mask == HOT_PIXEL).sum(axis=0) >= 6)
        line_columns.extend(columns.tolist())
        if frame.info["glow"]:
            glow_origins.add(frame.info["glow"]["from"])
    assert quadrants.min() >= 0.15 * quadrants.sum()
    assert np.histogram(line_columns, bins=4, range=(0, 128))[0].min() >= 1
    assert len(glow_origins) >= 3


# -- labels are exact and learnable --------------------------------------------

@pytest.mark.parametrize("index", range(4))
def test_mask_is_consistent_with_noise_free_layers(index):
    settings = CCDSettings(size=96, glow_probability=0.7, cluster_count_range=(30.0, 60.0))
    f = render_frame(frame_rng(11, index), settings)
    assert f.frame.dtype == np.float32 and f.frame.shape == (96, 96)
    assert f.mask.dtype == np.uint8 and f.mask.shape == (96, 96)
    assert set(np.unique(f.mask)) <= {0, 1, 2, 3}
    threshold = settings.label_snr * f.noise
    assert np.all(f.cluster_seen[f.mask == CLUSTER] >= threshold[f.mask == CLUSTER])
    assert np.all(f.hot_seen[f.mask == HOT_PIXEL] >= threshold[f.mask == HOT_PIXEL])
    assert np.all(f.glow[f.mask == GLOWING] >= threshold[f.mask == GLOWING])
    background = f.mask == 0
    for layer in (f.glow, f.hot_seen, f.cluster_seen):
        assert np.all(layer[background] < threshold[background])
    # Where both compact classes are present the larger signal wins.
    both = (f.mask >= HOT_PIXEL) & (f.hot_seen >= threshold) & (f.cluster_seen >= threshold)
    winner = np.where(f.cluster_seen > f.hot_seen, CLUSTER, HOT_PIXEL)
    assert np.array_equal(f.mask[both], winner[both])


def test_labelled_clusters_stand_out_of_the_noise():
    settings = CCDSettings(size=128, glow_probability=0.0)
    excess = []
    for i in range(6):
        f = render_frame(frame_rng(12, i), settings)
        z = (f.frame - settings.pedestal_adu) / (settings.gain_adu_per_electron * f.noise)
        labels, n = ndi.label(f.mask == CLUSTER, structure=np.ones((3, 3)))
        if n:
            excess.extend(ndi.maximum(z, labels, range(1, n + 1)))
    # Every labelled object is seen: its brightest pixel is well above noise.
    assert len(excess) > 20 and np.percentile(excess, 5) > 3.0


# -- bad input -----------------------------------------------------------------

@pytest.mark.parametrize("changes, words", [
    ({"count": 0}, "number of frames"),
    ({"count": -4}, "number of frames"),
    ({"size": 8}, "frame size"),
    ({"size": 100_000}, "frame size"),
    ({"readout_noise_range": (5.0, 2.0)}, "readout_noise_range"),
    ({"cluster_mix": (0.0, 0.0, 0.0)}, "cluster_mix"),
])
def test_bad_settings_are_refused_before_writing(tmp_path, changes, words):
    out = tmp_path / "out"
    with pytest.raises(UserInputError, match=words):
        run_simulate_ccd(out, settings=replace(CCDSettings(count=2, size=32), **changes))
    assert not out.exists()


def test_output_path_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "frames"
    target.write_text("keep me")
    with pytest.raises(UserInputError, match="existing file"):
        run_simulate_ccd(target, settings=CCDSettings(count=1, size=32))
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def run_app(*args):
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_cli_writes_frames_and_masks(tmp_path):
    out = tmp_path / "sim"
    result = run_app("simulate-ccd", "--out", str(out), "--count", "3", "--size", "64", "--seed", "1")
    assert result.returncode == 0, result.stderr
    assert "3 CCD frames" in result.stdout
    stems = {p.stem for p in (out / "images").glob("*.tif")}
    assert stems == {p.stem for p in (out / "masks").glob("*.png")} == {"ccd_00000", "ccd_00001", "ccd_00002"}
    assert (out / "simulation.json").is_file()


@pytest.mark.parametrize("args", [
    ("simulate-ccd",),
    ("simulate-ccd", "--out", "x", "--size", "abc"),
    ("simulate-ccd", "--out", "x", "--count", "0"),
    ("simulate-ccd", "--out", "{tmp}/y", "--size", "8"),
])
def test_cli_bad_arguments_exit_2_without_traceback(tmp_path, args):
    result = run_app(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.strip()
    assert not (tmp_path / "y").exists()


# -- threshold labelling of frames ---------------------------------------------

def test_threshold_labeller_finds_hot_pixels_and_clusters():
    settings = CCDSettings(size=128)
    truth, pred = [], []
    for i in range(8):
        f = render_frame(frame_rng(21, i), settings)
        mask, info = label_frame(f.frame)
        assert abs(info.pedestal - settings.pedestal_adu) < 0.5 * f.info["readout_noise_e"] + 0.5
        assert info.sigma == pytest.approx(f.noise.min(), rel=0.25)
        truth.append(f.mask)
        pred.append(mask)
    scores = class_scores(np.stack(truth), np.stack(pred))
    # Chance level for a class covering ~1 % of pixels is an F1 of ~0.01.
    assert scores["hot pixel"]["f1"] > 0.85
    assert scores["cluster"]["f1"] > 0.6


def test_threshold_labeller_refuses_non_images():
    with pytest.raises(UserInputError, match="2-D"):
        label_frame(np.zeros(100))
