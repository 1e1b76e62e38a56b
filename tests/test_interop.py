"""Results that open in Fiji / ImageJ, QuPath and napari: ROI sets read back
with roifile, label images' pixel size read back with tifffile."""

import zipfile

import numpy as np
import pytest
import roifile
import tifffile
from scipy import ndimage as ndi

from measurement import write_measurements
from measurement.interop import object_outlines, write_calibrated_labels, write_roi_zip


def _shoelace(points):
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _scene():
    yy, xx = np.mgrid[:80, :120]
    mask = np.zeros((80, 120), np.uint8)
    mask[(yy - 30) ** 2 + (xx - 30) ** 2 <= 15**2] = 1           # a disc
    mask[10:30, 70:110] = 1                                       # a rectangle
    mask[55:80, 60:75] = 1                                        # cut by the bottom edge
    ring = ((yy - 60) ** 2 + (xx - 100) ** 2 <= 12**2) & ((yy - 60) ** 2 + (xx - 100) ** 2 > 5**2)
    mask[ring] = 1                                                # with a hole
    photo = (40 + 150 * mask + np.random.default_rng(0).normal(0, 5, mask.shape)).clip(0, 255).astype(np.uint8)
    return photo, mask


def test_roi_zip_has_one_polygon_per_object_with_its_area(tmp_path):
    photo, mask = _scene()
    measured = write_measurements(tmp_path, "p", photo, mask)
    rois = roifile.roiread(tmp_path / "p_rois.zip")
    assert len(rois) == measured.count == 4
    by_id = {int(r.name): r for r in rois}
    for row in measured.rows:
        roi = by_id[row["object_id"]]
        assert roi.roitype == roifile.ROI_TYPE.POLYGON
        polygon = roi.coordinates()
        # The outline follows the pixels' outer edges with the corners cut:
        # its area is the pixel count (holes filled) less an eighth of a pixel
        # per corner.
        area = _shoelace(polygon)
        filled = ndi.binary_fill_holes(measured.labels == row["object_id"]).sum()
        assert 0 <= filled - area <= 0.15 * row["perimeter_px"] + 1
        # Every outline point lies on the object in ImageJ's coordinates.
        x, y = polygon[:, 0], polygon[:, 1]
        inside = measured.labels[np.clip(np.floor(y).astype(int), 0, 79), np.clip(np.floor(x).astype(int), 0, 119)]
        assert np.mean(inside == row["object_id"]) > 0.45
    holed = by_id[max(by_id, key=lambda k: abs(np.mean(by_id[k].coordinates(), axis=0) - [100, 60]).sum() < 2)]
    assert _shoelace(holed.coordinates()) > np.pi * 11.5**2 * 0.9  # the outer outline, not the hole's


def test_roi_zip_of_a_photo_without_objects_is_an_empty_set(tmp_path):
    write_roi_zip(tmp_path / "e_rois.zip", np.zeros((10, 10), np.int32))
    assert zipfile.ZipFile(tmp_path / "e_rois.zip").namelist() == []
    assert not list(tmp_path.glob(".*part*"))


def test_outlines_are_in_imagej_pixel_coordinates():
    labels = np.zeros((6, 6), np.int32)
    labels[2:4, 1:5] = 1  # pixels x 1..4, y 2..3: corners (1, 2) and (5, 4) in ImageJ
    polygon = object_outlines(labels)[1]
    assert polygon[:, 0].min() == pytest.approx(1.0) and polygon[:, 0].max() == pytest.approx(5.0)
    assert polygon[:, 1].min() == pytest.approx(2.0) and polygon[:, 1].max() == pytest.approx(4.0)
    assert _shoelace(polygon) == pytest.approx(8 - 4 / 8)  # four corners cut by an eighth of a pixel


@pytest.mark.parametrize("count, dtype", [(3, np.uint16), (70_000, np.uint32)])
def test_calibrated_label_tiff_carries_the_pixel_size(tmp_path, count, dtype):
    labels = np.arange(count, dtype=np.int64).reshape(1, -1) % count + 1
    labels = np.repeat(labels, 2, axis=0)
    path = write_calibrated_labels(tmp_path / "l.tif", labels, 2.5, "nm")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        np.testing.assert_array_equal(page.asarray(), labels)
        assert page.dtype == dtype
        x_resolution = page.tags["XResolution"].value
        assert x_resolution[0] / x_resolution[1] == pytest.approx(1 / 2.5)
        if dtype == np.uint16:
            assert tif.is_imagej and tif.imagej_metadata["unit"] == "nm"
        else:
            assert tif.is_ome and 'PhysicalSizeX="2.5"' in tif.ome_metadata
            assert 'PhysicalSizeXUnit="nm"' in tif.ome_metadata


