"""fit-ccd: simulator settings measured from another detector's frames, and
simulated frames that look like them."""

import json
from dataclasses import asdict

import numpy as np
import pytest
from astropy.io import fits

from core.errors import UserInputError
from detector import fit_settings, measure_frame, run_fit_ccd
from synthetic import load_ccd_settings
from synthetic.ccd import CCDSettings, frame_rng, render_frame
from tests.helpers import run_app
from tests.other_detector import GAIN, PEDESTAL, READ_NOISE, other_frame


@pytest.fixture(scope="module")
def fitted():
    rows = [measure_frame(other_frame(np.random.default_rng(i), 256)[0]) for i in range(6)]
    return fit_settings(rows)


def test_settings_measured_from_another_detector(fitted):
    s, measured = fitted
    assert s.pedestal_adu == pytest.approx(PEDESTAL, abs=2)
    lo, hi = s.readout_noise_range
    assert 0.9 * READ_NOISE < lo < READ_NOISE < hi < 1.1 * READ_NOISE
    # The constant band of +1400..1500 ADU over the first 40..61 columns.
    assert (s.glow_probability, s.glow_band_share, s.glow_side) == (1.0, 1.0, "left")
    assert 1250 < s.glow_amplitude_range[0] and s.glow_amplitude_range[1] < 1700
    assert 0.8 * 40 / 256 < s.glow_band_width_range[0] and s.glow_band_width_range[1] < 1.2 * 61 / 256
    assert s.glow_band_edge_px == 0.0  # a hard step from one column to the next
    # Hot columns of about 2200 ADU, some running on to the first row.
    assert s.hot_line_charge_range[1] == pytest.approx(2200, rel=0.1)
    assert s.readout_row == "first" and 0.2 < s.hot_line_to_edge <= 1.0 and s.hot_line_row_fraction < 0.2
    assert s.cluster_count_range[0] > 5 and measured["clusters"] > 50
    assert measured["glow_shape"] == "band"


def test_frames_simulated_with_fitted_settings_look_like_the_detector(fitted):
    s, _ = fitted
    s.size = 256
    for i in range(3):
        sim = render_frame(frame_rng(5, i), s)
        seen = measure_frame(sim.frame)
        assert seen["pedestal_adu"] == pytest.approx(PEDESTAL, abs=3)
        assert seen["noise_adu"] == pytest.approx(READ_NOISE, rel=0.1)
        glow = seen["glow"]
        assert glow["side"] == "left" and glow["shape"] == "band"
        assert glow["amplitude_adu"] == pytest.approx(1450, rel=0.15)
        assert 0.8 * 40 <= glow["extent_px"] <= 1.2 * 61


def test_a_soft_band_border_is_measured_and_a_hard_one_simulated():
    soft = CCDSettings(size=256, glow_probability=1.0, glow_band_share=1.0, glow_side="left",
                       glow_amplitude_range=(1450, 1450))
    edges = [measure_frame(render_frame(frame_rng(1, i), soft).frame)["glow"]["edge_px"] for i in range(3)]
    assert all(0.3 < e < 0.9 for e in edges), edges  # simulated with 0.5
    soft.glow_band_edge_px = 0.0
    hard = render_frame(frame_rng(1, 0), soft)
    width = int(np.ceil(hard.info["glow"]["band_px"]))
    assert hard.glow[0, width - 1] == 1450 and hard.glow[0, width] == 0


def test_a_decaying_glow_is_told_from_a_band():
    s = CCDSettings(size=256, glow_probability=1.0, glow_side="right", glow_amplitude_range=(400, 400),
                    glow_length_range=(0.1, 0.1))
    glow = measure_frame(render_frame(frame_rng(1, 0), s).frame)["glow"]
    assert glow["side"] == "right" and glow["shape"] == "decay"
    assert glow["decay_px"] == pytest.approx(25.6, rel=0.25)


def test_settings_file_round_trip_and_refusals(tmp_path, fitted):
    s, _ = fitted
    (tmp_path / "fit.json").write_text(json.dumps({"settings": asdict(s)}))
    assert load_ccd_settings(tmp_path / "fit.json") == s
    (tmp_path / "plain.json").write_text(json.dumps({"pedestal_adu": 500, "readout_noise_range": [3, 4]}))
    plain = load_ccd_settings(tmp_path / "plain.json")
    assert plain.pedestal_adu == 500 and plain.readout_noise_range == (3, 4) and plain.size == 256
    cases = {"unknown.json": ('{"colour": 1}', "unknown setting"),
             "bad.json": ('{"glow_side": "middle"}', "glow_side"),
             "pair.json": ('{"readout_noise_range": 3}', "pair"),
             "broken.json": ("{not json", "not valid JSON"),
             "deep.json": ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
             "mix.json": ('{"cluster_mix": [1, "a", 0]}', "cluster_mix must be three numbers"),
             "list.json": ("[1, 2]", "holds no CCD simulator settings")}
    for name, (text, words) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(UserInputError, match=words):
            load_ccd_settings(tmp_path / name)
    with pytest.raises(UserInputError, match="does not exist"):
        load_ccd_settings(tmp_path / "missing.json")


