import io

import numpy as np
import pytest
from PIL import Image

import segmentation.annotations as annotations
from segmentation import find_annotations
from synthetic.scenes import draw_panel_letter, draw_scale_bar, render_particle_scene


def _saved_as_jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("L"))


@pytest.fixture
def labelled_jpeg():
    """Bright particles on a dark background with a white scale bar, its
    label and a panel letter burned in, saved as JPEG: the label's strokes
    are smeared over several levels below white."""
    image, truth = render_particle_scene((400, 520), count=15, polarity="bright", seed=5)
    drawn = np.zeros(image.shape, bool)
    boxes = [draw_scale_bar(image, value=255), draw_panel_letter(image, value=255)]
    for r0, c0, r1, c1 in boxes:
        drawn[r0:r1, c0:c1] = image[r0:r1, c0:c1] == 255
    return _saved_as_jpeg(image), truth, drawn, boxes


def test_marks_of_a_jpeg_photo_are_found_whole(labelled_jpeg):
    photo, truth, drawn, boxes = labelled_jpeg
    assert photo[drawn].min() < 250  # the strokes are no longer pure white
    marks = find_annotations(photo.astype(np.float32))
    assert marks[drawn].mean() > 0.99
    # particles away from the marks are left alone
    near = np.zeros_like(marks)
    for r0, c0, r1, c1 in boxes:
        near[max(0, r0 - 10):r1 + 10, max(0, c0 - 10):c1 + 10] = True
    apart = (truth > 0) & ~np.isin(truth, np.unique(truth[near]))
    assert apart.sum() > 1000
    assert not marks[apart].any()


def test_marks_at_one_level_only_miss_most_of_a_jpeg_label(labelled_jpeg, monkeypatch):
    """The test above fails where only the extreme value itself counts."""
    photo, _, drawn, _ = labelled_jpeg
    monkeypatch.setattr(annotations, "SAVED_TOLERANCE", 0.0)
    assert find_annotations(photo.astype(np.float32))[drawn].mean() < 0.6


def test_auto_segmentation_of_a_jpeg_photo_leaves_its_label_out(labelled_jpeg):
    from segmentation import find_objects

    photo, truth, drawn, boxes = labelled_jpeg
    found = find_objects(photo)
    r0, c0, r1, c1 = boxes[0]
    assert not found.foreground[r0:r1, c0:c1][drawn[r0:r1, c0:c1]].any()
    assert found.count >= 10


def _grains_with_a_bright_phase(seed: int = 0):
    """Grey grains on a dark mount, each with short veins of a phase a
    few levels below white, and a white scale bar: the photo itself
    reaches its bright extreme all over, as polished mineral grains do."""
    rng = np.random.default_rng(seed)
    h, w = 400, 520
    image = np.full((h, w), 60, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    veins = np.zeros((h, w), bool)
    for _ in range(40):
        cy, cx, r = rng.integers(20, h - 20), rng.integers(20, w - 20), rng.integers(15, 35)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 120
        for _ in range(3):
            angle, half = rng.uniform(0, np.pi), rng.integers(4, 10)
            t = np.linspace(-half, half, 60)
            ys, xs = (cy + t * np.sin(angle)).astype(int), (cx + t * np.cos(angle)).astype(int)
            inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
            image[ys[inside], xs[inside]] = 253
            veins[ys[inside], xs[inside]] = True
    bar = draw_scale_bar(image, value=255)
    return image, veins, bar


@pytest.mark.parametrize("content_share, veins_marked", [(annotations.CONTENT_SHARE, False), (1.0, True)])
def test_a_photo_that_reaches_white_itself_keeps_its_bright_phase(monkeypatch, content_share, veins_marked):
    """Near-white pixels are taken for smeared marks only where the photo's
    inside holds next to none of them; with that check off (share 1.0)
    the veins inside the grains would be cut out as glyphs."""
    image, veins, (r0, c0, r1, c1) = _grains_with_a_bright_phase()
    monkeypatch.setattr(annotations, "CONTENT_SHARE", content_share)
    marks = find_annotations(image.astype(np.float32))
    assert marks[r0:r1, c0:c1].any()  # the scale bar is found either way
    away = veins.copy()
    away[max(0, r0 - 12):r1 + 12, max(0, c0 - 12):c1 + 12] = False
    assert marks[away].any() == veins_marked


@pytest.mark.slow  # a child process
def test_autoseg_cli_on_a_jpeg_file_leaves_its_label_out_of_the_mask(tmp_path, labelled_jpeg):
    """The way a user goes: a folder holding a JPEG micrograph with a
    white scale bar and label, auto-segmented from the command line."""
    from core.imageio import read_image
    from helpers import run_app

    photo, truth, drawn, boxes = labelled_jpeg
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(photo).save(photos / "micrograph.jpg", quality=95)  # the smeared label as saved
    result = run_app("autoseg", "--images", photos, "--workdir", tmp_path / "wd")
    assert result.returncode == 0, result.stderr
    mask = read_image(tmp_path / "wd" / "autoseg" / "micrograph_mask.png") > 0
    assert not mask[drawn].any()
    found = mask & (truth > 0)
    assert found.sum() > 0.5 * (truth > 0).sum()
