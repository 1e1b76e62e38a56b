"""The scale check judges each candidate scale on one part of the photo, so
that a candidate that enlarges the photo four times costs about one tile,
and picks the scale where the model is surest there."""

import numpy as np
import pytest

import inference.predict as predict
import inference.scale as scale_module
from inference.scale import CHECK_SIDE, check_region, surest_scale

META = {"classes": ["background", "object"], "normalization": {"mode": "percentile", "low": 0.5, "high": 99.5},
        "object_diameter": 16}


def test_the_region_is_where_the_first_look_saw_most_outlines():
    mask = np.zeros((400, 600), np.uint8)
    for y in range(300, 390, 12):
        for x in range(450, 590, 12):
            mask[y:y + 6, x:x + 6] = 1  # many small objects in the lower right
    mask[20:200, 20:200] = 1  # one large object: much area, little outline
    rows, cols = check_region(mask, mask.shape, 128)
    assert rows.stop - rows.start == 128 and cols.stop - cols.start == 128
    assert rows.start >= 262 and cols.start >= 420
    assert check_region(mask, mask.shape, 1000) == (slice(0, 400), slice(0, 600))
    assert check_region(None, mask.shape, 100) == (slice(150, 250), slice(250, 350))  # nothing seen: the centre


def test_candidates_are_judged_on_a_part_and_the_surest_wins(monkeypatch):
    seen = []

    def model_sure_at_two(model, meta, image, *, scale, normalized=False, **kwargs):
        seen.append((image.shape, scale, normalized))
        foreground = np.full(image.shape[:2], 0.9 if abs(scale - 2.0) < 1e-6 else 0.6, np.float32)
        return (foreground > 0.5).astype(np.uint8), foreground

    monkeypatch.setattr(predict, "predict_mask", model_sure_at_two)
    photo = np.random.default_rng(0).integers(0, 255, (1000, 1200), np.uint8)
    first = np.zeros(photo.shape, np.uint8)
    first[::20, ::20] = 1
    chosen, known = surest_scale(None, META, photo, 2.0, None, None, first=first)
    assert chosen == 2.0 and known is None  # the photo was not predicted whole at 2
    largest = max(seen, key=lambda s: s[1])
    height, width = largest[0]
    # at the largest candidate the part is CHECK_SIDE network pixels plus a margin, not the whole photo
    assert height * largest[1] <= 1.6 * CHECK_SIDE and width * largest[1] <= 1.6 * CHECK_SIDE
    # each candidate sees about as many network pixels: a smaller scale a larger part of the photo
    middle = [s for s in seen if abs(s[1] - 2.0) < 1e-6][0]
    assert middle[0][0] > 1.3 * height and middle[0][0] * 2.0 <= 1.6 * CHECK_SIDE
    assert all(normalized for _, _, normalized in seen)  # scaled as the whole photo is


@pytest.mark.parametrize("side", [0, CHECK_SIDE])
def test_without_a_part_every_candidate_sees_the_whole_photo(monkeypatch, side):
    shapes = []

    def sure_nowhere(model, meta, image, *, scale, **kwargs):
        shapes.append(image.shape)
        foreground = np.full(image.shape[:2], 0.7, np.float32)
        return np.ones(image.shape[:2], np.uint8), foreground

    monkeypatch.setattr(predict, "predict_mask", sure_nowhere)
    monkeypatch.setattr(scale_module, "CHECK_SIDE", side)
    photo = np.zeros((900, 900), np.uint8)
    chosen, _ = surest_scale(None, META, photo, 1.0, None, None)
    assert chosen == 1.0
    if side == 0:
        assert set(shapes) == {(900, 900)}
    else:
        assert min(h * w for h, w in shapes) < 900 * 900
