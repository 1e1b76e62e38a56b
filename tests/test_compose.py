import hashlib
import warnings

import numpy as np
import pytest

from core.errors import UserInputError
from core.imageio import read_image, write_image
from core.progress import Progress
from core.workdir import WorkingDirectory
from helpers import run_app
from segmentation import run_autoseg
from synthetic.backgrounds import Background, fill_objects
from synthetic.compose import SynthesisSettings, compose_image, paste_object, run_synthesize
from synthetic.scenes import render_particle_scene
from synthetic.sources import PhotoStats, PoolObject, Sources


def _disc(radius, value=1.0):
    size = 2 * radius + 5
    yy, xx = np.mgrid[0:size, 0:size] - size // 2
    alpha = (xx * xx + yy * yy <= radius * radius).astype(np.float32)
    return np.full((size, size), value, np.float32), alpha


def _sources(classes=(1,)):
    photo = PhotoStats(name="p.png", polarity="bright", background_level=0.0, object_level=1.0, noise=0.0,
                       objects=30, width=256, height=256)
    objects = []
    for k, cls in enumerate(classes):
        gray, alpha = _disc(6 + 3 * k)
        objects.append(PoolObject(f"o{k}.png", gray, alpha, cls, photo, 1.0))
    return Sources(objects, [], {"p.png": photo}, 1 + max(classes))


def _compose(sources, seed=0, **settings):
    settings = SynthesisSettings(size=128, objects_per_image=25, contrast_jitter=0.0, seam_blur=False,
                                 size_jitter=0.3, max_overlap=0.6, **settings)
    bg = Background(np.zeros((1, 1), np.float32), "p.png", 0.0, 0.0, 1.0, "bright")
    canvas = np.zeros((128, 128), np.float32)
    return compose_image(np.random.default_rng(seed), bg, canvas, sources, settings)


@pytest.mark.parametrize("seed", range(5))
def test_every_label_has_object_pixels_and_every_object_pixel_a_label(seed):
    image, classes, instances, pasted = _compose(_sources(), seed)
    assert pasted > 5
    labelled = classes > 0
    assert (image[labelled] >= 0.5 - 1e-5).all()      # no label without object pixels
    assert labelled[image >= 0.75].all()                 # mostly-object pixels are labelled
    assert ((instances > 0) == labelled).all()


def test_classes_follow_the_topmost_object():
    sources = _sources(classes=(1, 2, 3))
    image, classes, instances, pasted = _compose(sources, 3)
    assert set(np.unique(classes)) <= {0, 1, 2, 3}
    assert len(set(np.unique(classes)) - {0}) >= 2
    # every instance carries one class only
    for inst in np.unique(instances[instances > 0]):
        assert len(np.unique(classes[instances == inst])) == 1


def test_later_paste_occludes_without_erasing_visible_label():
    image = np.zeros((40, 40), np.float32)
    classes = np.zeros((40, 40), np.uint8)
    instances = np.zeros((40, 40), np.int32)
    gray, alpha = _disc(8)
    paste_object(image, classes, instances, gray, alpha, 5, 5, 1, 1, seam_blur=False)
    first = classes == 1
    paste_object(image, classes, instances, gray * 0.9, alpha, 5, 12, 2, 2, seam_blur=False)
    assert (classes == 2).sum() == int((alpha >= 0.5).sum())          # the new object whole
    still = first & (classes != 2)
    assert still.any() and (classes[still] == 1).all()              # the old one where still visible


