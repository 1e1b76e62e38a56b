"""FITS detector frames are read wherever a photo is read: the stored
values scaled to ADU, the first image unit of a multi-amplifier file, and
one clear message for a file that is not a readable FITS image."""

import json

import numpy as np
import pytest
from astropy.io import fits

from core.errors import ImageReadError
from core.imageio import list_images, read_image
from helpers import run_app


def _frame(shape=(40, 50), pedestal=40000, seed=0):
    rng = np.random.default_rng(seed)
    frame = pedestal + rng.normal(0, 5, shape)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    for cy, cx in ((12, 14), (28, 36)):
        frame += 3000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)
    return np.clip(frame, 0, 65535).astype(np.uint16)


def test_unsigned_16_bit_frame_keeps_its_adu(tmp_path):
    frame = _frame()
    fits.PrimaryHDU(frame).writeto(tmp_path / "f.fits")
    assert fits.getheader(tmp_path / "f.fits")["BZERO"] == 32768  # stored as signed + 32768
    image = read_image(tmp_path / "f.fits")
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, frame)


def test_bscale_and_bzero_give_physical_values(tmp_path):
    unit = fits.PrimaryHDU(np.array([[1, 2], [3, 4]], np.int16))
    unit.header["BSCALE"], unit.header["BZERO"] = 0.5, 10.0
    unit.writeto(tmp_path / "s.fit")
    np.testing.assert_allclose(read_image(tmp_path / "s.fit"), [[10.5, 11.0], [11.5, 12.0]])


def test_blank_pixels_become_nan(tmp_path):
    unit = fits.PrimaryHDU(np.array([[1, -999], [3, 4]], np.int16))
    unit.header["BLANK"] = -999
    unit.writeto(tmp_path / "b.fits")
    image = read_image(tmp_path / "b.fits")
    assert np.isnan(image[0, 1]) and image[1, 1] == 4


def test_signed_and_float_frames(tmp_path):
    fits.PrimaryHDU(np.array([[-5, 100000], [3, 4]], np.int32)).writeto(tmp_path / "i.fits")
    np.testing.assert_array_equal(read_image(tmp_path / "i.fits"), [[-5, 100000], [3, 4]])
    data = np.random.default_rng(1).random((6, 7)).astype(">f8")
    fits.PrimaryHDU(data).writeto(tmp_path / "d.fts")
    image = read_image(tmp_path / "d.fts")
    assert image.dtype == np.float32
    np.testing.assert_allclose(image, data, rtol=1e-6)


def test_one_unit_per_amplifier_uses_the_first_and_says_so(tmp_path):
    a, b = _frame(seed=1), _frame(seed=2)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(a), fits.ImageHDU(b)]).writeto(tmp_path / "mef.fits")
    said = []
    image = read_image(tmp_path / "mef.fits", warn=said.append)
    np.testing.assert_array_equal(image, a)
    assert said == ["mef.fits: 2 image units (one per amplifier?), using unit 1"]


def test_a_cube_of_one_plane_is_that_plane(tmp_path):
    cube = np.arange(5 * 6, dtype=np.float32).reshape(1, 5, 6)
    fits.PrimaryHDU(cube).writeto(tmp_path / "c.fits")
    np.testing.assert_array_equal(read_image(tmp_path / "c.fits"), cube[0])


@pytest.mark.parametrize("name, content, message", [
    ("header_only.fits", None, "holds no image data"),
    ("truncated.fits", "truncate", "Cannot read the image data"),
    ("not_fits.fits", b"a text file renamed\n" * 200, "Cannot read FITS file"),
    ("cube.fits", np.zeros((3, 8, 9), np.uint16), "holds a cube of shape (3, 8, 9)"),
    ("all_nan.fits", np.full((8, 9), np.nan, np.float32), "every pixel is NaN or BLANK"),
    ("all_blank.fits", "blank", "every pixel is NaN or BLANK"),
])
def test_unreadable_fits_gets_one_message_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        fits.PrimaryHDU().writeto(path)
    elif isinstance(content, np.ndarray):
        fits.PrimaryHDU(content).writeto(path)
    elif content == "blank":
        unit = fits.PrimaryHDU(np.full((8, 9), -1, np.int16))
        unit.header["BLANK"] = -1
        unit.writeto(path)
    elif content == "truncate":
        fits.PrimaryHDU(_frame((200, 200))).writeto(tmp_path / "whole.fits")
        path.write_bytes((tmp_path / "whole.fits").read_bytes()[:6000])
    else:
        path.write_bytes(content)
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert message in str(caught.value) and name in str(caught.value)


