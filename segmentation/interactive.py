"""Interactive corrections of a segmentation: filling closed contours by
clicking the background, and finding the objects under a click.

Pure numpy/scipy on arrays; the desktop application calls these from its
review view, and they are equally usable from a notebook.

Connectivity: objects are 8-connected and background is 4-connected, the
usual digital-topology pair, so a one-pixel-wide diagonal outline closes a
contour (the background flood cannot leak through its diagonal steps).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

_FOUR = ndi.generate_binary_structure(2, 1)
_EIGHT = ndi.generate_binary_structure(2, 2)


@dataclass
class FillResult:
    """What a background click does to a mask.

    Attributes
    ----------
    mask : ndarray of bool
        The mask after the fill.
    added : ndarray of bool
        Pixels that were background and became object.
    regions : int
        Number of separate background regions that were filled.
    seed_enclosed : bool
        True when the clicked background region does not touch the image
        border, i.e. the click was inside a hole of an object, which the
        fill then leaves open: rarely what the user meant.
    """

    mask: np.ndarray
    added: np.ndarray
    regions: int
    seed_enclosed: bool

    @property
    def added_pixels(self) -> int:
        return int(np.count_nonzero(self.added))


def _check_seed(shape: tuple[int, ...], seed_rc: Sequence[int]) -> tuple[int, int]:
    r, c = int(seed_rc[0]), int(seed_rc[1])
    if not (0 <= r < shape[0] and 0 <= c < shape[1]):
        raise ValueError(f"pixel ({r}, {c}) is outside the {shape[1]}x{shape[0]} image")
    return r, c


def plan_fill(mask: np.ndarray, seed_rc: Sequence[int], *, border_is_open: bool = True) -> FillResult:
    """Flood the background from ``seed_rc``; every background pixel it
    cannot reach becomes object.

    Parameters
    ----------
    mask : ndarray
        Object mask, (H, W); any non-zero value is object.
    seed_rc : (row, col)
        The clicked pixel; it must be background.
    border_is_open : bool
        Also flood from every background pixel on the image border. Objects
        that touch the border cut the open background into pieces; those
        pieces are not enclosed by a contour and stay background. With
        False only the seed's region is flooded (a corner cut off by a
        grain crossing it would be filled).

    Returns
    -------
    FillResult

    Raises
    ------
    ValueError
        When the pixel is outside the image or on an object.
    """
    obj = np.asarray(mask) != 0
    r, c = _check_seed(obj.shape, seed_rc)
    if obj[r, c]:
        raise ValueError(f"pixel ({r}, {c}) is on an object, not on the background")
    background, n_regions = ndi.label(~obj, structure=_FOUR)
    on_border = np.unique(np.concatenate(
        [background[0, :], background[-1, :], background[:, 0], background[:, -1]]))
    on_border = on_border[on_border != 0]
    seed_label = background[r, c]
    reachable = np.zeros(n_regions + 1, bool)
    reachable[seed_label] = True
    if border_is_open:
        reachable[on_border] = True
    reached = reachable[background]
    added = ~obj & ~reached
    filled_regions = int(n_regions - np.count_nonzero(reachable[1:]))
    return FillResult(mask=~reached, added=added, regions=filled_regions,
                      seed_enclosed=bool(seed_label not in on_border))


@dataclass
class OpenFill:
    """A click on the open background, worked out in advance.

    With the image border open, every click on the background connected to
    the border fills the same thing: every background region that does not
    touch the border. So it is computed once per mask (off the GUI thread)
    and a click only checks where it landed and swaps the arrays in.

    Attributes
    ----------
    background : ndarray of int32
        4-connected labels of the background of the mask it was made for.
    is_open : ndarray of bool
        ``is_open[label]``: that background region touches the border.
    regions, added_pixels : int
        Enclosed regions that a click fills, and their pixels.
    arrays : list of ndarray
        The arrays it was made for (class mask, labels, ...) after the fill
        (:func:`extend_all`); empty when there is nothing to fill.
    boxes : list of (slice, slice)
        Boxes around the filled parts, one pixel wider on each side: where a
        drawing of the mask changes.
    """

    background: np.ndarray
    is_open: np.ndarray
    regions: int
    added_pixels: int
    arrays: list
    boxes: list

    def seed_is_open(self, row: int, col: int) -> bool:
        return bool(self.is_open[self.background[row, col]])

    def nothing_left(self) -> OpenFill:
        """The same after the fill is done: clicks on the open background
        find nothing more to fill."""
        return OpenFill(self.background, self.is_open, 0, 0, [], [])


def prepare_open_fill(arrays: Sequence[np.ndarray]) -> OpenFill:
    """What a click on the open background of ``arrays[0]`` (non-zero =
    object) would do to each of ``arrays`` (see :class:`OpenFill`)."""
    obj = np.asarray(arrays[0]) != 0
    background, n = ndi.label(~obj, structure=_FOUR)
    on_border = np.unique(np.concatenate([background[0, :], background[-1, :], background[:, 0],
                                          background[:, -1]]))
    is_open = np.zeros(n + 1, bool)
    is_open[on_border[on_border != 0]] = True
    added = ~obj & ~is_open[background]
    regions = int(n - np.count_nonzero(is_open[1:]))
    if not regions:
        return OpenFill(background, is_open, 0, 0, [], [])
    parts, _ = ndi.label(added, structure=_FOUR)
    h, w = obj.shape
    boxes = [(slice(max(0, r.start - 1), min(h, r.stop + 1)), slice(max(0, c.start - 1), min(w, c.stop + 1)))
             for r, c in ndi.find_objects(parts)]
    return OpenFill(background, is_open, regions, int(np.count_nonzero(added)), extend_all(arrays, added),
                    boxes)


def fill_closed_contours(mask: np.ndarray, seed_rc: Sequence[int], *, border_is_open: bool = True) -> np.ndarray:
    """Fill every closed contour of ``mask`` as seen from a background pixel.

    The background is flood-filled (4-connected) from ``seed_rc`` (and,
    with ``border_is_open``, from the image border); every pixel the flood
    cannot reach (objects and the holes and outlines they enclose) becomes
    object.

    Parameters
    ----------
    mask : ndarray
        Object mask, (H, W); any non-zero value is object.
    seed_rc : (row, col)
        A background pixel, usually on the open background around the objects.
    border_is_open : bool
        See :func:`plan_fill`.

    Returns
    -------
    ndarray of bool
        The filled mask.
    """
    return plan_fill(mask, seed_rc, border_is_open=border_is_open).mask


def label_objects(mask: np.ndarray) -> np.ndarray:
    """Label the 8-connected objects of a mask (non-zero = object), 1..N, int32."""
    labels, _ = ndi.label(np.asarray(mask) != 0, structure=_EIGHT)
    return labels.astype(np.int32, copy=False)


def object_at(labels: np.ndarray, rc: Sequence[int]) -> int:
    """The object id under pixel ``rc`` (0 for background or outside the image)."""
    r, c = int(rc[0]), int(rc[1])
    if not (0 <= r < labels.shape[0] and 0 <= c < labels.shape[1]):
        return 0
    return int(labels[r, c])


def objects_at(labels: np.ndarray, points: Iterable[Sequence[int]]) -> list[int]:
    """The distinct object ids under the given (row, col) points, sorted,
    background and points outside the image left out."""
    pts = np.asarray(list(points), dtype=np.int64).reshape(-1, 2)
    if pts.size == 0:
        return []
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < labels.shape[0]) & (pts[:, 1] >= 0) & (pts[:, 1] < labels.shape[1])
    pts = pts[inside]
    ids = np.unique(labels[pts[:, 0], pts[:, 1]])
    return [int(i) for i in ids if i != 0]


def extend_into(values: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Give each connected part of ``region`` the non-zero value (class
    index or object id) found most often on the pixels just around it.

    Used after a fill so that a filled hole takes the class and the object
    id of the object that encloses it. Vectorised over all parts at once
    (a fill on a large photo may close thousands of contours), and limited
    to the bounding box of ``region`` plus a one-pixel margin. A part with
    no non-zero value around it (inconsistent input) takes the value of the
    nearest non-zero pixel. Returns a new array.
    """
    return extend_all([values], region)[0]


