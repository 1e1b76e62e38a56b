"""The state of one review: a photo, its segmentation, the objects the
user picked, and an undo stack. No Qt here, so it is tested directly.

The user corrects the model's result in two ways: a click on the
background fills every closed contour (outlines the model drew without
filling them), and a click on an object picks it (or un-picks it) for the
object pool. Every fill and every pick can be undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from core.errors import UserInputError
from core.imageio import output_stem, read_image
from segmentation import interactive

FILL, PICK = "fill", "pick"
MAX_UNDO = 100


@dataclass
class ClickOutcome:
    """What a click did: ``changed`` says whether the mask or the selection
    changed, ``message`` is the sentence shown to the user."""

    changed: bool
    message: str
    explained: bool = False  # True when the click was not obeyed and why is in ``message``


@dataclass
class SavedPicks:
    """What saving the picked objects did: the pool files written, and the
    picked objects left out because the pool already held them."""

    ids: list[int]  # the objects that were picked
    written: list[str]
    already: dict[int, str]  # object id -> pool file it matched

    def summary(self) -> str:
        n = len(self.written)
        text = f"Saved {n} picked object{'s' if n != 1 else ''} to the pool."
        if self.already:
            ids = ", ".join(str(i) for i in sorted(self.already))
            same = ", ".join(sorted(set(self.already.values()))[:3])
            k = len(self.already)
            text += (f" {k} {'were' if k != 1 else 'was'} already in the pool from this photo "
                     f"(object{'s' if k != 1 else ''} {ids}, same as {same}) and "
                     f"{'were' if k != 1 else 'was'} not added again.")
        return text


@dataclass
class _Fill:
    """What a fill replaced, to undo it: the arrays, and the prepared fill
    that was valid for them."""

    classes: np.ndarray
    labels: np.ndarray
    slices: list
    open_fill: interactive.OpenFill
    open_slices: list


class ReviewSession:
    """A photo with its class mask (uint8, 0 = background) and instance
    labels (int32, 0 = background), the picked objects and an undo stack."""

    def __init__(self, image: np.ndarray, class_mask: np.ndarray, labels: np.ndarray | None = None, *,
                 photo_path: str | Path = "photo", class_names: list[str] | None = None) -> None:
        if class_mask.shape[:2] != image.shape[:2]:
            raise UserInputError(
                f"The mask ({class_mask.shape[1]}x{class_mask.shape[0]}) does not match the photo "
                f"({image.shape[1]}x{image.shape[0]}): {photo_path}")
        self.image = image
        self.class_mask = np.ascontiguousarray(class_mask, dtype=np.uint8)
        if labels is None or labels.shape != self.class_mask.shape:
            labels = interactive.label_objects(self.class_mask)
        self.labels = np.ascontiguousarray(labels, dtype=np.int32)
        self.labels[self.class_mask == 0] = 0
        unlabelled = (self.class_mask != 0) & (self.labels == 0)
        if unlabelled.any():  # objects the label file missed still get an id
            extra = interactive.label_objects(unlabelled)
            self.labels[unlabelled] = extra[unlabelled] + self.labels.max()
        self.photo_path = Path(photo_path)
        n_classes = max(int(self.class_mask.max()), 1)
        self.class_names = list(class_names) if class_names else ["background"] + [
            f"class {i}" for i in range(1, n_classes + 1)]
        self.selected: set[int] = set()
        self.saved: set[int] = set()  # objects saved to the pool in this review
        self._undo: list[tuple[str, object]] = []
        self._slices = ndi.find_objects(self.labels)
        self._open_fill: interactive.OpenFill | None = None
        self._open_slices: list = []  # the objects' boxes after that fill
        self.changed_boxes: list[tuple[slice, slice]] = []  # where the last fill or undo changed the mask

    @property
    def detector_frame(self) -> bool:
        """A detector frame (a FITS file, or segmented by a detector model):
        shown stretched around its pedestal rather than by percentiles."""
        from core.fits import FITS_EXTENSIONS, split_unit
        from core.model_folder import is_detector_model

        return split_unit(self.photo_path)[0].suffix.lower() in FITS_EXTENSIONS or is_detector_model(
            self.class_names)

    def prepare_fill(self) -> None:
        """Work out what a click on the open background fills, so that the
        click itself costs next to nothing (call it off the GUI thread; it
        is done on the first click otherwise)."""
        self._open_fill = interactive.prepare_open_fill([self.class_mask, self.labels])
        self._open_slices = ndi.find_objects(self._open_fill.arrays[1]) if self._open_fill.arrays else []

    # -- loading --------------------------------------------------------------
    @classmethod
    def from_segment_output(cls, photo: str | Path, out_dir: str | Path,
                            model_dir: str | Path | None = None) -> ReviewSession:
        """Load a photo and what the segment stage wrote for it in ``out_dir``
        (``<stem>_mask.png`` and, when present, ``<stem>_labels.tif``)."""
        photo, out_dir = Path(photo), Path(out_dir)
        stem = output_stem(photo)
        mask_path = out_dir / f"{stem}_mask.png"
        if not mask_path.is_file():
            raise UserInputError(f"No segmentation of {photo.name} in {out_dir} (expected {mask_path.name}).")
        image = read_image(photo)
        mask = read_image(mask_path)
        if mask.ndim == 3:
            mask = mask[..., 0]
        labels_path = out_dir / f"{stem}_labels.tif"
        labels = read_image(labels_path) if labels_path.is_file() else None
        if labels is not None and labels.ndim == 3:
            labels = labels[..., 0]
        session = cls(image, mask.astype(np.uint8), labels, photo_path=photo, class_names=_class_names(model_dir))
        session.prepare_fill()
        return session

    # -- queries ----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.class_mask.shape

    @property
    def object_count(self) -> int:
        return sum(s is not None for s in self._slices)

    def selected_ids(self) -> list[int]:
        return sorted(self.selected)

    def object_patch(self, oid: int) -> tuple[int, int, np.ndarray] | None:
        """(row, col, bool mask) of an object's bounding box, for drawing it."""
        if oid <= 0 or oid > len(self._slices) or self._slices[oid - 1] is None:
            return None
        sl = self._slices[oid - 1]
        return sl[0].start, sl[1].start, self.labels[sl] == oid

    def class_name(self, index: int) -> str:
        return self.class_names[index] if 0 <= index < len(self.class_names) else f"class {index}"

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    # -- edits --------------------------------------------------------------------
    def click(self, row: int, col: int, tool: str) -> ClickOutcome:
        """Apply a click with the ``FILL`` or ``PICK`` tool."""
        h, w = self.shape
        if not (0 <= row < h and 0 <= col < w):
            return ClickOutcome(False, "That click is outside the photo.", explained=True)
        if tool == FILL:
            return self.fill_from(row, col)
        return self.toggle_at(row, col)

    def fill_from(self, row: int, col: int) -> ClickOutcome:
        oid = int(self.labels[row, col])
        if self.class_mask[row, col] != 0:
            return ClickOutcome(False, (
                f"That pixel is inside object {oid} ({self.class_name(int(self.class_mask[row, col]))}), "
                "not on the background. A fill starts from the background: click the empty area around "
                "the objects. To pick this object for the pool, switch to Pick objects."), explained=True)
        if self._open_fill is None:
            self.prepare_fill()
        plan = self._open_fill
        if not plan.seed_is_open(row, col):
            return ClickOutcome(False, (
                "That pixel is in a hole enclosed by an object, not on the open background: a fill "
                "from there would leave exactly this hole open, so nothing was changed. Click the open "
                "background around the objects instead; every closed contour is filled then, this "
                "hole included."), explained=True)
        if plan.added_pixels == 0:
            return ClickOutcome(False, "No closed contour to fill: every background pixel is reachable "
                                       "from where you clicked.")
        # The filled arrays are new ones: the old ones are kept whole for undo.
        self._push("fill", _Fill(self.class_mask, self.labels, self._slices, plan, self._open_slices))
        self.class_mask, self.labels = plan.arrays
        self._slices = self._open_slices
        self._open_fill, self._open_slices = plan.nothing_left(), []
        self.changed_boxes = plan.boxes
        regions = "closed contour" if plan.regions == 1 else "closed contours"
        return ClickOutcome(True, f"Filled {plan.regions} {regions} ({plan.added_pixels} pixels). "
                                  "Ctrl+Z undoes it.")

    def toggle_at(self, row: int, col: int) -> ClickOutcome:
        oid = interactive.object_at(self.labels, (row, col))
        if oid == 0:
            return ClickOutcome(False, "No object there: in Pick objects mode click an object to pick it. "
                                       "To fill closed contours, switch to Fill background.", explained=True)
        if oid in self.saved:
            return ClickOutcome(False, f"Object {oid} is already saved in the pool (the Pool tab shows it, "
                                       "and deletes it if you change your mind).", explained=True)
        self._push("select", frozenset(self.selected))
        if oid in self.selected:
            self.selected.discard(oid)
            verb = "Un-picked"
        else:
            self.selected.add(oid)
            verb = "Picked"
        return ClickOutcome(True, f"{verb} object {oid}; {len(self.selected)} picked.")

    def mark_saved(self, ids) -> None:
        """The picked objects ``ids`` are now in the pool: they are no longer
        picked, and picks before the save can no longer be undone (the save
        is not undone by Ctrl+Z; the Pool tab deletes objects). Fills can."""
        self.saved.update(int(i) for i in ids)
        self.selected -= self.saved
        self._undo = [(kind, state) for kind, state in self._undo if kind != "select"]

    def undo(self) -> str | None:
        """Undo the last fill or pick; returns what was undone, or None."""
        if not self._undo:
            return None
        kind, state = self._undo.pop()
        if kind == "select":
            self.selected = set(state)
            return "Undid the last pick."
        self.class_mask, self.labels, self._slices = state.classes, state.labels, state.slices
        self._open_fill, self._open_slices = state.open_fill, state.open_slices
        self.changed_boxes = state.open_fill.boxes
        return "Undid the last fill."

    def _push(self, kind: str, state) -> None:
        self._undo.append((kind, state))
        del self._undo[:-MAX_UNDO]

    # -- saving -------------------------------------------------------------------
    def save_selected(self, workdir: str | Path) -> SavedPicks:
        """Save the picked objects (crop + mask) into the working directory's
        object pool with origin "picked". A picked object that the pool
        already holds from this photo (mask IoU >= 0.8) is not added again."""
        from segmentation.pool import add_objects, pooled_duplicates

        ids = self.selected_ids()
        if not ids:
            raise UserInputError("No objects are picked: in Pick objects mode click the good objects first.")
        already = pooled_duplicates(workdir, self.labels, ids, source_image=self.photo_path.name)
        new = [i for i in ids if i not in already]
        classes = interactive.object_classes(self.labels, self.class_mask, new)
        written = add_objects(workdir, self.image, self.labels, new, source_image=self.photo_path.name,
                              origin="picked", classes=classes) if new else []
        return SavedPicks(ids, written, already)


def _class_names(model_dir: str | Path | None) -> list[str] | None:
    """Class names from the model's description, when it is a valid one."""
    from core.errors import UserInputError
    from core.model_folder import class_names, read_meta

    if not model_dir:
        return None
    try:
        return class_names(read_meta(model_dir))
    except UserInputError:
        return None
