import numpy as np
import pytest

from core.errors import UserInputError
from core.imageio import read_image
from core.workdir import INDEX_COLUMNS, UniqueNamer, WorkingDirectory
from segmentation.pool import add_objects, augment_object, delete_objects, read_pool_object


def _scene():
    image = np.full((60, 80), 200, np.uint8)
    labels = np.zeros((60, 80), np.int32)
    image[10:20, 10:25] = 40
    labels[10:20, 10:25] = 1
    image[35:50, 50:60] = 60
    labels[35:50, 50:60] = 2
    return image, labels


def test_crops_and_masks_match_the_objects(tmp_path):
    image, labels = _scene()
    names = add_objects(tmp_path, image, labels, [1, 2], source_image="photo.png", origin="picked")
    assert len(names) == 2
    wd = WorkingDirectory(tmp_path)
    rows = {r["file"]: r for r in wd.read_index()}
    for name in names:
        crop, mask = read_pool_object(tmp_path, name)
        assert crop.shape == mask.shape
        assert crop[mask].max() <= 60 and crop[~mask].min() == 200  # object pixels only under the mask
        row = rows[name]
        assert row["origin"] == "picked" and row["source_image"] == "photo.png"
        x0, y0, x1, y1 = (int(row[k]) for k in ("x0", "y0", "x1", "y1"))
        assert np.array_equal(image[y0:y1, x0:x1], crop)
    with open(wd.index_csv) as fh:
        assert fh.readline().strip().split(",") == INDEX_COLUMNS


def test_names_never_collide(tmp_path):
    image, labels = _scene()
    first = add_objects(tmp_path, image, labels, [1, 2], source_image="photo.png")
    second = add_objects(tmp_path, image, labels, [1, 2], source_image="photo.png")
    assert not set(first) & set(second)
    assert len(WorkingDirectory(tmp_path).pool_files()) == 4


def test_sixteen_bit_colour_goes_to_tiff(tmp_path):
    image = np.zeros((30, 30, 3), np.uint16)
    labels = np.zeros((30, 30), np.int32)
    labels[10:20, 10:20] = 1
    name, = add_objects(tmp_path, image, labels, [1], source_image="x.tif")
    assert name.endswith(".tif")
    assert read_image(WorkingDirectory(tmp_path).objects_images / name).dtype == np.uint16


def test_augmented_variants_keep_crop_and_mask_aligned():
    rng = np.random.default_rng(0)
    crop = np.full((40, 50), 220, np.uint8)
    mask = np.zeros((40, 50), np.uint8)
    crop[10:30, 15:35] = 30
    mask[10:30, 15:35] = 255
    for _ in range(10):
        v_crop, v_mask = augment_object(crop, mask, rng)
        assert v_crop.shape == v_mask.shape and v_crop.dtype == np.uint8
        inner = v_mask > 0
        # pixels under the mask are dark object pixels, pixels far from it bright background
        from scipy import ndimage as ndi
        core = ndi.binary_erosion(inner, iterations=2)
        far = ~ndi.binary_dilation(inner, iterations=3)
        assert v_crop[core].mean() < 110
        if far.any():
            assert v_crop[far].mean() > 140


def test_variants_are_indexed_with_their_original(tmp_path):
    image, labels = _scene()
    names = add_objects(tmp_path, image, labels, [1], source_image="p.png", variants=2, seed=1)
    rows = WorkingDirectory(tmp_path).read_index()
    assert len(names) == 3
    assert [r["variant_of"] for r in rows].count(names[0]) == 2


def test_delete_removes_files_and_rows(tmp_path):
    image, labels = _scene()
    names = add_objects(tmp_path, image, labels, [1, 2], source_image="p.png")
    assert delete_objects(tmp_path, [names[0]]) == 1
    wd = WorkingDirectory(tmp_path)
    assert wd.pool_files() == [names[1]]
    assert [r["file"] for r in wd.read_index()] == [names[1]]


def test_mismatched_sizes_are_refused(tmp_path):
    with pytest.raises(UserInputError, match="does not match"):
        add_objects(tmp_path, np.zeros((10, 10), np.uint8), np.zeros((12, 10), np.int32), [1],
                    source_image="p.png")