def test_fill_objects_leaves_no_trace_of_the_object():
    rng = np.random.default_rng(0)
    image, labels = render_particle_scene((128, 128), count=6, polarity="dark", seed=2, gradient=0.0)
    gray = image.astype(np.float32) / 255
    from scipy import ndimage as ndi
    objects = ndi.binary_dilation(labels > 0, iterations=3)
    filled = fill_objects(gray, objects, 0.02, rng)
    background = gray[~objects]
    assert abs(filled[objects].mean() - background.mean()) < 0.03
    assert filled[objects].std() < 3 * background.std()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    photos = root / "photos"
    photos.mkdir()
    for i in range(2):
        image, _ = render_particle_scene((320, 400), count=18, polarity="dark", seed=10 + i)
        write_image(photos / f"photo{i}.png", image)
    run_autoseg(photos, root / "wd")
    return root / "wd"


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_and_image_i_independent_of_count(workdir, tmp_path):
    wd = WorkingDirectory(workdir)
    run_synthesize(workdir, settings=SynthesisSettings(count=4, size=96, seed=7))
    first = {**_digest(wd.synthetic_images), **{"m" + k: v for k, v in _digest(wd.synthetic_masks).items()}}
    run_synthesize(workdir, settings=SynthesisSettings(count=4, size=96, seed=7))
    again = {**_digest(wd.synthetic_images), **{"m" + k: v for k, v in _digest(wd.synthetic_masks).items()}}
    assert first == again
    run_synthesize(workdir, settings=SynthesisSettings(count=2, size=96, seed=7))
    fewer = _digest(wd.synthetic_images)
    assert fewer == {k: first[k] for k in fewer} and len(fewer) == 2  # old images replaced, not mixed
    run_synthesize(workdir, settings=SynthesisSettings(count=2, size=96, seed=8))
    assert _digest(wd.synthetic_images) != fewer


def test_images_and_masks_pair_by_name_and_hold_objects(workdir):
    wd = WorkingDirectory(workdir)
    result = run_synthesize(workdir, settings=SynthesisSettings(count=6, size=128, seed=1))
    assert result.images == 6 and result.objects_pasted > 6 and result.photo_backgrounds == 2
    images = sorted(p.name for p in wd.synthetic_images.iterdir())
    assert images == sorted(p.name for p in wd.synthetic_masks.iterdir())
    fractions = []
    for name in images:
        image, mask = read_image(wd.synthetic_images / name), read_image(wd.synthetic_masks / name)
        assert image.shape == mask.shape == (128, 128) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1}
        fractions.append((mask > 0).mean())
        if (mask > 0).any() and (mask == 0).any():
            # dark particles: labelled pixels darker than the rest
            assert image[mask > 0].mean() < image[mask == 0].mean()
        assert image.std() > 5  # never a black or flat image
    assert 0.01 < np.mean(fractions) < 0.6
    assert (wd.synthetic / "synthesis.json").exists()


def test_coco_annotations_hold_every_pasted_object_exactly(workdir):
    """The synthetic set as COCO instances for other tools: the objects of
    each image decode back to exactly its mask, each object its own."""
    from pycocotools import mask as coco_mask
    from pycocotools.coco import COCO

    wd = WorkingDirectory(workdir)
    result = run_synthesize(workdir, settings=SynthesisSettings(count=4, size=128, seed=3))
    coco = COCO(str(wd.synthetic / "annotations.json"))
    assert sorted(img["file_name"] for img in coco.dataset["images"]) == sorted(
        p.name for p in wd.synthetic_masks.iterdir())
    assert coco.dataset["categories"] == [{"id": 1, "name": "object", "supercategory": "object"}]
    counted = 0
    for image in coco.dataset["images"]:
        mask = read_image(wd.synthetic_masks / image["file_name"])
        union = np.zeros(mask.shape, np.int32)
        for annotation in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])):
            union += coco_mask.decode(coco.annToRLE(annotation)).astype(np.int32)
            counted += 1
        np.testing.assert_array_equal(union, mask > 0)  # no overlap, nothing left out
    assert 0 < counted <= result.objects_pasted  # objects wholly covered by later ones are gone


def test_multi_class_pool_gives_class_index_masks(workdir, tmp_path):
    import shutil
    copy = tmp_path / "wd"
    shutil.copytree(workdir, copy)
    wd = WorkingDirectory(copy)
    rows = wd.read_index()
    for k, row in enumerate(rows):
        row["class"] = 1 + k % 2
    wd.write_index(rows)
    result = run_synthesize(copy, settings=SynthesisSettings(count=4, size=128, objects_per_image=20))
    assert result.num_classes == 3
    values = set()
    for p in wd.synthetic_masks.iterdir():
        values |= set(np.unique(read_image(p)).tolist())
    assert values == {0, 1, 2}


