"""Per-object measurements on drawn shapes of known size, and the files
written for a photo and a folder."""

import csv
import math

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage.draw import disk, polygon

from core.errors import UserInputError
from core.imageio import read_image, write_label_image
from measurement import Calibration, MeasurementCollector, write_measurements
from measurement.measure import (
    feret_diameters,
    measure_objects,
    object_columns,
    size_statistics,
    summarise_folder,
    summarise_image,
    summary_columns,
)


def shapes():
    """A 20 x 60 rectangle (id 1), a disc of radius 40 (id 2), a 10 x 10
    square cut by the left edge (id 3)."""
    labels = np.zeros((200, 300), np.int32)
    labels[20:40, 30:90] = 1
    rr, cc = disk((110, 180), 40)
    labels[rr, cc] = 2
    labels[150:160, 0:10] = 3
    return labels


def by_id(rows):
    return {r["object_id"]: r for r in rows}


def test_rectangle_matches_analytic_values():
    r = by_id(measure_objects(shapes()))[1]
    assert r["area_px"] == 1200
    assert r["equivalent_diameter_px"] == pytest.approx(math.sqrt(4 * 1200 / math.pi))
    assert r["feret_max_px"] == pytest.approx(math.hypot(60, 20))
    assert r["feret_min_px"] == pytest.approx(20)
    assert r["perimeter_px"] == pytest.approx(160, rel=0.08)
    assert r["solidity"] == pytest.approx(1.0)
    assert r["aspect_ratio"] == pytest.approx(3.0, rel=0.02)
    assert (r["bbox_x0"], r["bbox_y0"], r["bbox_x1"], r["bbox_y1"]) == (30, 20, 90, 40)
    assert (r["centroid_x_px"], r["centroid_y_px"]) == pytest.approx((59.5, 29.5))
    assert r["touches_border"] == 0


def test_disc_matches_analytic_values():
    r = by_id(measure_objects(shapes()))[2]
    assert r["area_px"] == pytest.approx(math.pi * 40 ** 2, rel=0.01)
    assert r["equivalent_diameter_px"] == pytest.approx(80, rel=0.01)
    assert r["feret_max_px"] == pytest.approx(80, abs=2)
    assert r["feret_min_px"] == pytest.approx(80, abs=2)
    assert r["perimeter_px"] == pytest.approx(2 * math.pi * 40, rel=0.02)
    assert r["circularity"] == pytest.approx(1.0, abs=0.03)
    assert r["aspect_ratio"] == pytest.approx(1.0, abs=0.01)
    assert r["solidity"] > 0.98