def test_unique_namer_skips_existing(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x_0001.png").write_bytes(b"")
    namer = UniqueNamer(tmp_path / "a")
    assert namer.next("x", ".png") == "x_0002.png"
    assert namer.next("x", ".png") == "x_0003.png"


def test_project_json_records_stages(tmp_path):
    wd = WorkingDirectory(tmp_path / "w").ensure()
    wd.record_stage("autoseg", {"photos": 3})
    project = wd.load_project()
    assert project["stages"]["autoseg"]["photos"] == 3
    assert "versions" in project["stages"]["autoseg"]


def test_working_directory_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserInputError, match="is a file"):
        WorkingDirectory(tmp_path / "f").ensure()


def test_a_fault_while_adding_objects_leaves_the_pool_as_it_was(tmp_path, monkeypatch):
    from helpers import tree_digest

    image, labels = _scene()
    add_objects(tmp_path, image, labels, [1], source_image="first.png")
    before = tree_digest(tmp_path)
    calls = []
    import core.imageio

    real_write = core.imageio.write_image

    def write_then_fail(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:  # the second object's crop: the first object is complete
            raise OSError("disk full")
        return real_write(*args, **kwargs)

    monkeypatch.setattr("segmentation.pool.write_image", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        add_objects(tmp_path, image, labels, [1, 2], source_image="second.png")
    assert tree_digest(tmp_path) == before
    monkeypatch.undo()
    assert delete_objects(tmp_path, WorkingDirectory(tmp_path).pool_files()) == 1
    assert WorkingDirectory(tmp_path).pool_files() == [] and WorkingDirectory(tmp_path).read_index() == []


def test_an_index_saved_again_by_a_spreadsheet_is_read(tmp_path):
    image, labels = _scene()
    names = add_objects(tmp_path, image, labels, [1, 2], source_image="échantillon.png", origin="picked")
    wd = WorkingDirectory(tmp_path)
    text = wd.index_csv.read_text(encoding="utf-8")
    for saved in (text.replace(",", ";").encode("cp1252"),  # a Windows spreadsheet: its encoding, semicolons
                  text.encode("utf-8-sig")):  # a byte-order mark
        wd.index_csv.write_bytes(saved)
        rows = wd.read_index()
        assert [r["file"] for r in rows] == names and rows[0]["source_image"] == "échantillon.png"
        assert wd.pool_files() == sorted(names)


def test_something_else_saved_as_the_index_is_refused_with_one_message(tmp_path):
    image, labels = _scene()
    add_objects(tmp_path, image, labels, [1], source_image="photo.png")
    wd = WorkingDirectory(tmp_path)
    wd.index_csv.write_text("a,b\n1,2\n")
    with pytest.raises(UserInputError, match="not an object pool index"):
        wd.read_index()


def test_files_without_rows_and_rows_without_files_are_tidied_and_never_used(tmp_path):
    image, labels = _scene()
    first, second = add_objects(tmp_path, image, labels, [1, 2], source_image="photo.png")
    wd = WorkingDirectory(tmp_path)
    # what a run killed between writing files and their rows by an older version leaves
    for folder in (wd.objects_images, wd.objects_masks):
        (folder / "orphan_0001.png").write_bytes((folder / first).read_bytes())
    (wd.objects_masks / second).unlink()
    assert wd.pool_files() == [first]  # neither the orphan nor the object missing its mask
    done = wd.tidy_pool()
    assert len(done) == 3 and "dropped 1 index row" in done[0]
    assert "removed 2 crop file" in done[1] and "removed 1 mask file" in done[2]
    assert [p.name for p in wd.objects_images.iterdir()] == [first] == [p.name for p in wd.objects_masks.iterdir()]
    assert [r["file"] for r in wd.read_index()] == [first]
    assert not (wd.objects_masks / "orphan_0001.png").exists()
    assert wd.tidy_pool() == []


def test_pooled_labels_put_each_pooled_object_of_a_photo_where_it_lies(tmp_path):
    from segmentation.pool import pooled_labels

    image = np.full((60, 80), 200, np.uint8)
    labels = np.zeros((60, 80), np.int32)
    labels[10:20, 10:25], labels[30:50, 40:70] = 1, 2
    add_objects(tmp_path, image, labels, [1, 2], source_image="a.png", variants=1, seed=0)
    add_objects(tmp_path, image, labels, [1], source_image="b.png")
    # a damaged row (no crop left) is passed over, not fatal
    (WorkingDirectory(tmp_path).objects_masks / WorkingDirectory(tmp_path).read_index()[-1]["file"]).unlink()
    found = pooled_labels(tmp_path, "a.png", image.shape)
    assert sorted(np.unique(found)) == [0, 1, 2]  # the variants are not objects of the photo
    assert np.array_equal(found > 0, labels > 0)
    assert not pooled_labels(tmp_path, "b.png", image.shape).any()
