"""Splitting touching objects into instances, on drawn shapes of known count."""

import numpy as np
import pytest
from skimage.draw import disk, polygon

from segmentation.instances import label_instances, split_touching, touches_border


def discs(shape, centres, radii):
    mask = np.zeros(shape, bool)
    for (cy, cx), r in zip(centres, np.broadcast_to(radii, (len(centres),))):
        rr, cc = disk((cy, cx), r, shape=shape)
        mask[rr, cc] = True
    return mask


def rotated_rectangle(shape, centre, length, width, angle_deg):
    # centre is (y, x); angle from the x axis; u along the rod, v across it.
    a = np.deg2rad(angle_deg)
    u, v = np.array([np.sin(a), np.cos(a)]), np.array([np.cos(a), -np.sin(a)])
    c = np.asarray(centre, float)
    corners = [c + sx * length / 2 * u + sy * width / 2 * v for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    ys, xs = zip(*corners)
    mask = np.zeros(shape, bool)
    rr, cc = polygon(ys, xs, shape)
    mask[rr, cc] = True
    return mask


def test_two_touching_discs_are_split_in_two():
    mask = discs((100, 140), [(50, 45), (50, 79)], 20)  # centres 1.7 radii apart
    assert np.unique(mask).size == 2 and split_touching(mask).max() == 2
    labels = split_touching(mask)
    assert labels.dtype == np.int32
    # Nothing lost or added: the objects cover exactly the mask.
    assert np.array_equal(labels > 0, mask)
    # Each half holds one disc centre.
    assert labels[50, 45] != labels[50, 79]


def test_cluster_of_discs_gives_the_right_count():
    centres = [(60, 60), (60, 95), (60, 130), (92, 78), (92, 112), (30, 78), (124, 95)]
    mask = discs((160, 200), centres, 19)
    from scipy import ndimage as ndi

    assert ndi.label(mask)[1] == 1  # one blob before splitting
    labels = split_touching(mask)
    assert labels.max() == len(centres)
    assert len({labels[c] for c in centres}) == len(centres)


def test_discs_of_different_size_are_split():
    mask = discs((120, 160), [(60, 55), (60, 96)], [30, 14])
    labels = split_touching(mask)
    assert labels.max() == 2
    assert labels[60, 55] != labels[60, 100]


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_splitting_does_not_depend_on_the_pixel_scale(scale):
    # The same scene at three magnifications: no absolute size is built in.
    centres = [(s * scale, t * scale) for s, t in ((40, 40), (40, 72), (72, 56))]
    mask = discs((int(120 * scale), int(120 * scale)), centres, 18 * scale)
    assert split_touching(mask).max() == 3


@pytest.mark.parametrize("angle", [0, 30, 77])
def test_elongated_rods_are_not_split(angle):
    mask = rotated_rectangle((200, 200), (100, 100), 150, 14, angle)
    assert split_touching(mask).max() == 1


def test_rod_with_rough_edges_is_not_split():
    rng = np.random.default_rng(3)
    mask = rotated_rectangle((120, 260), (60, 130), 220, 18, 0)
    # One-pixel bites and bumps along both long edges.
    assert np.flatnonzero(mask.any(axis=1))[[0, -1]].tolist() == [51, 69]
    for x in rng.choice(np.arange(25, 235), 60, replace=False):
        row = rng.choice([50, 51, 69, 70])
        mask[row, x] = row in (50, 70)
    assert split_touching(mask).max() == 1


def test_ring_of_touching_discs_around_a_large_hole():
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    centres = [(100 + 55 * np.sin(a), 100 + 55 * np.cos(a)) for a in angles]
    mask = discs((200, 200), centres, 24)
    assert split_touching(mask).max() == 8


def test_irregular_grain_and_l_shape_stay_whole():
    yy, xx = np.mgrid[:200, :200]
    theta = np.arctan2(yy - 100, xx - 100)
    radius = 60 * (1 + 0.12 * np.sin(5 * theta) + 0.06 * np.cos(3 * theta))
    grain = np.hypot(yy - 100, xx - 100) < radius
    assert split_touching(grain).max() == 1
    ell = np.zeros((120, 120), bool)
    ell[10:110, 10:35] = True
    ell[85:110, 10:110] = True
    assert split_touching(ell).max() == 1


def test_dumbbell_with_a_thin_neck_is_split():
    mask = discs((100, 200), [(50, 50), (50, 150)], 28)
    mask[46:54, 50:150] = True  # a bar a fraction of the discs' width
    labels = split_touching(mask)
    assert labels.max() == 2


def test_specks_are_dropped_and_min_size_is_honoured():
    mask = discs((100, 100), [(30, 30), (70, 70)], 12)
    mask[5, 90] = True  # a one-pixel speck
    assert split_touching(mask).max() == 2
    assert split_touching(mask, min_size=1).max() == 3
    assert split_touching(mask, min_size=10_000).max() == 0


def test_empty_mask_and_bad_input():
    assert split_touching(np.zeros((10, 12), bool)).max() == 0
    assert split_touching(np.zeros((10, 12), bool)).shape == (10, 12)
    with pytest.raises(ValueError):
        split_touching(np.zeros((2, 3, 4), bool))
    with pytest.raises(ValueError):
        split_touching(np.ones((4, 4), bool), neck_ratio=1.5)


def test_neck_ratio_zero_keeps_connected_components():
    mask = discs((100, 140), [(50, 45), (50, 79)], 20)
    assert split_touching(mask, neck_ratio=0.0).max() == 1


def test_label_instances_keeps_classes_apart():
    class_mask = np.zeros((100, 160), np.uint8)
    class_mask[discs((100, 160), [(50, 40), (50, 72)], 18)] = 1  # two touching class-1 discs
    class_mask[discs((100, 160), [(50, 112)], 18)] = 2  # a class-2 disc touching them
    labels, classes = label_instances(class_mask)
    assert labels.max() == 3
    assert classes.tolist()[0] == 0 and sorted(classes.tolist()[1:]) == [1, 1, 2]
    assert np.array_equal(classes[labels], class_mask)
    unsplit, unsplit_classes = label_instances(class_mask, split=False)
    assert unsplit.max() == 2 and sorted(unsplit_classes[1:].tolist()) == [1, 2]


def test_single_pixel_objects_of_their_own_class_are_kept():
    class_mask = np.zeros((60, 60), np.uint8)
    class_mask[discs((60, 60), [(30, 30)], 12)] = 1  # a cluster
    hot = [(5, 5), (5, 50), (50, 8), (55, 55)]
    for y, x in hot:
        class_mask[y, x] = 2  # hot pixels
    labels, classes = label_instances(class_mask)
    assert np.bincount(classes)[2] == len(hot)
    assert all(classes[labels[y, x]] == 2 for y, x in hot)


def test_label_instances_accepts_bool_and_empty_masks():
    labels, classes = label_instances(np.zeros((8, 8), bool))
    assert labels.max() == 0 and classes.tolist() == [0]
    labels, classes = label_instances(discs((50, 50), [(25, 25)], 10))
    assert labels.max() == 1 and classes.tolist() == [0, 1]


def test_touches_border_lists_cut_objects():
    labels = np.zeros((50, 60), np.int32)
    labels[0:5, 10:20] = 1  # top edge
    labels[20:30, 20:30] = 2  # inside
    labels[40:50, 55:60] = 3  # bottom-right corner
    labels[10:20, 0:3] = 4  # left edge
    assert touches_border(labels).tolist() == [1, 3, 4]
    assert touches_border(np.zeros((5, 5), np.int32)).size == 0


def hexagonal_packing(shape, centre, radius, spacing):
    """Seven discs packed edge to edge (one in the middle, six around)."""
    cy, cx = centre
    centres = [(cy, cx)] + [(cy + spacing * np.sin(a), cx + spacing * np.cos(a))
                            for a in np.deg2rad(np.arange(0, 360, 60))]
    return discs(shape, centres, radius), [(round(y), round(x)) for y, x in centres]


def packing_photo():
    """A packing of seven discs overlapping a little (their fronts touch
    with no neck once the holes between them are filled) beside four single
    particles of the same size: the mask with its gaps and the filled mask."""
    from scipy import ndimage as ndi

    mask, centres = hexagonal_packing((160, 260), (80, 80), 14, 26.5)
    singles = [(30, 200), (80, 200), (130, 200), (130, 150)]
    mask |= discs(mask.shape, singles, 14)
    filled = ndi.binary_fill_holes(mask)
    return mask, filled, centres, singles


def test_packed_particles_are_split_at_the_gaps_where_they_meet():
    mask, filled, centres, singles = packing_photo()
    assert (filled & ~mask).sum() > 0  # small gaps where three discs meet
    without = split_touching(filled)
    assert len({without[c] for c in centres}) < 7  # the filled packing has no necks inside
    labels = split_touching(filled, gaps=filled & ~mask)
    assert len({labels[c] for c in centres}) == 7
    assert labels.max() == 7 + len(singles)
    assert np.array_equal(labels > 0, filled)  # the gaps go to the pieces: nothing lost


def test_pinholes_in_a_textured_particle_do_not_cut_it():
    rng = np.random.default_rng(3)
    mask = discs((200, 300), [(100, 80), (60, 220), (150, 220)], 45)
    particle = discs(mask.shape, [(100, 80)], 45)
    holes = np.zeros(mask.shape, bool)
    for _ in range(40):
        y, x = rng.integers(60, 140), rng.integers(40, 120)
        holes |= discs(mask.shape, [(y, x)], 2) & particle
    assert holes.sum() > 0.04 * particle.sum()
    assert np.unique(split_touching(mask & ~holes)[particle & ~holes]).size > 2  # the pits cut it apart
    labels = split_touching(mask, gaps=holes)
    assert labels.max() == 3
    assert np.unique(labels[particle]).size == 1


def test_pieces_far_smaller_than_the_photos_single_particles_are_not_split_off():
    """The floor on the pieces' size: a cluster whose gaps would cut it into
    pieces a third of the size of every single particle in the photo stays
    whole (pits in a textured particle cut it into such chunks)."""
    from scipy import ndimage as ndi

    import segmentation.instances as instances

    mask, centres = hexagonal_packing((160, 300), (80, 80), 14, 26.5)
    mask |= discs(mask.shape, [(40, 200), (120, 200), (40, 260), (120, 260)], 25)
    filled = ndi.binary_fill_holes(mask)
    labels = split_touching(filled, gaps=filled & ~mask)
    assert len({labels[c] for c in centres}) == 1 and labels.max() == 5
    floor = instances.MIN_PIECE_SHARE
    try:
        instances.MIN_PIECE_SHARE = 0.0  # without the floor the same gaps split it
        assert len({split_touching(filled, gaps=filled & ~mask)[c] for c in centres}) == 7
    finally:
        instances.MIN_PIECE_SHARE = floor


def test_a_mesh_around_large_holes_is_not_split_at_them():
    """A ring of particles around a hole as large as several of them: the
    hole is background enclosed by the ring, not a gap between particles."""
    from scipy import ndimage as ndi

    angles = np.deg2rad(np.arange(0, 360, 30))
    ring = discs((200, 200), [(100 + 50 * np.sin(a), 100 + 50 * np.cos(a)) for a in angles], 15)
    filled = ndi.binary_fill_holes(ring)
    gaps = filled & ~ring
    assert gaps.sum() > 0.2 * filled.sum()
    assert np.array_equal(split_touching(filled, gaps=gaps), split_touching(filled))