def extend_all(arrays: Sequence[np.ndarray], region: np.ndarray) -> list[np.ndarray]:
    """:func:`extend_into` for several arrays of the same shape (a class
    mask and its instance labels), finding the parts of ``region`` once."""
    outs = [np.array(a, copy=True) for a in arrays]
    region = np.asarray(region, dtype=bool)
    if not region.any():
        return outs
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    box = (slice(max(0, rows[0] - 1), rows[-1] + 2), slice(max(0, cols[0] - 1), cols[-1] + 2))
    sub_region = region[box]
    parts, n = ndi.label(sub_region, structure=_FOUR)
    # The pixels just outside the parts, and for each the part it touches
    # (the largest id where two meet), looked up at those pixels only.
    grown = sub_region.copy()
    grown[1:] |= sub_region[:-1]
    grown[:-1] |= sub_region[1:]
    grown[:, 1:] |= sub_region[:, :-1]
    grown[:, :-1] |= sub_region[:, 1:]
    rr, cc = np.nonzero(grown & ~sub_region)
    h, w = sub_region.shape
    touching = np.zeros(rr.shape, dtype=parts.dtype)
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        np.maximum(touching, parts[np.clip(rr + dr, 0, h - 1), np.clip(cc + dc, 0, w - 1)], out=touching)
    inside = parts[sub_region]
    for out in outs:
        sub_vals = out[box]
        value = sub_vals[rr, cc].astype(np.int64)
        keep = value != 0
        choice = _majority(touching[keep].astype(np.int64), value[keep], n)
        sub_vals[sub_region] = choice[inside].astype(out.dtype)
        orphan_parts = np.flatnonzero(choice[1:] == 0) + 1
        if orphan_parts.size:
            _nearest_fill(out, np.isin(parts, orphan_parts), box)
    return outs


