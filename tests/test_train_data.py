"""The training data: pairing by name, mask checks, normalisation, augmentation."""

import numpy as np
import pytest

from core.errors import UserInputError
from core.gray import to_gray_float
from core.imageio import write_image
from training.data_files import pair_files, scan_data
from training.dataset import Augmentation, augment, grid_starts, patches_per_image, split_indices
from training.history import format_epoch_line, parse_epoch_line
from training.normalize import default_spec, normalize_image


def _folder(tmp_path, names, mask_value=1, size=16):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    for name in names:
        image = np.arange(size * size, dtype=np.uint16).reshape(size, size)
        write_image(tmp_path / "images" / name, image if name.endswith(".tif") else image.astype(np.uint8))
        mask = np.zeros((size, size), np.uint8)
        mask[:4, :4] = mask_value
        write_image(tmp_path / "masks" / (name.rsplit(".", 1)[0] + ".png"), mask)
    return tmp_path


def test_pairs_by_stem_whatever_the_extension_and_order(tmp_path):
    _folder(tmp_path, ["b.tif", "a.png", "c.jpg"])
    pairs = pair_files(tmp_path)
    assert [(p.stem, p.image.suffix, p.mask.name) for p in pairs] == [
        ("a", ".png", "a.png"), ("b", ".tif", "b.png"), ("c", ".jpg", "c.png")]


def test_duplicate_stems_are_refused(tmp_path):
    _folder(tmp_path, ["a.png", "a.tif"])
    with pytest.raises(UserInputError, match="share the name 'a'"):
        pair_files(tmp_path)


def test_binary_0_255_masks_become_two_classes(tmp_path):
    _folder(tmp_path, ["a.png", "b.png"], mask_value=255)
    data = scan_data(tmp_path)
    assert data.binary_255 and data.num_classes == 2
    np.testing.assert_array_equal(data.class_counts, [2 * (256 - 16), 2 * 16])
    assert data.class_names == ["background", "object"]


def test_instance_label_masks_are_refused_as_training_masks(tmp_path):
    _folder(tmp_path, ["a.png"], mask_value=40)
    with pytest.raises(UserInputError, match="must hold class indices"):
        scan_data(tmp_path)


def test_percentile_mode_matches_the_core_gray_float():
    image = np.random.default_rng(0).integers(0, 4096, (40, 50)).astype(np.uint16)
    np.testing.assert_allclose(normalize_image(image, default_spec("percentile")), to_gray_float(image), atol=1e-6)


def test_detector_mode_keeps_faint_clusters_and_hot_pixels_apart():
    rng = np.random.default_rng(0)
    frame = (1000 + rng.normal(0, 4, (64, 64))).astype(np.float32)
    frame[10, 10] = 60000  # hot pixel
    frame[30:33, 30:33] += 20  # faint cluster, 5 sigma
    out = normalize_image(frame, default_spec("detector"))
    assert abs(np.median(out)) < 0.05  # pedestal removed
    assert out[30:33, 30:33].mean() > 1.0 > np.abs(np.median(out)) + 0.5
    assert np.isfinite(out).all() and out[10, 10] > 2 * out[30:33, 30:33].mean()
    percentile = normalize_image(frame, default_spec("percentile"))
    assert percentile[10, 10] == percentile[31, 31] == 1.0  # what clipping would have done


def test_augmentation_moves_image_and_mask_together():
    rng = np.random.default_rng(0)
    mask = np.zeros((16, 16), np.uint8)
    mask[1:4, 2:9] = 1
    mask[10, 12] = 2
    plain = Augmentation(contrast=0, brightness=0, noise=0, blur=0)
    seen = set()
    for _ in range(20):
        image, target = augment(mask.astype(np.float32), mask, rng, plain, clip=False)
        np.testing.assert_array_equal(image, target)
        seen.add(target.tobytes())
    assert len(seen) > 4  # rotations and flips happen
    assert Augmentation.for_mode("detector").blur == 0  # a blurred hot pixel would look like a cluster
    image, _ = augment(np.full((8, 8), 0.5, np.float32), np.zeros((8, 8), np.uint8), rng, Augmentation(),
                       clip=True)
    assert image.min() >= 0 and image.max() <= 1


def test_split_is_seeded_and_disjoint():
    train, val = split_indices(20, 0.2, seed=3)
    assert len(val) == 4 and not set(train) & set(val) and sorted(train + val) == list(range(20))
    assert split_indices(20, 0.2, seed=3) == (train, val) != split_indices(20, 0.2, seed=4)
    assert split_indices(1, 0.2, seed=0) == ([0], [0])


def test_patch_helpers():
    assert grid_starts(100, 64) == [0, 36] and grid_starts(50, 64) == [0]
    assert patches_per_image((512, 512), 256) == 4 and patches_per_image((10, 10), 256) == 1


def test_epoch_line_round_trip():
    line = format_epoch_line(3, 30, {"loss": 0.25, "val_iou_hot_pixel": 0.5})
    assert line == "epoch 3/30: loss=0.25 val_iou_hot_pixel=0.5"
    assert parse_epoch_line(line) == (3, 30, {"loss": 0.25, "val_iou_hot_pixel": 0.5})
    assert parse_epoch_line("Training: new U-Net") is None


def test_a_classes_file_beside_the_synthesis_description_keeps_the_object_size(tmp_path):
    import json

    from training.data_files import read_class_names, read_description

    (tmp_path / "synthesis.json").write_text(json.dumps({"object_diameter": 24.5, "classes": ["background", "object"]}))
    (tmp_path / "classes.json").write_text(json.dumps(["background", "particle"]))
    description = read_description(tmp_path)
    assert description["object_diameter"] == 24.5  # from synthesis.json
    assert read_class_names(tmp_path, 2) == ["background", "particle"]  # the user's names win
