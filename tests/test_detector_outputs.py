"""Cluster catalogue, hot mask and quality table of segmented detector frames."""

import csv

import numpy as np
import pytest
from astropy.io import fits

from detector.outputs import (
    CLUSTER,
    DETECTOR_CLASSES,
    GLOWING,
    HOT,
    DetectorCollector,
    frame_clusters,
    hot_columns,
    hot_mask,
    is_detector_model,
)
from tests.helpers import run_app, tiny_training

PEDESTAL, NOISE, GLOW = 8800.0, 19.0, 1400.0


def _gaussian_blob(shape, y, x, sigma, charge):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    blob = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))
    return charge * blob / blob.sum()


def _frame_with_known_charges(seed=0):
    """A frame like another detector's (pedestal 8800 ADU, noise 19 ADU, a
    constant glow band of +1400 ADU over the first 40 columns), two point
    deposits of known charge (one inside the band), a straight muon, and a
    hot column; with the class mask a perfect model would draw."""
    rng = np.random.default_rng(seed)
    shape = (120, 160)
    signal = np.zeros(shape)
    signal[:, :40] += GLOW
    deposits = [(60, 20, 2.0, 20000.0), (30, 100, 1.5, 10000.0)]
    for y, x, sigma, charge in deposits:
        signal += _gaussian_blob(shape, y, x, sigma, charge)
    signal[95, 60:130] += 400.0  # a muon along a row
    signal[10:110, 140] += 2200.0  # a hot column segment
    frame = PEDESTAL + signal + rng.normal(0, NOISE, shape)
    mask = np.zeros(shape, np.uint8)
    mask[:, :40] = GLOWING
    for y, x, sigma, _ in deposits:
        yy, xx = np.mgrid[: shape[0], : shape[1]]
        mask[(yy - y) ** 2 + (xx - x) ** 2 <= (3 * sigma) ** 2] = CLUSTER
    mask[95, 60:130] = CLUSTER
    mask[10:110, 140] = HOT
    mask[5, 5] = HOT  # an isolated hot pixel is not a hot column
    return frame, mask, deposits


def test_catalogue_gives_charge_above_the_local_background_and_shapes():
    frame, mask, deposits = _frame_with_known_charges()
    rows = frame_clusters(frame, mask, pedestal=PEDESTAL, gain=2.0)
    assert len(rows) == 3
    by_place = {(round(r["y"]), round(r["x"])): r for r in rows}
    inside_glow, outside = by_place[(60, 20)], by_place[(30, 100)]
    # The glow band's 1400 ADU per pixel is not credited to the deposit in it.
    assert inside_glow["charge_adu"] == pytest.approx(20000, rel=0.05)
    assert outside["charge_adu"] == pytest.approx(10000, rel=0.05)
    assert outside["charge_e"] == pytest.approx(outside["charge_adu"] / 2.0)
    assert inside_glow["touches_glow"] == 1 and outside["touches_glow"] == 0
    assert inside_glow["shape"] == outside["shape"] == "blob"
    assert (outside["peak_y"], outside["peak_x"]) == (30, 100)
    muon = next(r for r in rows if r["shape"] == "muon")
    assert muon["length_px"] == pytest.approx(70 * 1.1547, rel=0.02) and muon["width_px"] == pytest.approx(1.1547)
    assert (muon["x_min"], muon["x_max"], muon["y_min"], muon["y_max"], muon["pixels"]) == (60, 129, 95, 95, 70)
    assert muon["charge_adu"] == pytest.approx(70 * 400, rel=0.03)


def test_worm_track_blob_and_edge():
    mask = np.zeros((40, 40), np.uint8)
    ys = [5, 5, 6, 6, 7, 8, 8, 9, 10, 10, 11]
    xs = [5, 6, 7, 8, 9, 10, 11, 12, 12, 13, 14]
    mask[ys, xs] = CLUSTER  # a short curved electron track
    mask[30:33, 0:3] = CLUSTER  # a blob cut by the left edge
    rows = frame_clusters(np.full(mask.shape, 100.0), mask, pedestal=100.0)
    assert [r["shape"] for r in rows] == ["track", "blob"]
    assert [r["at_edge"] for r in rows] == [0, 1]
    assert rows[0]["charge_e"] is None  # gain unknown: no electrons


def test_hot_columns_need_a_vertical_run():
    mask = np.zeros((20, 10), np.uint8)
    mask[2:5, 3] = HOT   # three in a column: hot column
    mask[8, 6] = HOT     # one pixel: not a column
    mask[10, 1:9] = HOT  # a hot row segment: not a column
    np.testing.assert_array_equal(hot_columns(mask), [3])
    masked = hot_mask(mask)
    assert masked[:, 3].all() and masked[8, 6] == 1 and masked[10, 1:9].all() and masked.sum() == 20 + 1 + 7