def test_measurements_write_calibrated_labels_when_calibrated(tmp_path):
    photo, mask = _scene()
    write_measurements(tmp_path, "p", photo, mask, pixel_size=0.5, unit="µm")
    with tifffile.TiffFile(tmp_path / "p_labels.tif") as tif:
        assert tif.is_imagej and tif.imagej_metadata["unit"] == "micron"
        num, den = tif.pages[0].tags["XResolution"].value
        assert num / den == pytest.approx(2.0)
    write_measurements(tmp_path, "q", photo, mask)
    with tifffile.TiffFile(tmp_path / "q_labels.tif") as tif:
        assert not tif.is_imagej  # no calibration: plain labels, as before


def test_geojson_holds_valid_polygons_with_class_and_measurements(tmp_path):
    import json

    from shapely.geometry import shape

    photo, mask = _scene()
    measured = write_measurements(tmp_path, "p", photo, mask, class_names=["background", "grain"])
    collection = json.loads((tmp_path / "p_objects.geojson").read_text())
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == measured.count
    for feature, row in zip(collection["features"], measured.rows):
        geometry = shape(feature["geometry"])
        assert geometry.is_valid and feature["properties"]["objectType"] == "detection"
        assert feature["properties"]["classification"]["name"] == "grain"
        assert feature["properties"]["measurements"]["area_px"] == row["area_px"]
        filled = ndi.binary_fill_holes(measured.labels == row["object_id"]).sum()
        hole = filled - row["area_px"]
        assert abs(geometry.area - row["area_px"]) <= 0.15 * row["perimeter_px"] + 1 + (hole > 0) * 0.2 * hole
    ring = next(f for f in collection["features"] if f["geometry"]["type"] == "Polygon"
                and len(f["geometry"]["coordinates"]) == 2)
    assert shape(ring["geometry"]).area < shape({"type": "Polygon", "coordinates": ring["geometry"]["coordinates"][:1]}).area


def test_coco_annotations_decode_back_to_the_objects(tmp_path):
    import json

    from pycocotools import mask as coco_mask
    from pycocotools.coco import COCO

    from measurement import MeasurementCollector

    photo, mask = _scene()
    with MeasurementCollector(tmp_path, class_names=["background", "grain"]) as collector:
        first = collector.add("a", photo, mask, image_name="a.png")
        second = collector.add("b", photo[:, ::-1], mask[:, ::-1], image_name="b.png")
    coco = COCO(str(tmp_path / "annotations.json"))
    assert [img["file_name"] for img in coco.dataset["images"]] == ["a.png", "b.png"]
    assert coco.dataset["categories"] == [{"id": 1, "name": "grain", "supercategory": "object"}]
    for image_id, measured in ((1, first), (2, second)):
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        assert len(annotations) == measured.count
        for annotation in annotations:
            decoded = coco_mask.decode(coco.annToRLE(annotation)).astype(bool)
            np.testing.assert_array_equal(decoded, measured.labels == annotation["object_id"])
            assert annotation["area"] == decoded.sum()
    assert json.loads((tmp_path / "annotations.json").read_text())["annotations"][0]["iscrowd"] == 0


def _tiff(path, **kwargs):
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), **kwargs)
    return path