def test_new_shapes_are_off_by_default_so_default_frames_do_not_change():
    default = render_frame(frame_rng(0, 3), CCDSettings(size=64))
    explicit = render_frame(frame_rng(0, 3), CCDSettings(size=64, glow_band_share=0.0, hot_line_to_edge=0.0,
                                                        pedestal_drift_adu=0.0, glow_side="any"))
    np.testing.assert_array_equal(default.frame, explicit.frame)


def test_hot_columns_run_to_the_readout_row_and_drift_is_applied():
    s = CCDSettings(size=128, hot_line_rate=20, hot_line_row_fraction=0.0, hot_line_to_edge=1.0,
                    readout_row="last", hot_line_charge_range=(500, 500), glow_probability=0.0,
                    cluster_count_range=(0, 0), hot_pixel_density=0.0, pedestal_drift_adu=50.0)
    sim = render_frame(frame_rng(2, 0), s)
    columns = np.flatnonzero((sim.hot > 0).any(axis=0))
    assert columns.size and all(sim.hot[-1, c] > 0 for c in columns)
    rows = np.median(sim.frame, axis=1)
    assert abs(rows[-5:].mean() - rows[:5].mean()) > 5  # a drift well above the noise of a row median


def _write_other_frames(folder, count, size=128, seed=100):
    folder.mkdir()
    for i in range(count):
        frame, _ = other_frame(np.random.default_rng(seed + i), size)
        fits.PrimaryHDU(frame.astype(np.uint16)).writeto(folder / f"o{i}.fits")


@pytest.mark.slow  # runs the application in a child process
def test_fit_ccd_then_simulate_ccd_with_the_settings(tmp_path):
    """The user's path: his frames in, a settings file, simulated frames like his."""
    _write_other_frames(tmp_path / "frames", 3)
    (tmp_path / "frames" / "broken.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    result = run_app("fit-ccd", "--frames", tmp_path / "frames", "--out", tmp_path / "detector.json",
                     "--gain", str(GAIN))
    assert result.returncode == 3, result.stderr  # done, one frame skipped
    assert "broken.fits" in result.stderr and "Traceback" not in result.stderr
    written = json.loads((tmp_path / "detector.json").read_text())
    assert [row["file"] for row in written["frames"]] == ["o0.fits", "o1.fits", "o2.fits"]
    assert written["settings"]["gain_adu_per_electron"] == GAIN
    assert written["settings"]["readout_noise_range"][1] == pytest.approx(READ_NOISE / GAIN, rel=0.1)
    result = run_app("simulate-ccd", "--settings", tmp_path / "detector.json", "--out", tmp_path / "sim",
                     "--count", "2", "--size", "128")
    assert result.returncode == 0, result.stderr
    simulation = json.loads((tmp_path / "sim" / "simulation.json").read_text())
    assert simulation["settings"]["glow_side"] == "left" and simulation["settings"]["count"] == 2
    frame = fits.getdata(tmp_path / "frames" / "o0.fits").astype(float)
    from core.imageio import read_image
    sim = read_image(tmp_path / "sim" / "images" / "ccd_00000.tif")
    assert np.median(sim) == pytest.approx(np.median(frame), abs=30)