def test_collector_writes_catalogue_hot_mask_and_tables(tmp_path):
    frame, mask, _ = _frame_with_known_charges()
    collector = DetectorCollector(tmp_path, gain=None)
    collector.add("a", frame, mask, image_name="a.fits")
    collector.add("b", frame, np.where(mask == HOT, 0, mask).astype(np.uint8), image_name="b.fits")
    files = collector.finish()
    with fits.open(tmp_path / "a_hotmask.fits") as hdul:
        np.testing.assert_array_equal(hdul[0].data, hot_mask(mask))
        assert hdul[0].data.dtype == np.uint8
    quality = list(csv.DictReader(files["quality"].open()))
    assert [q["image"] for q in quality] == ["a.fits", "b.fits"]
    a = quality[0]
    assert float(a["pedestal_adu"]) == pytest.approx(PEDESTAL, abs=2)
    assert float(a["noise_adu"]) == pytest.approx(NOISE, rel=0.05)
    assert int(a["glow_columns"]) == 40 and float(a["glow_fraction"]) == pytest.approx((mask == GLOWING).mean())
    assert (int(a["hot_columns"]), int(a["hot_pixels"]), int(a["clusters"])) == (1, 101, 3)
    assert a["total_charge_e"] == ""
    columns = list(csv.DictReader(files["hot_columns"].open()))
    assert columns == [{"column": "140", "frames_hot": "1", "frames": "2", "share": "0.5"}]
    header = (tmp_path / "a_clusters.csv").read_text().splitlines()[0]
    assert header.startswith("cluster_id,x,y,x_min,y_min,x_max,y_max,pixels,charge_adu,charge_e")
    assert not list(tmp_path.glob(".*part*"))


def test_only_detector_models_get_detector_outputs():
    assert is_detector_model(list(DETECTOR_CLASSES))
    assert not is_detector_model(["background", "object"]) and not is_detector_model(None)


@pytest.fixture(scope="module")
def detector_model(tmp_path_factory):
    """A tiny model trained on simulated detector frames."""
    from synthetic import CCDSettings, run_simulate_ccd
    from training import run_training

    root = tmp_path_factory.mktemp("detector")
    run_simulate_ccd(root / "sim", settings=CCDSettings(count=12, size=64, seed=3))
    run_training(root / "sim", root / "model", settings=tiny_training(epochs=2))
    return root / "model"


@pytest.mark.slow  # trains a model and runs the application in a child process
def test_segment_cli_on_fits_frames_writes_what_physicists_use(detector_model, tmp_path):
    """The user's path: multi-amplifier FITS frames in, per amplifier a cluster
    catalogue and hot mask, one quality row each, the hot-column list."""
    from synthetic.ccd import CCDSettings, frame_rng, simulate_frame

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        units = [fits.PrimaryHDU()]
        for amp in range(2):
            frame, _ = simulate_frame(frame_rng(11, 2 * i + amp), CCDSettings(size=64))
            units.append(fits.ImageHDU(np.clip(np.rint(frame), 0, 65535).astype(np.uint16)))
        fits.HDUList(units).writeto(frames / f"run_{i}.fits")
    result = run_app("segment", "--model", detector_model, "--images", frames, "--out", tmp_path / "out",
                     "--gain", "2.5")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    stems = ["run_0_hdu1", "run_0_hdu2", "run_1_hdu1", "run_1_hdu2"]
    for stem in stems:
        header = (out / f"{stem}_clusters.csv").read_text().splitlines()[0]
        assert "charge_e" in header and "shape" in header
        with fits.open(out / f"{stem}_hotmask.fits") as hdul:
            assert hdul[0].data.shape == (64, 64) and set(np.unique(hdul[0].data)) <= {0, 1}
    quality = list(csv.DictReader((out / "quality.csv").open()))
    assert [q["image"] for q in quality] == ["run_0.fits[1]", "run_0.fits[2]", "run_1.fits[1]", "run_1.fits[2]"]
    assert all(900 < float(q["pedestal_adu"]) < 1100 for q in quality)  # the simulator's 1000 ADU
    assert (out / "hot_columns.csv").read_text().startswith("column,frames_hot,frames,share")


@pytest.mark.slow  # runs the application in a child process
@pytest.mark.parametrize("gain", ["0", "-2", "nan", "two"])
def test_a_wrong_gain_is_one_line_and_nothing_is_written(detector_model, tmp_path, gain):
    frames = tmp_path / "frames"
    frames.mkdir()
    fits.PrimaryHDU(np.full((32, 32), 1000, np.uint16)).writeto(frames / "f.fits")
    result = run_app("segment", "--model", detector_model, "--images", frames, "--out", tmp_path / "out",
                     "--gain", gain)
    assert result.returncode == 2 and "--gain" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_detector_stretch_shows_faint_clusters_that_percentiles_hide():
    """A frame with a bright glow band: a 5-sigma pixel stands out of the
    noise by three times more gray levels with the detector stretch than
    with the percentile window, and the band is still white."""
    from core.gray import to_display_uint8

    frame, _, _ = _frame_with_known_charges()
    frame[70, 120] = PEDESTAL + 5 * NOISE  # a faint one-pixel excess
    steps = {}
    for stretch in ("detector", "percentile"):
        shown = to_display_uint8(frame.astype(np.float32), stretch=stretch).astype(int)
        steps[stretch] = shown[70, 120] - np.median(shown[60:80, 100:119])
        if stretch == "detector":
            assert shown[:, :40].mean() > 200 and np.median(shown[60:80, 100:119]) > 20
    assert steps["detector"] >= 30 and steps["detector"] >= 3 * steps["percentile"], steps