def _majority(part_of: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    """For parts 1..n, the value seen most often with each (0 where none)."""
    choice = np.zeros(n + 1, dtype=np.int64)
    if part_of.size:
        base = int(value.max()) + 1
        keys, counts = np.unique(part_of * base + value, return_counts=True)
        key_part, key_value = np.divmod(keys, base)
        order = np.lexsort((counts, key_part))  # by part, then count: the last per part wins
        choice[key_part[order]] = key_value[order]
    return choice


def _nearest_fill(out: np.ndarray, orphans: np.ndarray, box) -> None:
    """Give ``orphans`` (inside ``out[box]``) the nearest non-zero value of ``out``."""
    full = np.zeros(out.shape, bool)
    full[box] = orphans
    sources = (out != 0) & ~full
    if not sources.any():
        out[full] = 1
        return
    _, (ir, ic) = ndi.distance_transform_edt(~sources, return_indices=True)
    out[full] = out[ir[full], ic[full]]


def object_classes(labels: np.ndarray, class_mask: np.ndarray, object_ids: Iterable[int]) -> dict[int, int]:
    """The majority class index of each object (at least 1)."""
    slices = ndi.find_objects(np.asarray(labels, dtype=np.int32))
    classes: dict[int, int] = {}
    for oid in object_ids:
        oid = int(oid)
        if oid <= 0 or oid > len(slices) or slices[oid - 1] is None:
            continue
        sl = slices[oid - 1]
        inside = class_mask[sl][labels[sl] == oid]
        counts = np.bincount(inside.astype(np.int64).ravel(), minlength=2)
        counts[0] = 0
        classes[oid] = int(np.argmax(counts)) if counts.max() > 0 else 1
    return classes


__all__ = ["FillResult", "plan_fill", "fill_closed_contours", "label_objects", "object_at",
           "objects_at", "extend_into", "extend_all", "object_classes"]