@pytest.mark.parametrize("kind, kwargs, size, unit, source", [
    ("imagej", {"imagej": True, "resolution": (4.0, 4.0), "metadata": {"unit": "micron"}},
     0.25, "µm", "ImageJ metadata"),
    ("ome", {"ome": True, "metadata": {"axes": "YX", "PhysicalSizeX": 2.5, "PhysicalSizeXUnit": "nm"}},
     2.5, "nm", "OME metadata"),
    ("fei", {"extratags": [(34682, "s", 0, "[User]\nDate=1\n[Scan]\nPixelWidth=3.1e-09\nDwelltime=1e-06\n", True)]},
     3.1, "nm", "FEI / Thermo Fisher SEM metadata"),
    ("zeiss", {"extratags": [(34118, "s", 0, "\r\nAP_PIXEL_SIZE\r\nPixel Size = 4.2 nm\r\n", True)]},
     4.2, "nm", "Zeiss SEM metadata"),
    ("centimetre", {"resolution": (10000.0, 10000.0), "resolutionunit": "CENTIMETER"}, 1.0, "µm",
     "TIFF resolution tags"),
])
def test_pixel_size_is_read_from_the_photo(tmp_path, kind, kwargs, size, unit, source):
    from measurement import calibration_from_file

    found = calibration_from_file(_tiff(tmp_path / f"{kind}.tif", **kwargs))
    assert found is not None and found.pixel_size == pytest.approx(size) and found.unit == unit
    assert found.source == source


def test_photos_without_a_pixel_size_or_with_different_ones_stay_in_pixels(tmp_path):
    from core.imageio import write_image
    from measurement.calibration import calibration_from_file, common_file_calibration

    dpi = _tiff(tmp_path / "dpi.tif", resolution=(72.0, 72.0), resolutionunit="INCH")  # a printer's dpi
    plain = _tiff(tmp_path / "plain.tif")
    write_image(tmp_path / "p.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
    for path in (dpi, plain, tmp_path / "p.png", tmp_path / "broken.tif"):
        assert calibration_from_file(path) is None
    a = _tiff(tmp_path / "a.tif", imagej=True, resolution=(4.0, 4.0), metadata={"unit": "micron"})
    b = _tiff(tmp_path / "b.tif", imagej=True, resolution=(4.0, 4.0), metadata={"unit": "micron"})
    c = _tiff(tmp_path / "c.tif", imagej=True, resolution=(2.0, 2.0), metadata={"unit": "micron"})
    assert common_file_calibration([a, b]).pixel_size == pytest.approx(0.25)
    assert common_file_calibration([a, c]) is None and common_file_calibration([a, plain]) is None


def test_segment_cli_measures_in_the_unit_the_photos_carry(tiny_project, tmp_path):
    """The user's path: SEM photos with their pixel size in the file,
    `segment` without --pixel-size: sizes in nm, label TIFF calibrated."""
    from synthetic.scenes import render_particle_scene
    from tests.helpers import run_app

    photos = tmp_path / "photos"
    photos.mkdir()
    header = "[Scan]\nPixelWidth=2e-09\n"
    for i in range(2):
        image, _ = render_particle_scene((96, 128), count=6, polarity="dark", seed=i)
        tifffile.imwrite(photos / f"sem_{i}.tif", image, extratags=[(34682, "s", 0, header, True)])
    result = run_app("segment", "--model", tiny_project / "model", "--images", photos, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    header_row = (tmp_path / "out" / "objects.csv").read_text().splitlines()[0]
    assert "equivalent_diameter_nm" in header_row and "FEI" in result.stdout + result.stderr
    with tifffile.TiffFile(tmp_path / "out" / "sem_0_labels.tif") as tif:
        assert tif.imagej_metadata["unit"] == "nm"


def test_segment_cli_writes_the_formats_asked_for(tiny_project, tmp_path):
    from tests.helpers import run_app

    photos = tiny_project / "photos"
    result = run_app("segment", "--model", tiny_project / "model", "--images", photos, "--out", tmp_path / "some",
                     "--formats", "roi, CSV")
    assert result.returncode == 0, result.stderr
    names = {p.name for p in (tmp_path / "some").iterdir()}
    assert {"p0_rois.zip", "p0_objects.csv", "p0_mask.png", "objects.csv", "summary.csv"} <= names
    assert not {"p0_labels.tif", "p0_objects.geojson", "p0_overlay.png", "annotations.json"} & names
    result = run_app("segment", "--model", tiny_project / "model", "--images", photos, "--out", tmp_path / "all")
    names = {p.name for p in (tmp_path / "all").iterdir()}
    assert {"p0_labels.tif", "p0_rois.zip", "p0_objects.geojson", "p0_overlay.png", "annotations.json"} <= names
    for bad in ("roi,pdf", ","):
        result = run_app("segment", "--model", tiny_project / "model", "--images", photos,
                         "--out", tmp_path / "bad", "--formats", bad)
        assert result.returncode == 2 and "Formats are" in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "bad").exists()
