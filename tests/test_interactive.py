"""Interactive mask operations: contour filling and object picking, on
small hand-made masks whose answer is known pixel by pixel."""

import numpy as np
import pytest

from segmentation.interactive import (
    extend_into,
    fill_closed_contours,
    label_objects,
    object_at,
    object_classes,
    objects_at,
    plan_fill,
)


def ring(shape=(12, 14), box=(2, 3, 8, 10)):
    """A one-pixel-wide closed square outline."""
    mask = np.zeros(shape, bool)
    r0, c0, r1, c1 = box
    mask[r0, c0:c1 + 1] = mask[r1, c0:c1 + 1] = True
    mask[r0:r1 + 1, c0] = mask[r0:r1 + 1, c1] = True
    return mask


def test_background_click_fills_the_inside_of_a_closed_outline():
    mask = ring()
    filled = fill_closed_contours(mask, (0, 0))
    expected = np.zeros_like(mask)
    expected[2:9, 3:11] = True
    assert filled.dtype == bool
    np.testing.assert_array_equal(filled, expected)


def test_open_outline_is_not_filled():
    mask = ring()
    mask[5, 3] = False  # a gap in the left side
    filled = fill_closed_contours(mask, (0, 0))
    np.testing.assert_array_equal(filled, mask)


def diamond(size=11):
    """An 8-connected diamond outline (diagonal steps only) centred in the image."""
    mask = np.zeros((size, size), bool)
    c = size // 2
    for i in range(c):
        mask[1 + i, c + i] = mask[1 + i, c - i] = mask[size - 2 - i, c + i] = mask[size - 2 - i, c - i] = True
    return mask


def test_diagonal_outline_closes_the_contour():
    # Background is 4-connected, so it cannot leak through the diagonal steps.
    mask = diamond()
    filled = fill_closed_contours(mask, (0, 0))
    assert filled[5, 5] and filled[3, 5] and filled[5, 3]
    assert not filled[0, 0] and not filled[10, 10] and not filled[1, 1]


def test_background_cut_by_a_border_object_stays_background():
    # A diagonal band from the top edge to the left edge cuts off the corner.
    mask = np.zeros((12, 12), bool)
    for i in range(6):
        mask[i, 5 - i] = mask[i, 6 - i] = True
    filled = fill_closed_contours(mask, (11, 11))
    assert not filled[0, 0]  # the cut-off corner is not enclosed by a contour
    np.testing.assert_array_equal(filled, mask)
    literal = fill_closed_contours(mask, (11, 11), border_is_open=False)
    assert literal[0, 0] and literal[1, 1]


def test_every_unreachable_region_is_filled_and_counted():
    mask = ring((20, 30), (2, 2, 8, 8)) | ring((20, 30), (10, 15, 17, 27))
    plan = plan_fill(mask, (19, 0))
    assert plan.regions == 2
    assert plan.added_pixels == 5 * 5 + 6 * 11
    assert not plan.seed_enclosed
    assert not (plan.added & mask).any()


def test_seed_inside_a_hole_is_reported_as_enclosed():
    mask = ring()
    plan = plan_fill(mask, (5, 6))
    assert plan.seed_enclosed
    assert plan.added_pixels == 0  # the clicked hole itself stays open
    assert not plan_fill(mask, (0, 0)).seed_enclosed


def test_seed_on_an_object_or_outside_is_refused():
    mask = ring()
    with pytest.raises(ValueError, match="on an object"):
        fill_closed_contours(mask, (2, 3))
    with pytest.raises(ValueError, match="outside"):
        fill_closed_contours(mask, (12, 0))


def test_label_objects_uses_8_connectivity():
    mask = np.zeros((5, 5), np.uint8)
    mask[0, 0] = mask[1, 1] = 2  # diagonal neighbours: one object
    mask[4, 4] = 1
    labels = label_objects(mask)
    assert labels.dtype == np.int32
    assert labels.max() == 2
    assert labels[0, 0] == labels[1, 1] != labels[4, 4]


def test_object_at_and_objects_at():
    labels = np.zeros((6, 7), np.int32)
    labels[1:3, 1:3] = 4
    labels[4:6, 5:7] = 9
    assert object_at(labels, (1, 2)) == 4
    assert object_at(labels, (0, 0)) == 0
    assert object_at(labels, (6, 0)) == 0  # outside
    assert objects_at(labels, [(1, 1), (2, 2), (5, 6), (0, 0), (-1, 3), (40, 40)]) == [4, 9]
    assert objects_at(labels, []) == []


def test_extend_into_gives_holes_the_surrounding_value():
    values = np.zeros((10, 10), np.int32)
    values[1:5, 1:5] = 3
    values[2:4, 2:4] = 0  # hole in object 3
    values[6:9, 6:9] = 7
    values[7, 7] = 0  # hole in object 7
    holes = np.zeros((10, 10), bool)
    holes[2:4, 2:4] = True
    holes[7, 7] = True
    out = extend_into(values, holes)
    assert (out[2:4, 2:4] == 3).all()
    assert out[7, 7] == 7
    assert (out[~holes] == values[~holes]).all()
    assert values[7, 7] == 0  # input untouched


def test_object_classes_takes_the_majority_class():
    labels = np.zeros((4, 6), np.int32)
    labels[:, :3] = 1
    labels[:, 3:] = 2
    classes = np.zeros((4, 6), np.uint8)
    classes[:, :3] = 2
    classes[0, 0] = 1
    classes[:, 3:] = 3
    assert object_classes(labels, classes, [1, 2, 5]) == {1: 2, 2: 3}
