"""Pixel-size calibration: typed, from a scale bar, stored per working directory."""

import json
import math

import pytest

from core.errors import UserInputError
from measurement.calibration import (
    Calibration,
    calibration_from_pixel_size,
    calibration_from_scale_bar,
    convert_length,
    load_calibration,
    normalise_unit,
    save_calibration,
    unit_suffix,
)


def test_unit_conversion_between_nm_um_and_mm():
    assert convert_length(1.0, "µm", "nm") == pytest.approx(1000.0)
    assert convert_length(250.0, "nm", "µm") == pytest.approx(0.25)
    assert convert_length(2.0, "mm", "µm") == pytest.approx(2000.0)
    cal = calibration_from_pixel_size(0.5, "µm")
    assert cal.to_unit("nm").pixel_size == pytest.approx(500.0)
    assert cal.to_unit("nm").unit == "nm"
    assert cal.length(10) == pytest.approx(5.0)
    assert cal.area(100) == pytest.approx(25.0)  # 0.5 µm pixels: areas x 0.25


@pytest.mark.parametrize("spelling", ["um", "µm", "\u03bcm", "micron", "Micrometre", " um "])
def test_micrometre_spellings(spelling):
    assert normalise_unit(spelling) == "µm"
    assert unit_suffix(spelling) == "um"


def test_scale_bar_gives_pixel_size():
    cal = calibration_from_scale_bar((10, 20), (110, 20), 50, "µm")
    assert cal.pixel_size == pytest.approx(0.5)
    assert cal.source == "scale bar"
    assert cal.scale_bar["length_px"] == pytest.approx(100)
    # A slanted bar: 3-4-5 triangle, 500 px long.
    slanted = calibration_from_scale_bar((0.0, 0.0), (300.0, 400.0), 200, "nm")
    assert slanted.pixel_size == pytest.approx(0.4)
    assert slanted.unit == "nm"


def test_save_and_load_round_trip(tmp_path):
    assert load_calibration(tmp_path) is None
    cal = calibration_from_scale_bar((5, 5), (205, 5), 100, "um")
    path = save_calibration(tmp_path, cal)
    assert path == tmp_path / "calibration.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["unit"] == "µm" and data["pixel_size"] == pytest.approx(0.5)
    back = load_calibration(tmp_path)
    assert back == Calibration(0.5, "µm", "scale bar")
    assert back.scale_bar["p1"] == [205.0, 5.0]
    assert not [p for p in tmp_path.iterdir() if p.name != "calibration.json"]


def test_unreadable_or_invalid_file_is_a_user_error(tmp_path):
    (tmp_path / "calibration.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserInputError, match="calibration"):
        load_calibration(tmp_path)
    (tmp_path / "calibration.json").write_text('{"pixel_size": -1, "unit": "nm"}', encoding="utf-8")
    with pytest.raises(UserInputError, match="positive"):
        load_calibration(tmp_path)


@pytest.mark.parametrize("length", [0, -5, math.nan, math.inf, "abc", None])
def test_bad_scale_bar_length(length):
    with pytest.raises(UserInputError, match="length"):
        calibration_from_scale_bar((0, 0), (100, 0), length, "µm")


@pytest.mark.parametrize("p0, p1", [((10, 10), (10, 10)), ((10, 10), (10.3, 10.2)),
                                    ((math.nan, 0), (100, 0)), (("a", 0), (100, 0)), ((1,), (100, 0))])
def test_bad_scale_bar_points(p0, p1):
    with pytest.raises(UserInputError, match="scale bar end"):
        calibration_from_scale_bar(p0, p1, 10, "µm")


@pytest.mark.parametrize("size", [0, -0.1, math.nan, "x"])
def test_bad_pixel_size(size):
    with pytest.raises(UserInputError, match="pixel size"):
        calibration_from_pixel_size(size, "nm")


def test_unknown_unit():
    with pytest.raises(UserInputError, match="furlong"):
        calibration_from_pixel_size(1.0, "furlong")
    with pytest.raises(UserInputError, match="unit"):
        calibration_from_scale_bar((0, 0), (10, 0), 5, "inch")