def test_fits_frames_are_listed_as_photos(tmp_path):
    for name in ("a.fits", "b.FIT", "c.fts", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.fits", "b.FIT", "c.fts"]


@pytest.mark.slow  # runs the application in a child process
def test_autoseg_cli_on_fits_frames_skips_a_corrupt_one(tmp_path):
    """The user's path: a folder of frames with one damaged file; the good
    frames are segmented, the bad one is named and nothing else is lost."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        fits.PrimaryHDU(_frame((64, 80), seed=i)).writeto(frames / f"run_{i}.fits")
    (frames / "run_9.fits").write_bytes((frames / "run_0.fits").read_bytes()[:4000])
    result = run_app("autoseg", "--images", frames, "--workdir", tmp_path / "wd")
    assert result.returncode == 3, result.stderr
    assert "run_9.fits" in result.stderr and "Traceback" not in result.stderr
    project = json.loads((tmp_path / "wd" / "project.json").read_text())
    photos = project["stages"]["autoseg"]["photos"]
    assert sorted(photos) == ["run_0.fits", "run_1.fits"]
    for i in range(2):
        labels = read_image(tmp_path / "wd" / "autoseg" / f"run_{i}_labels.tif")
        assert labels.max() == 2  # the two charge clusters, bright on the pedestal
    assert photos["run_0.fits"]["polarity"] == "bright"


def _simulated_fits(folder, count, size=96):
    """Simulated frames saved as a detector writes them: unsigned 16-bit FITS."""
    from synthetic.ccd import CCDSettings, frame_rng, simulate_frame

    folder.mkdir()
    truths = {}
    for i in range(count):
        frame, truth = simulate_frame(frame_rng(7, i), CCDSettings(size=size))
        fits.PrimaryHDU(np.clip(np.rint(frame), 0, 65535).astype(np.uint16)).writeto(folder / f"f{i}.fits")
        truths[f"f{i}"] = truth
    return truths


@pytest.mark.slow  # runs the application in a child process
def test_label_ccd_cli_writes_a_training_set_from_fits_frames(tmp_path):
    """The user's path: his FITS frames in, a set `train` can read out, with
    clusters found where the simulator put them."""
    from detector.thresholds import CLUSTER, class_scores
    from training.data_files import read_class_names

    truths = _simulated_fits(tmp_path / "frames", 3)
    result = run_app("label-ccd", "--frames", tmp_path / "frames", "--out", tmp_path / "set")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "set"
    assert sorted(p.name for p in (out / "images").iterdir()) == ["f0.tif", "f1.tif", "f2.tif"]
    assert read_class_names(out, 4) == ["background", "glowing", "hot pixel", "cluster"]
    info = json.loads((out / "ccd_labels.json").read_text())
    assert [row["source"] for row in info["frames"]] == ["f0.fits", "f1.fits", "f2.fits"]
    assert all(row["noise_sigma_adu"] > 0 for row in info["frames"])
    np.testing.assert_array_equal(read_image(out / "images" / "f0.tif"), read_image(tmp_path / "frames" / "f0.fits"))
    masks = np.stack([read_image(out / "masks" / f"{stem}.png") for stem in truths])
    scores = class_scores(np.stack(list(truths.values())), masks)
    assert (masks == CLUSTER).any() and scores["cluster"]["f1"] > 0.5, scores


@pytest.mark.slow  # runs the application in a child process
def test_label_ccd_keeps_an_earlier_set_when_nothing_can_be_labelled(tmp_path):
    _simulated_fits(tmp_path / "frames", 1, size=64)
    assert run_app("label-ccd", "--frames", tmp_path / "frames", "--out", tmp_path / "set").returncode == 0
    before = sorted((tmp_path / "set").rglob("*"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    fits.PrimaryHDU(np.zeros((4, 4), np.uint16)).writeto(bad / "tiny.fits")
    result = run_app("label-ccd", "--frames", bad, "--out", tmp_path / "set")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "could be labelled" in result.stderr
    assert sorted((tmp_path / "set").rglob("*")) == before


def _two_amplifiers(path, seed=0):
    a, b = _frame((64, 80), seed=seed), _frame((64, 80), seed=seed + 1)[:, ::-1]
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(a), fits.ImageHDU(b)]).writeto(path)
    return a, b


def test_each_amplifier_is_a_photo_of_its_own(tmp_path):
    a, b = _two_amplifiers(tmp_path / "run.fits")
    fits.PrimaryHDU(_frame()).writeto(tmp_path / "single.fits")
    photos = list_images(tmp_path)
    assert [p.name for p in photos] == ["run.fits[1]", "run.fits[2]", "single.fits"]
    from core.imageio import output_stems
    assert list(output_stems(photos).values()) == ["run_hdu1", "run_hdu2", "single"]
    np.testing.assert_array_equal(read_image(photos[1]), b)
    assert list_images(tmp_path / "run.fits[2]") == [tmp_path / "run.fits[2]"]
    for unit, message in ((0, "holds no image data"), (9, "has no unit 9")):
        with pytest.raises(ImageReadError, match=message):
            read_image(tmp_path / f"run.fits[{unit}]")


def test_segment_cli_on_multi_amplifier_frames(tiny_project, tmp_path):
    """`segment` on a folder of two-amplifier FITS frames: every amplifier
    segmented and reported on its own."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        _two_amplifiers(frames / f"run_{i}.fits", seed=2 * i)
    result = run_app("segment", "--model", tiny_project / "model", "--images", frames, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    for i in range(2):
        for unit in (1, 2):
            assert (tmp_path / "out" / f"run_{i}_hdu{unit}_labels.tif").is_file()
    summary = (tmp_path / "out" / "summary.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in summary[1:]] == [
        "run_0.fits[1]", "run_0.fits[2]", "run_1.fits[1]", "run_1.fits[2]"]
    from inference import SegmentSettings, run_segment

    one = run_segment(tiny_project / "model", frames, tmp_path / "one", settings=SegmentSettings(hdu=2))
    assert one.photos == 2 and sorted(p.name for p in (tmp_path / "one").glob("*_labels.tif")) == [
        "run_0_hdu2_labels.tif", "run_1_hdu2_labels.tif"]


@pytest.mark.slow  # runs the application in a child process
def test_a_unit_that_holds_no_image_is_refused_before_any_work(tmp_path):
    from core.errors import UserInputError

    _two_amplifiers(tmp_path / "run.fits")
    for unit in (0, 5):
        with pytest.raises(UserInputError, match=f"run.fits has no image in unit {unit} \\(its image units: 1, 2\\)"):
            list_images(tmp_path / f"run.fits[{unit}]")
    result = run_app("autoseg", "--images", tmp_path / "run.fits[5]", "--workdir", tmp_path / "wd")
    assert result.returncode == 2 and "no image in unit 5" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "wd").exists()


@pytest.mark.slow  # runs the application in a child process
def test_segment_cli_on_bad_fits_names_each_and_writes_nothing(tiny_project, tmp_path):
    """Truncated, image-less, cube and all-NaN frames: each named once, one
    error line, exit 2, no output folder."""
    frames = tmp_path / "frames"
    frames.mkdir()
    fits.PrimaryHDU(_frame((64, 64))).writeto(tmp_path / "whole.fits")
    (frames / "truncated.fits").write_bytes((tmp_path / "whole.fits").read_bytes()[:4000])
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="adu", format="E", array=np.zeros(3))])]).writeto(frames / "table.fits")
    fits.PrimaryHDU(np.zeros((3, 64, 64), np.uint16)).writeto(frames / "cube.fits")
    fits.PrimaryHDU(np.full((64, 64), np.nan, np.float32)).writeto(frames / "all_nan.fits")
    result = run_app("segment", "--model", tiny_project / "model", "--images", frames, "--out", tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for name in ("truncated.fits", "table.fits", "cube.fits", "all_nan.fits"):
        assert sum(name in line for line in result.stderr.splitlines() if line.startswith("skipped")) == 1, name
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    assert not (tmp_path / "out").exists()


def test_hdu_picks_one_unit_of_each_fits_file(tmp_path):
    from core.errors import UserInputError

    for i in range(2):
        _two_amplifiers(tmp_path / f"run_{i}.fits", seed=2 * i)
    fits.PrimaryHDU(_frame()).writeto(tmp_path / "single.fits")
    write = np.zeros((8, 8), np.uint8)
    from core.imageio import write_image
    write_image(tmp_path / "photo.png", write)
    with pytest.raises(UserInputError, match=r"single.fits has no image in unit 2 \(its image units: 0\)"):
        list_images(tmp_path, hdu=2)
    (tmp_path / "single.fits").unlink()
    assert [p.name for p in list_images(tmp_path, hdu=2)] == ["photo.png", "run_0.fits[2]", "run_1.fits[2]"]
    assert [p.name for p in list_images(tmp_path / "run_1.fits", hdu=1)] == ["run_1.fits[1]"]
    assert [p.name for p in list_images(tmp_path)] == ["photo.png", "run_0.fits[1]", "run_0.fits[2]",
                                                      "run_1.fits[1]", "run_1.fits[2]"]


@pytest.mark.slow  # runs the application in a child process
def test_label_ccd_cli_with_hdu_labels_that_amplifier_only(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        _two_amplifiers(frames / f"run_{i}.fits", seed=2 * i)
    result = run_app("label-ccd", "--frames", frames, "--out", tmp_path / "set", "--hdu", "2")
    assert result.returncode == 0, result.stderr
    info = json.loads((tmp_path / "set" / "ccd_labels.json").read_text())
    assert [row["source"] for row in info["frames"]] == ["run_0.fits[2]", "run_1.fits[2]"]
    np.testing.assert_array_equal(read_image(tmp_path / "set" / "images" / "run_1_hdu2.tif"),
                                  read_image(frames / "run_1.fits[2]"))
    for bad, words in (("5", "has no image in unit 5"), ("-1", "not a FITS unit"), ("two", "not a FITS unit")):
        refused = run_app("label-ccd", "--frames", frames, "--out", tmp_path / "set2", "--hdu", bad)
        assert refused.returncode == 2 and words in refused.stderr and "Traceback" not in refused.stderr, bad
        assert not (tmp_path / "set2").exists()