@pytest.mark.parametrize("angle", [17.0, 45.0, 71.0])
def test_feret_of_a_rotated_rectangle(angle):
    a = np.deg2rad(angle)
    length, width = 90.0, 30.0
    u, v = np.array([np.sin(a), np.cos(a)]), np.array([np.cos(a), -np.sin(a)])
    corners = [np.array([100.0, 100.0]) + sx * length / 2 * u + sy * width / 2 * v
               for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    ys, xs = zip(*corners)
    mask = np.zeros((200, 200), bool)
    mask[polygon(ys, xs, mask.shape)] = True
    feret_max, feret_min = feret_diameters(mask)
    # Pixelation adds up to about one pixel on each side.
    assert feret_min == pytest.approx(width, abs=2.0)
    assert feret_max == pytest.approx(math.hypot(length, width), abs=2.0)


def test_single_pixel_and_thin_line():
    labels = np.zeros((20, 30), np.int32)
    labels[5, 5] = 1
    labels[10, 5:25] = 2
    rows = by_id(measure_objects(labels))
    assert rows[1]["feret_max_px"] == pytest.approx(math.sqrt(2))
    assert rows[1]["feret_min_px"] == pytest.approx(1.0)
    assert rows[2]["feret_max_px"] == pytest.approx(math.hypot(20, 1))
    assert rows[2]["feret_min_px"] == pytest.approx(1.0)
    assert math.isnan(rows[2]["aspect_ratio"])  # an ellipse of zero width


def test_calibration_scales_lengths_and_areas():
    plain = by_id(measure_objects(shapes()))
    um = by_id(measure_objects(shapes(), pixel_size=0.5, unit="µm"))
    nm = by_id(measure_objects(shapes(), pixel_size=Calibration(500.0, "nm")))
    for k in plain:
        assert um[k]["area_um2"] == pytest.approx(plain[k]["area_px"] * 0.25)
        assert um[k]["equivalent_diameter_um"] == pytest.approx(plain[k]["equivalent_diameter_px"] * 0.5)
        assert um[k]["feret_min_um"] == pytest.approx(plain[k]["feret_min_px"] * 0.5)
        assert nm[k]["area_nm2"] == pytest.approx(um[k]["area_um2"] * 1e6)
        assert nm[k]["equivalent_diameter_nm"] == pytest.approx(um[k]["equivalent_diameter_um"] * 1000)
        assert um[k]["area_px"] == plain[k]["area_px"]
    assert "area_um2" not in plain[1]
    assert list(um[1]) == object_columns(Calibration(0.5, "µm"))
    assert list(plain[1]) == object_columns(None)


def test_mean_intensity_classes_and_border_flag():
    labels = shapes()
    photo = np.full(labels.shape, 10, np.uint16)
    photo[labels == 2] = 3000
    classes = np.array([0, 1, 2, 1])
    rows = by_id(measure_objects(labels, image=photo, classes=classes,
                                 class_names=["background", "grain", "pore"], image_name="a.tif"))
    assert rows[2]["mean_intensity"] == pytest.approx(3000)
    assert rows[1]["mean_intensity"] == pytest.approx(10)
    assert (rows[2]["class"], rows[2]["class_name"]) == (2, "pore")
    assert rows[1]["image"] == "a.tif"
    assert [rows[k]["touches_border"] for k in (1, 2, 3)] == [0, 0, 1]
    no_photo = measure_objects(labels)
    assert all(math.isnan(r["mean_intensity"]) for r in no_photo)
    with pytest.raises(UserInputError):
        measure_objects(labels, image=np.zeros((10, 10)))


def test_summary_leaves_border_objects_out_of_the_distribution():
    labels = shapes()
    rows = measure_objects(labels, pixel_size=2.0, unit="nm")
    s = summarise_image(rows, image_shape=labels.shape, image_name="x", pixel_size=2.0, unit="nm")
    assert (s["count"], s["count_measured"], s["count_border"]) == (3, 2, 1)
    assert s["area_fraction"] == pytest.approx((labels > 0).sum() / labels.size)
    diameters = sorted(r["equivalent_diameter_px"] for r in rows if not r["touches_border"])
    assert s["equivalent_diameter_d50_px"] == pytest.approx(np.median(diameters))
    assert s["equivalent_diameter_d50_nm"] == pytest.approx(2 * np.median(diameters))
    assert list(s) == summary_columns(Calibration(2.0, "nm"))
    everything = summarise_image(rows, image_shape=labels.shape, include_border=True)
    assert everything["count_measured"] == 3
    stats = size_statistics([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    assert (stats["d10"], stats["d50"], stats["d90"]) == (2, 6, 10)
    assert size_statistics([])["n"] == 0
    folder = summarise_folder([s, s], np.array(diameters * 2))
    assert folder["count"] == 6 and folder["count_measured"] == 4


def test_label_image_uses_uint32_beyond_65535_objects(tmp_path):
    many = np.arange(300 * 300, dtype=np.int32).reshape(300, 300)
    write_label_image(tmp_path / "many.tif", many)
    back = tifffile.imread(tmp_path / "many.tif")
    assert back.dtype == np.uint32 and np.array_equal(back, many)
    write_label_image(tmp_path / "few.tif", shapes())
    assert tifffile.imread(tmp_path / "few.tif").dtype == np.uint16


def photo_and_mask(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((120, 160), np.uint8)
    for cy, cx in ((40, 40), (40, 72), (90, 120)):  # two touching discs and one alone
        mask[disk((cy, cx), 18, shape=mask.shape)] = 1
    mask[disk((110, 10), 12, shape=mask.shape)] = 1  # cut by the edge
    photo = (rng.normal(60, 5, mask.shape) + 120 * mask).clip(0, 255).astype(np.uint8)
    return photo, mask


def test_folder_export_round_trips_through_csv(tmp_path):
    out = tmp_path / "out"
    with MeasurementCollector(out, pixel_size=0.5, unit="µm") as collector:
        written = [collector.add(f"photo{i}", *photo_and_mask(i), image_name=f"photo{i}.png") for i in range(2)]
    assert collector.result.photos == 2
    columns = object_columns(Calibration(0.5, "µm"))
    with open(out / "objects.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == columns
        table = list(reader)
    expected = [row for photo in written for row in photo.rows]
    assert len(table) == len(expected) == 8  # 4 objects per photo, touching pair split
    for got, want in zip(table, expected):
        assert got["image"] == want["image"]
        assert int(got["object_id"]) == want["object_id"]
        assert float(got["area_um2"]) == pytest.approx(want["area_px"] * 0.25, rel=1e-6)
        assert float(got["feret_max_um"]) == pytest.approx(want["feret_max_um"], rel=1e-6)
    assert sum(int(r["touches_border"]) for r in table) == 2
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        summary = list(csv.DictReader(fh))
    assert [r["image"] for r in summary] == ["photo0.png", "photo1.png"]
    assert [int(r["count"]) for r in summary] == [4, 4]
    assert [int(r["count_measured"]) for r in summary] == [3, 3]
    for i in range(2):
        labels = tifffile.imread(out / f"photo{i}_labels.tif")
        assert labels.dtype == np.uint16 and labels.max() == 4
        assert np.array_equal(labels, written[i].labels)
        assert np.array_equal(read_image(out / f"photo{i}_mask.png"), photo_and_mask(i)[1])
        with Image.open(out / f"photo{i}_overlay.png") as im:
            assert im.mode == "RGB" and im.size == (160, 120)
        assert (out / f"photo{i}_objects.csv").is_file()
    with Image.open(out / "size_histogram.png") as im:
        assert im.size[0] > 300
    assert "8 objects in 2 photos" in collector.result.summary_text()
    assert not list(out.glob(".*"))  # no temporary files left


def test_overlay_draws_outlines_without_touching_the_photo(tmp_path):
    photo, mask = photo_and_mask(0)
    before = photo.copy()
    result = write_measurements(tmp_path, "p", photo, mask)
    assert np.array_equal(photo, before)
    overlay = read_image(result.files["overlay"])
    assert overlay.shape == (120, 160, 3)
    changed = np.any(overlay != np.repeat(photo[..., None], 3, axis=-1), axis=-1)
    assert changed[mask > 0].mean() > 0.1 and not changed[mask == 0][:100].any()
    assert result.count == 4 and "4 objects" in result.summary_text()


def test_mismatched_photo_and_mask_is_a_user_error(tmp_path):
    photo, mask = photo_and_mask(0)
    with pytest.raises(UserInputError, match="mask"):
        write_measurements(tmp_path, "p", photo[:100], mask)
    assert not list(tmp_path.iterdir())


def test_collector_drops_partial_table_on_error(tmp_path):
    photo, mask = photo_and_mask(0)
    with pytest.raises(UserInputError):
        with MeasurementCollector(tmp_path) as collector:
            collector.add("good", photo, mask)
            collector.add("bad", photo[:50], mask)
    assert (tmp_path / "good_labels.tif").is_file()
    assert not (tmp_path / "objects.csv").exists()
    assert not list(tmp_path.glob(".*"))


def test_collector_without_photos_writes_empty_tables(tmp_path):
    result = MeasurementCollector(tmp_path).finish()
    assert result.photos == 0
    with open(tmp_path / "objects.csv", newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [object_columns(None)]
    assert (tmp_path / "size_histogram.png").is_file()


def test_given_labels_and_class_counts_in_the_summary(tmp_path):
    photo, mask = photo_and_mask(1)
    class_mask = mask.copy()
    class_mask[60:, :] *= 2  # lower objects become class 2
    names = ["background", "particle", "cluster"]
    with MeasurementCollector(tmp_path, class_names=names) as collector:
        result = collector.add("p", photo, class_mask)
        edited = np.where(result.labels == 1, 0, result.labels)  # the user removed object 1
        again = collector.add("q", photo, class_mask, labels=edited, classes=result.classes)
    assert again.count == result.count - 1
    assert {r["class_name"] for r in result.rows} == {"particle", "cluster"}
    with open(tmp_path / "summary.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert int(rows[0]["count_particle"]) + int(rows[0]["count_cluster"]) == result.count
    assert int(rows[0]["count_cluster"]) == sum(r["class"] == 2 for r in result.rows)