@pytest.mark.slow  # runs the application in a child process
def test_fit_ccd_on_nothing_measurable_writes_nothing(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    fits.PrimaryHDU(np.zeros((4, 4), np.uint16)).writeto(bad / "tiny.fits")
    (tmp_path / "detector.json").write_text('{"settings": {}}')
    result = run_app("fit-ccd", "--frames", bad, "--out", tmp_path / "detector.json")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (tmp_path / "detector.json").read_text() == '{"settings": {}}'  # the earlier file stays


def _with_overscan(seed=0, columns=24, dark=40.0):
    """A frame of the other detector whose active pixels carry +40 ADU of
    dark charge, followed by overscan columns that hold only the readout
    noise around the true pedestal."""
    rng = np.random.default_rng(seed)
    frame, mask = other_frame(rng, 128)
    frame = frame + dark
    over = PEDESTAL + rng.normal(0, READ_NOISE, (frame.shape[0], columns))
    return np.concatenate([frame, np.rint(over)], axis=1), mask


def test_overscan_columns_give_pedestal_and_noise():
    from detector import parse_overscan

    frame, _ = _with_overscan()
    plain = measure_frame(frame)
    with_overscan = measure_frame(frame, parse_overscan("-24:"))
    assert plain["pedestal_adu"] > PEDESTAL + 20  # the dark charge taken for pedestal
    assert with_overscan["pedestal_adu"] == pytest.approx(PEDESTAL, abs=3)
    assert with_overscan["noise_adu"] == pytest.approx(READ_NOISE, rel=0.1)
    assert with_overscan["width"] == 128  # the overscan is not measured as sensor


@pytest.mark.parametrize("spec, columns", [("-24:", 24), (":8", 8), ("100:110", 10), (" 5:7 ", 2)])
def test_overscan_specs(spec, columns):
    from detector import overscan_columns, parse_overscan

    assert overscan_columns(152, parse_overscan(spec)).sum() == columns


@pytest.mark.parametrize("spec, words", [("last100", "A:B"), ("1:2:3", "A:B"), ("a:b", "A:B"),
                                         ("500:600", "name no column of a frame 152"), ("8:0", "A must be below B"),
                                         (":", "every column of a frame 152 pixels wide, leaving none")])
def test_bad_overscan_specs_are_refused(spec, words):
    from detector import overscan_columns, parse_overscan

    with pytest.raises(UserInputError, match=words):
        overscan_columns(152, parse_overscan(spec))


@pytest.mark.slow  # runs the application in a child process
def test_label_ccd_with_overscan_labels_it_background_and_takes_its_pedestal(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    frame, _ = _with_overscan()
    fits.PrimaryHDU(frame.astype(np.uint16)).writeto(frames / "f.fits")
    result = run_app("label-ccd", "--frames", frames, "--out", tmp_path / "set", "--overscan=-24:")
    assert result.returncode == 0, result.stderr
    from core.imageio import read_image
    assert not read_image(tmp_path / "set" / "masks" / "f.png")[:, -24:].any()
    info = json.loads((tmp_path / "set" / "ccd_labels.json").read_text())
    assert info["frames"][0]["pedestal_adu"] == pytest.approx(PEDESTAL, abs=3)
    result = run_app("label-ccd", "--frames", frames, "--out", tmp_path / "set2", "--overscan", "right")
    assert result.returncode == 2 and "A:B" in result.stderr and not (tmp_path / "set2").exists()


def _fits_with_biassec(path, frame, section, *, unit_of_two=False):
    header = fits.Header()
    if section is not None:
        header["BIASSEC"] = section
    image = frame.astype(np.uint16)
    if unit_of_two:
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(image), fits.ImageHDU(image, header=header)]).writeto(path)
    else:
        fits.PrimaryHDU(image, header=header).writeto(path)


@pytest.mark.parametrize("section, columns", [
    ("[129:152,1:128]", slice(128, 152)),   # the overscan at the right, as IRAF writes it
    (" [1:8, 1:100] ", slice(0, 8)),         # a prescan, rows short of the frame's
    ("[1:152,120:128]", None),              # a row overscan: every column
    ("[140:170,1:128]", None),              # past the frame's edge
    ("4117:4216", None),                    # not a section
    (None, None),
])
def test_the_overscan_a_fits_header_names(tmp_path, section, columns):
    from core.fits import bias_columns

    frame, _ = _with_overscan()
    _fits_with_biassec(tmp_path / "f.fits", frame, section)
    assert bias_columns(tmp_path / "f.fits") == columns
    _fits_with_biassec(tmp_path / "mef.fits", frame, section, unit_of_two=True)
    assert bias_columns(tmp_path / "mef.fits[2]") == columns
    assert bias_columns(tmp_path / "mef.fits[1]") is None


def test_frames_that_name_their_overscan_are_measured_and_labelled_from_it(tmp_path):
    """No --overscan given: a frame whose header names its overscan columns
    (BIASSEC) gets its pedestal and noise from them; one given by the user wins."""
    from detector import frame_overscan, parse_overscan, run_label_ccd

    frames = tmp_path / "frames"
    frames.mkdir()
    frame, _ = _with_overscan()
    _fits_with_biassec(frames / "f.fits", frame, "[129:152,1:128]")
    assert frame_overscan(frames / "f.fits", None) == slice(128, 152)
    assert frame_overscan(frames / "f.fits", parse_overscan("-4:")) == slice(-4, None)
    result = run_fit_ccd(frames, tmp_path / "detector.json")
    measured = json.loads((tmp_path / "detector.json").read_text())
    assert result.frames == 1 and measured["settings"]["pedestal_adu"] == pytest.approx(PEDESTAL, abs=3)
    run_label_ccd(frames, tmp_path / "set")
    info = json.loads((tmp_path / "set" / "ccd_labels.json").read_text())["frames"][0]
    assert info["pedestal_adu"] == pytest.approx(PEDESTAL, abs=3) and info["overscan_columns"] == "128:152"