def test_photo_that_is_all_objects_gives_no_background_and_no_nan(workdir, tmp_path):
    import json
    import shutil
    copy = tmp_path / "wd"
    shutil.copytree(workdir, copy)
    project = json.loads((copy / "project.json").read_text())
    photos = project["stages"]["autoseg"]["photos"]
    first = sorted(photos)[0]
    mask = copy / "autoseg" / photos[first]["mask"]
    write_image(mask, np.full(read_image(mask).shape, 255, np.uint8))
    messages = []

    class Log(Progress):
        def log(self, message):
            messages.append(message)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = run_synthesize(copy, settings=SynthesisSettings(count=4, size=96, seed=3), progress=Log())
    assert result.photo_backgrounds == 1
    assert any(first in m and "background" in m for m in messages)
    for name in sorted(WorkingDirectory(copy).synthetic_images.iterdir()):
        assert np.isfinite(read_image(name).astype(float)).all()
    rng = np.random.default_rng(0)
    assert fill_objects(np.full((20, 20), 0.5, np.float32), np.ones((20, 20), bool), 0.01, rng) is None


def test_empty_or_missing_pool(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        run_synthesize(tmp_path / "nowhere")
    WorkingDirectory(tmp_path / "wd").ensure()
    with pytest.raises(UserInputError, match="empty"):
        run_synthesize(tmp_path / "wd")
    assert not any(WorkingDirectory(tmp_path / "wd").synthetic_images.iterdir())


def test_mismatched_pool_pair_is_refused_before_writing(workdir, tmp_path):
    import shutil
    copy = tmp_path / "wd"
    shutil.copytree(workdir, copy)
    wd = WorkingDirectory(copy)
    for p in list(wd.synthetic_images.iterdir()) + list(wd.synthetic_masks.iterdir()):
        p.unlink()
    name = wd.pool_files()[0]
    write_image(wd.objects_masks / name, np.zeros((3, 3), np.uint8))
    with pytest.raises(UserInputError, match=name):
        run_synthesize(copy)
    assert not any(wd.synthetic_images.iterdir())


def test_size_larger_than_every_background(workdir):
    with pytest.raises(UserInputError, match="larger than every background"):
        run_synthesize(workdir, settings=SynthesisSettings(count=2, size=2048, object_diameter=32))


@pytest.mark.parametrize("count", [0, -3])
def test_absurd_counts_are_refused(workdir, count):
    with pytest.raises(UserInputError, match="at least 1"):
        run_synthesize(workdir, settings=SynthesisSettings(count=count))


def test_cli(workdir):
    ok = run_app("synthesize", "--workdir", workdir, "--count", "3", "--size", "64", "--seed", "2")
    assert ok.returncode == 0, ok.stderr
    assert "Made 3 synthetic image(s)" in ok.stdout
    bad = run_app("synthesize", "--workdir", workdir, "--count", "0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_objects_larger_than_the_image_are_shrunk_to_fit():
    photo = PhotoStats(name="p.png", polarity="bright", background_level=0.0, object_level=1.0, noise=0.0,
                       objects=3, width=256, height=256)
    gray, alpha = _disc(60)
    sources = Sources([PoolObject("big.png", gray, alpha, 1, photo, 3.0)], [], {"p.png": photo}, 2)
    image, classes, instances, pasted = _compose(sources, 0)
    assert pasted >= 1 and classes.any()
    whole = 0
    for k in np.unique(instances[instances > 0]):
        ys, xs = np.nonzero(instances == k)
        height, width = np.ptp(ys) + 1, np.ptp(xs) + 1
        assert height < 128 and width < 128  # the 125-pixel disc at 3x was brought down to fit
        whole += len(ys) > 0.6 * np.pi * ((height + width) / 4) ** 2  # a disc, not cut by the edge
    assert whole >= 1
