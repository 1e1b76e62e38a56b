"""The segment stage: a trained model applied to photos, and every object measured.

For each photo ``<stem>.<ext>`` the output folder receives ``<stem>_mask.png``
(uint8 class index, 0 background), ``<stem>_labels.tif`` (instances),
``<stem>_overlay.png`` (outlines and ids over the photo) and
``<stem>_objects.csv``; for the folder ``objects.csv`` (one row per object),
``summary.csv`` (one row per photo), ``size_histogram.png`` and
``segment.json`` (the scale each photo was segmented at). A detector model's
frames also get their cluster catalogue, hot mask and a row of the folder's
quality table (:mod:`evaluation.detector`).

Object scale: a model trained on synthetic images knows the median object
diameter it saw (``object_diameter`` in model.json). Each photo is resampled
so that its objects have about ``SIZE_MARGIN`` times that size, measured by a
first look of the model at the whole photo reduced to ``FIRST_LOOK`` pixels,
then checked: of that scale, the scales ``SCALE_STEP`` either side, the
photo at its smallest scale and, where it differs, the scale from
auto-segmentation's object size and a step either side, the one where the
model is surest of its objects is kept. The final prediction averages each tile over its mirror
images.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.atomic import write_json_atomic
from core.errors import UserInputError, user_error_from
from core.imageio import is_blank, list_images
from core.model_folder import class_names, object_diameter
from core.progress import Progress
from core.stats import robust_spread
from evaluation.exports import FORMATS


@dataclass
class SegmentSettings:
    scale: float = 0.0            # resampling factor; 0 = automatic from the object size
    tile: int | None = None       # tile side (default: the model's)
    split: bool = True            # split touching objects into separate instances
    pixel_size: float | None = None  # calibration for the measurements
    unit: str = "µm"
    include_border: bool = False  # objects cut by the edge in the size distribution
    flips: bool = True            # average over mirrored predictions (4x the work; EMPS: IoU +0.008, F1 +0.03)
    threshold: float = 0.5        # object probability for an object pixel (two-class models)
    gain: float | None = None     # detector frames: ADU per electron, for charges in e- (None: unknown)
    overscan: str | None = None   # detector frames: overscan columns "A:B", for pedestal and noise
    hdu: int | None = None        # FITS: only this image unit of each file (None: every unit, one photo each)
    formats: tuple = FORMATS      # what to write beside the masks and tables (evaluation.exports)
    fallback: bool = True         # two-class models: auto-segmentation's objects where the model saw next to none

    def check(self) -> None:
        if not 0 <= self.scale <= 16:  # NaN too
            raise UserInputError(f"Scale must be 0 (automatic) or between 0 and 16, not {self.scale}")
        if self.pixel_size is not None and not (self.pixel_size > 0 and np.isfinite(self.pixel_size)):
            raise UserInputError(f"Pixel size must be a positive number, not {self.pixel_size}")
        if not 0.0 < self.threshold < 1.0:
            raise UserInputError(f"The object threshold must be between 0 and 1, not {self.threshold}")
        if self.gain is not None and not (self.gain > 0 and np.isfinite(self.gain)):
            raise UserInputError(f"The gain must be a positive number of ADU per electron, not {self.gain}")
        if self.hdu is not None and not (isinstance(self.hdu, int) and self.hdu >= 0):
            raise UserInputError(f"A FITS unit is a number from 0 (the primary unit), not {self.hdu}")
        from synthetic.ccd_labels import parse_overscan

        parse_overscan(self.overscan)
        from evaluation.exports import parse_formats

        parse_formats(self.formats)


@dataclass
class SegmentResult:
    photos: int = 0
    objects: int = 0
    failed: list[str] = field(default_factory=list)
    out: str = ""
    scales: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)  # output stem -> the photo it was made of
    cancelled: bool = False
    measurement_text: str = ""
    auto_segmented: list[str] = field(default_factory=list)  # photos given auto-segmentation's objects
    kept_before: list[str] = field(default_factory=list)  # segmented into the folder before: kept in its tables
    left_out: list[str] = field(default_factory=list)  # segmented into it before, measured otherwise: not in them

    def summary(self) -> str:
        text = f"Segmented {self.photos} photo(s) into {self.out}: {self.objects} objects."
        if self.kept_before:
            text += (f" {len(self.kept_before)} photo(s) segmented into it before are kept in its tables (the "
                     "log names them).")
        if self.left_out:
            text += (f" {len(self.left_out)} photo(s) segmented into it before with another pixel size, unit or "
                     "model are left out of its tables (the log names them).")
        if self.measurement_text:
            text += " " + self.measurement_text
        if self.auto_segmented:
            text += (f" {len(self.auto_segmented)} photo(s) have auto-segmentation's objects, the model seeing "
                     "too few of them there (the log names them).")
        if self.failed:
            text += f" {len(self.failed)} photo(s) could not be read."
        if self.cancelled:
            text += " Cancelled before the end; the photos done so far are written."
        return text


# The network finds objects best when they look somewhat larger than the
# median it was trained on: it loses objects smaller than it has seen more
# readily than it mis-draws larger ones. Measured on 60 electron micrographs
# with the area-weighted size below, mean IoU 0.700 / 0.721 / 0.711 at
# margins 1.5 / 2.0 / 2.5 (the plain median object at 1.5: 0.681).
SIZE_MARGIN = 2.0
# First look: the photo brought to this longer side, enough to see the
# objects of most micrographs and cheap to predict.
FIRST_LOOK = 448
# The first look's size is then checked at this factor either side: the
# photo is predicted at the three scales and the one where the model is
# surest of its objects wins. Measured on the same 60 micrographs with two
# models of the label-free pipeline (after 8 and 14 epochs): mean IoU
# 0.726 -> 0.761 and 0.681 -> 0.752, instance F1 0.551 -> 0.628 and
# 0.453 -> 0.517 (the best of five scales per photo, picked with the expert
# masks: 0.791 for the first). A wider search (five scales) gained nothing.
SCALE_STEP = float(np.sqrt(2.0))
# A step is taken only where the model is clearly surer there. Outlines are
# a band of doubt a few network pixels wide, thinner in the photo's pixels the
# more it is enlarged, so certainty creeps up with the scale by itself (about
# 0.006 a step on the bundled model); the first look's mistakes show as
# differences of 0.05 to 0.3. With 0.02, 35 instead of 43 of the 60
# micrographs are enlarged a step, at the same accuracy.
CLEARLY_SURER = 0.02


def estimate_scale(image: np.ndarray, meta: dict) -> float:
    """A first resampling factor from classical auto-segmentation's object
    size (1.0 when the model records no object size or nothing is found)."""
    from segmentation.autoseg import find_objects

    target = object_diameter(meta) * SIZE_MARGIN
    if target <= 0:
        return 1.0
    diameter = find_objects(image).median_diameter()
    return _clip_scale(target / diameter, image.shape) if diameter > 0 else 1.0


def _clip_scale(scale: float, shape) -> float:
    largest = max(shape[:2])
    upper = min(4.0, 8000.0 / largest)  # never enlarge a photo beyond 8000 pixels
    lower = max(1.0 / 8.0, 32.0 / largest)
    return float(np.clip(scale, lower, max(upper, lower)))


def smallest_scale(shape) -> float:
    """The smallest resampling factor a photo of this shape is predicted
    at (1/8, and never below 32 pixels on its longer side)."""
    return _clip_scale(0.0, shape)


def _median_diameter(mask: np.ndarray) -> float:
    """Equivalent diameter of the object that the median object pixel
    belongs to (the area-weighted median): a crowd of specks, which a model
    can see in a photo's texture, does not drag it down as it does the
    plain median of the objects."""
    from segmentation.instances import split_touching

    labels = split_touching(mask > 0)
    if labels.max() == 0:
        return 0.0
    areas = np.bincount(labels.ravel())[1:]
    areas = np.sort(areas[areas > 0])
    cumulative = np.cumsum(areas)
    median_pixel_area = areas[np.searchsorted(cumulative, cumulative[-1] / 2)]
    return float(np.sqrt(4.0 * median_pixel_area / np.pi))


def segment_photo(model, meta: dict, image: np.ndarray, *, scale: float = 0.0,
                  tile: int | None = None, return_foreground: bool = False, flips: bool = False,
                  threshold: float | None = None, start: float = 0.0):
    """The class mask of one photo and the scale it was predicted at.

    With ``scale`` 0 the scale is chosen from the objects themselves: a
    first prediction of the whole photo at a small size measures the
    objects, and the photo is predicted again with its objects at the size
    the model works best at (``SIZE_MARGIN`` times its training median,
    with the objects' size weighted by area), or a step either side (or the
    photo at its smallest scale) where the model is surer of its objects.
    A ``start`` scale (the scale this photo was segmented at before)
    is where the check a step either side starts (instead of the first look);
    the first look's own reading is checked too where it lies more than a
    step away (a photo once read at a wrong scale is not held there: on
    the EMPS development photos after a self-training round, mean IoU
    0.820 -> 0.827 and instance F1 0.765 -> 0.813, three photos at another
    scale, one of them from 383 objects at 4.0 to 19 at 1.57; on the 306
    check photos 0.801 -> 0.804 and F1 0.722 -> 0.726, five photos better
    by more than 0.02 IoU, one worse by 0.03).
    Burned-in annotations and, for a model of one object class, faint
    specks (see :func:`without_faint_specks`) are taken out of the mask
    and of the object probability.
    With ``return_foreground`` the object probability is returned too;
    ``flips`` and ``threshold`` as in :func:`evaluation.predict.predict_mask`
    (for the final prediction; the first look is a plain one).
    """
    from evaluation.predict import predict_mask

    if is_blank(image):  # nothing to find: a model would call the whole frame one object
        empty = np.zeros(image.shape[:2], np.uint8)
        return (empty, 1.0, empty.astype(np.float32)) if return_foreground else (empty, 1.0)
    marks = _annotations(image) if len(class_names(meta)) == 2 else None
    target = object_diameter(meta) * SIZE_MARGIN
    known = None  # the foreground at the chosen scale, where the scale check predicted it already
    if scale <= 0 and target > 0:
        first = _clip_scale(FIRST_LOOK / max(image.shape[:2]), image.shape)
        mask = _without_marks(predict_mask(model, meta, image, scale=first, tile=tile), marks)
        seen = _median_diameter(mask) / first  # object diameter in the photo's pixels
        if start <= 0:
            classical = estimate_scale(image, meta)
            start = target / seen if seen > 0 else classical
        else:  # the earlier scale is checked against what this model sees
            classical = target / seen if seen > 0 else 0.0
        scale, known = _surest_scale(model, meta, image, _clip_scale(start, image.shape), tile, marks,
                                     classical)
    elif scale <= 0:
        scale = 1.0
    mask, foreground = predict_mask(model, meta, image, scale=scale, tile=tile, return_foreground=True,
                                    flips=flips, threshold=threshold, known=known)
    cleaned = _without_marks(mask, marks)
    if cleaned is not mask:  # the probabilities say what the mask says
        foreground[(mask > 0) & (cleaned == 0)] = 0.0
        foreground[marks] = 0.0
    mask = cleaned
    if target > 0 and len(class_names(meta)) == 2:
        cleaned = without_faint_specks(image, mask, SPECK_SIZE * object_diameter(meta) / max(scale, 1.0))
        if cleaned is not mask:
            foreground[(mask > 0) & (cleaned == 0)] = 0.0
        mask = cleaned
    return (mask, scale, foreground) if return_foreground else (mask, scale)


# A model that enlarges a grainy photo can take clumps of its grain for
# small particles. An object much smaller than the objects the model was
# trained on (below SPECK_SIZE times their diameter, at the scale the photo
# was predicted at, or in the photo's own pixels where it was shrunk: the
# grain of a shrunk photo is averaged away) is dropped where it does not
# stand out from the background around it by SPECK_CONTRAST times that
# background's own spread (1.4826 times the median absolute deviation). A
# small piece beside a larger object is part of that object's outline, and
# a photo whose objects are mostly such faint pieces has particles of low
# contrast rather than grain: both are kept. Chosen on the 60 EMPS
# development photos (their masks with the objects the rule removes; the
# photo with 20 small dark particles on a grainy background had 383 objects
# after a self-training round): instance F1 0.777 -> 0.814 after `pipeline`
# and 0.737 -> 0.782 after one round, mean IoU 0.820 -> 0.820 and
# 0.819 -> 0.820; on the 306 check photos F1 0.711 -> 0.724 and
# 0.713 -> 0.722, IoU 0.769 -> 0.768 and 0.801 -> 0.801.
SPECK_SIZE = 0.75
SPECK_CONTRAST = 2.0


def without_faint_specks(image: np.ndarray, mask: np.ndarray, diameter: float) -> np.ndarray:
    """``mask`` without its faint specks: objects smaller than
    ``diameter`` (in the photo's pixels) that do not stand out from the
    background around them (see ``SPECK_CONTRAST``); ``mask`` itself where
    none is dropped. A speck with too little background around it to judge
    or beside a larger object is kept, and so is every speck where they
    would take half the mask's area."""
    from scipy import ndimage as ndi

    from core.imageio import to_gray

    objects = mask > 0
    components, count = ndi.label(objects)
    if count == 0:
        return mask
    area = np.bincount(components.ravel(), minlength=count + 1)
    small = np.flatnonzero(area[1:] < np.pi / 4 * diameter ** 2) + 1
    if small.size == 0:
        return mask
    larger = objects & ~np.isin(components, small)
    gray = to_gray(image).astype(np.float32)
    boxes = ndi.find_objects(components)
    faint = []
    for label in small:
        reach = max(2, int(round(np.sqrt(area[label] / np.pi))))
        window = tuple(slice(max(0, b.start - reach - 1), b.stop + reach + 1) for b in boxes[label - 1])
        inside = components[window] == label
        band = ndi.binary_dilation(inside, iterations=reach) & ~inside
        ring = band & ~objects[window]
        if np.count_nonzero(ring) < 5 or (band & larger[window]).any():
            continue
        around = gray[window][ring]
        middle = np.median(around)
        spread = robust_spread(around, middle)
        if abs(float(gray[window][inside].mean()) - middle) < SPECK_CONTRAST * spread:
            faint.append(label)
    if not faint or area[faint].sum() > 0.5 * np.count_nonzero(objects):
        return mask
    mask = mask.copy()
    mask[np.isin(components, faint)] = 0
    return mask


def object_certainty(mask: np.ndarray, foreground: np.ndarray) -> float:
    """How sure the model is of the objects it drew: the mean of
    ``|2p - 1|`` over the object pixels (0 when there are none).

    It leans a little towards larger scales (see ``CLEARLY_SURER``).
    Leaving the outlines out at every scale instead was measured too (60
    micrographs: mean IoU 0.723 against 0.754): on small objects it leaves
    too little inside to compare.
    """
    objects = mask > 0
    return float(np.mean(np.abs(2.0 * foreground[objects] - 1.0))) if objects.any() else 0.0


def _surest_scale(model, meta: dict, image: np.ndarray, scale: float, tile: int | None,
                  marks: np.ndarray | None, classical: float = 0.0) -> tuple[float, np.ndarray | None]:
    """Of ``scale`` and the scales ``SCALE_STEP`` either side of it, the
    one at which the model is surest of its objects (``scale`` itself
    unless another is surer by more than ``CLEARLY_SURER``), and the
    foreground predicted there (None where nothing was predicted), so that
    the photo's own prediction need not repeat it (measured with flips on
    1024x1024 particle photos: 19 % of a photo's time).

    The first look's object size can be off by a factor of two (a model
    that sees large particles as clusters of small ones, or the reverse);
    at a wrong scale the network hesitates inside the objects, at the right
    one it does not. The photo at its smallest scale is a candidate too:
    a particle that fills half the frame shows at any larger scale only as
    texture, and the first look then measures specks. So is the scale from
    auto-segmentation's object size (``classical``) and a step either side
    of it, where it lies more than a step from ``scale``: the model's first
    look can take the texture inside large particles for small objects and
    ask for the photo enlarged four times, where it then sees nothing; the
    classical reading, which saw the particles, does not make that mistake.
    Where the check starts from an earlier scale, ``classical`` is the
    first look's reading instead.
    On the 60 development photos (one model, segmented afresh both ways):
    mean IoU 0.805 -> 0.821, instance F1 0.576 -> 0.798, 10th percentile
    IoU 0.576 -> 0.671; 46 of the 60 photos get the three more predictions,
    so the stage takes up to twice as long (5.3 -> 10.4 min there).
    """
    from evaluation.predict import predict_mask

    steps = (1 / SCALE_STEP, 1.0, SCALE_STEP)
    candidates = {_clip_scale(scale * f, image.shape) for f in steps} | {smallest_scale(image.shape)}
    if classical > 0 and abs(np.log(classical / scale)) > np.log(SCALE_STEP) * 1.01:
        candidates |= {_clip_scale(classical * f, image.shape) for f in steps}
    candidates = sorted(candidates)
    if len(candidates) == 1:
        return candidates[0], None
    start = min(candidates, key=lambda c: abs(c - scale))
    certainty, kept = {}, {}
    for candidate in candidates:
        mask, foreground = predict_mask(model, meta, image, scale=candidate, tile=tile, return_foreground=True)
        certainty[candidate] = object_certainty(_without_marks(mask, marks), foreground)
        best = max(certainty, key=certainty.get)
        # only the start and the surest so far can be chosen: the rest is let go at once
        kept = {c: kept.get(c, foreground) for c in (start, best) if c in certainty}
    chosen = best if certainty[best] > certainty[start] + CLEARLY_SURER else start
    return chosen, (kept[chosen] if len(class_names(meta)) == 2 else None)


# A model trained on the pool knows the kinds of particle the pool holds; a
# photo of another kind (large flat particles when the pool holds small
# round ones) it can see as empty background at every scale. Where the model
# covers less than BLIND_SHARE of the area auto-segmentation finds objects
# in, and auto-segmentation is sure of its polarity (border margin at least
# BLIND_MARGIN, see segmentation.foreground.detect_polarity), auto-
# segmentation's objects are the photo's mask. Chosen on the 60 EMPS
# development photos (one `pipeline` model: mean IoU 0.806 -> 0.820, one
# photo changed); on the 306 check photos 0.745 -> 0.769 (21 photos changed,
# 14 better and 6 worse by more than 0.05).
BLIND_SHARE = 0.1
BLIND_MARGIN = 0.1
# A photo that had auto-segmentation's objects when last segmented keeps
# them unless the model now covers at least HOLD_SHARE of their area: a
# self-training round learns nothing from such a photo (the model gave it no
# confident objects), and a retrained model that now sees a few specks
# there has not learnt its particles. Chosen on the EMPS development photos:
# after one round 43875c5b20 kept the model's specks (model at a fifth of
# auto-segmentation's area, IoU 0.86 -> 0.17) and no other photo changes
# for any share from 0.25 to 0.8; half is the middle of that range.
HOLD_SHARE = 0.5
# Auto-segmentation can take a photo's background for its object: the
# lit half of an unevenly lit photo, a film or a grid under the particles.
# A model that sees the particles then covers a few hundredths of that
# "object", and would be taken for blind. Where SEVERAL_SURE objects the
# model is sure of (see evaluation.confident) lie in one of auto-
# segmentation's objects, the model is not blind: it sees particles on a
# background auto-segmentation called one object. Two is the least that
# makes "several"; it was not chosen on figures. On the 60 EMPS development
# photos it changes nothing (the one photo where auto-segmentation stands
# in after a self-training round holds at most one sure object in any of
# its objects); on the 306 check photos after the round, it keeps the
# model's mask on 6 of the 23 photos auto-segmentation stood in for, all 6
# inside out (IoU 0.02-0.08), and none of the 17 it read right (each holds
# at most one sure object).
SEVERAL_SURE = 2


def classical_if_model_blind(image: np.ndarray, mask: np.ndarray, share: float = BLIND_SHARE, *,
                             sure_objects: Callable[[], np.ndarray] | None = None) -> np.ndarray | None:
    """Auto-segmentation's mask of ``image`` (class 1) where the model's
    ``mask`` covers less than ``share`` of the area of the objects it finds
    (see ``BLIND_SHARE``), else None. Auto-segmentation runs only where the
    model covers less than ``share`` of the photo. ``sure_objects`` gives
    the labels of the objects the model is sure of (asked only when
    auto-segmentation would stand in): where ``SEVERAL_SURE`` of them lie
    in one of auto-segmentation's objects, that object is the photo's
    background and the model's mask stays (see ``SEVERAL_SURE``)."""
    model_area = int(np.count_nonzero(mask))
    if model_area >= share * mask.size or is_blank(image):
        return None
    from segmentation.autoseg import find_objects

    found = find_objects(image)
    if found.polarity_margin < BLIND_MARGIN or model_area >= share * np.count_nonzero(found.foreground):
        return None
    if sure_objects is not None and holds_several(found.foreground, sure_objects()):
        return None
    return found.foreground.astype(np.uint8)


def holds_several(foreground: np.ndarray, sure: np.ndarray, several: int = SEVERAL_SURE) -> bool:
    """Whether one object of ``foreground`` (a region of connected pixels)
    holds at least ``several`` of the labelled objects in ``sure``, each
    with more than half of its area in it."""
    from scipy import ndimage as ndi

    regions, count = ndi.label(foreground > 0)
    if count == 0:
        return False
    holders = []
    for k in np.unique(sure[sure > 0]):
        hits = np.bincount(regions[sure == k], minlength=count + 1)
        holder = int(hits[1:].argmax()) + 1
        if hits[holder] > hits.sum() / 2:
            holders.append(holder)
    return bool(holders) and int(np.bincount(holders).max()) >= several


def _annotations(image: np.ndarray) -> np.ndarray | None:
    """Burned-in scale bars, their labels and panel letters of a photo."""
    from core.imageio import to_gray
    from segmentation.annotations import find_annotations

    marks = find_annotations(to_gray(image).astype(np.float32))
    return marks if marks.any() else None


def _without_marks(mask: np.ndarray, marks: np.ndarray | None) -> np.ndarray:
    """``mask`` with burned-in annotations taken out: their pixels, and
    what is left of an object that lay mostly on one. A scale bar or a
    letter is never a particle, and a model that takes one for an object
    would also misjudge the photo's object size."""
    if marks is None or not (marks & (mask > 0)).any():
        return mask
    from scipy import ndimage as ndi

    components, count = ndi.label(mask > 0)
    area = np.bincount(components.ravel(), minlength=count + 1)
    on_marks = np.bincount(components[marks], minlength=count + 1)
    mostly = np.flatnonzero(on_marks > area / 2)
    mask = mask.copy()
    mask[marks | np.isin(components, mostly[mostly > 0])] = 0
    return mask


def _previous_record(folder: str | Path) -> dict:
    """The segment.json of an earlier run into ``folder`` ({} when there is none or it cannot be read)."""
    import json

    try:
        record = json.loads((Path(folder) / "segment.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def previous_scales(folder: str | Path) -> dict[str, float]:
    """The scale each photo was segmented at into ``folder`` (empty when unknown)."""
    try:
        return {str(k): float(v) for k, v in _previous_record(folder).get("scales", {}).items() if float(v) > 0}
    except (ValueError, TypeError, AttributeError):
        return {}


def previous_auto_segmented(folder: str | Path) -> set[str]:
    """The photos that had auto-segmentation's objects when segmented into
    ``folder`` (empty when unknown)."""
    names = _previous_record(folder).get("auto_segmented", [])
    return {str(name) for name in names} if isinstance(names, list) else set()


def _with_file_calibration(settings: SegmentSettings, files: list[Path], progress: Progress) -> SegmentSettings:
    """``settings`` measuring in the pixel size every photo carries in its
    metadata (:func:`evaluation.calibration.common_file_calibration`), when
    they all carry the same; else as they are."""
    from dataclasses import replace

    from evaluation.calibration import common_file_calibration

    found = common_file_calibration(files)
    if found is None:
        return settings
    progress.log(f"Sizes also in {found.unit}: {found.pixel_size:.6g} {found.unit} per pixel, read from the "
                 f"photos' {found.source} (a pixel size given or set would win).")
    return replace(settings, pixel_size=found.pixel_size, unit=found.unit)


def segment_one(task) -> dict:
    """Segment one photo (a :class:`evaluation.batch.PhotoTask`) into its
    folder of the unfinished folder, in this process or in a worker's.

    Returns a small report: ``stem``, ``name``, ``objects``, ``scale``,
    ``log`` (lines to show), and ``unreadable`` (the reason) for a photo
    that could not be read or ``error`` for one that failed otherwise;
    nothing of a photo that fails is left behind."""
    import os
    import shutil
    import uuid

    from core.errors import ImageReadError
    from core.imageio import read_image

    name = Path(task.path).name
    report = {"stem": task.stem, "name": name, "objects": 0, "scale": None, "log": [],
              "unreadable": None, "error": None}
    try:
        image = read_image(Path(task.path), warn=report["log"].append)
    except ImageReadError as exc:
        report["unreadable"] = str(exc)
        return report
    into = Path(task.into)
    part = into / f".{task.stem}.part-{uuid.uuid4().hex[:8]}"
    try:
        record = _segment_into(task, image, part)
        done = into / task.stem
        if done.exists():
            shutil.rmtree(done)
        os.rename(part, done)
    except Exception as exc:  # this photo fails (out of memory, a damaged frame); the others go on
        shutil.rmtree(part, ignore_errors=True)
        full = user_error_from(exc)
        if full is not None:  # a full disk: not this photo's fault, and no other photo would fare better
            report["no_space"] = str(full)
        first = (str(exc).splitlines() or [""])[0]
        report["error"] = f"{name}: {type(exc).__name__}: {first}" if not isinstance(exc, UserInputError) \
            else f"{name}: {first}"
        return report
    report["objects"] = record["objects"]
    report["scale"] = record["scale"]
    if record["objects"] == 0 and is_blank(image):
        report["log"].append(f"{name}: a blank photo (no contrast), no objects")
    elif record.get("reading") == "auto-segmentation" and task.held:
        report["log"].append(f"{name}: {record['objects']} objects (auto-segmentation's, as when last "
                             "segmented: the model covers less than half of them)")
    elif record.get("reading") == "auto-segmentation":
        report["log"].append(f"{name}: {record['objects']} objects (the model saw next to none of the objects "
                             "auto-segmentation finds: its objects are kept instead)")
    else:
        report["log"].append(f"{name}: {record['objects']} objects (segmented at scale {record['scale']:.2f})")
    return report


def _segment_into(task, image, folder: Path) -> dict:
    from evaluation import batch
    from evaluation.exports import photo_record, write_measurements

    settings = SegmentSettings(**{**task.settings, "formats": tuple(task.settings["formats"])})
    model, meta = batch.worker_model(task)
    classes = class_names(meta)
    mask, scale, foreground = segment_photo(model, meta, image, scale=settings.scale, tile=settings.tile,
                                            flips=settings.flips, threshold=settings.threshold,
                                            start=task.start, return_foreground=True)
    reading = "model"
    if settings.fallback and len(classes) == 2 and not task.detector:
        def sure_objects() -> np.ndarray:
            from evaluation.confident import model_sure_objects

            found = model_sure_objects(model, meta, image, scale, foreground, tile=settings.tile)
            return np.where(np.isin(found.labels, found.chosen), found.labels, 0)

        classical = classical_if_model_blind(image, mask, HOLD_SHARE if task.held else BLIND_SHARE,
                                             sure_objects=sure_objects)
        if classical is not None:
            mask, reading = classical, "auto-segmentation"
    folder.mkdir(parents=True)
    name = Path(task.path).name
    measured = write_measurements(folder, task.stem, image, mask, pixel_size=settings.pixel_size,
                                  unit=settings.unit, class_names=classes, image_name=name,
                                  split=settings.split, include_border=settings.include_border,
                                  formats=settings.formats)
    detector = None
    if task.detector:
        from evaluation.detector import DetectorCollector
        from synthetic.ccd_labels import frame_overscan, parse_overscan

        overscan = frame_overscan(task.path, parse_overscan(settings.overscan))
        measured_frame = DetectorCollector(folder, gain=settings.gain, overscan=overscan)
        detector = measured_frame.measure(folder, task.stem, image, mask, image_name=name)
        detector.pop("clusters")
    path = Path(task.path)
    record = {"key": task.key, "image": name, "stem": task.stem,
              "source": str(path.resolve()) if path.exists() else str(path),
              "scale": round(float(scale), 4), "objects": measured.count, "reading": reading,
              "measured_with": batch.measured_with(settings, classes),
              "files": sorted(p.name for p in folder.iterdir()),
              "measure": photo_record(measured, coco="coco" in settings.formats), "detector": detector}
    write_json_atomic(folder / batch.RECORD, record)
    return record


def _names(names: list[str], most: int = 10) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def run_segment(model_dir: str | Path, images: str | Path, out: str | Path, *,
                settings: SegmentSettings | None = None, progress: Progress | None = None,
                start_scales: dict[str, float] | None = None, held: set[str] | None = None,
                workers: int = 0, scheduler: str | None = None, force: bool = False) -> SegmentResult:
    """Segment a photo or a folder of photos and measure every object.

    ``start_scales`` (photo file name -> scale) is where the scale check
    starts for the photos it names (see :func:`segment_photo`). The photos that had
    auto-segmentation's objects when last segmented into ``out`` (or those
    ``held`` names) keep them unless the model now covers half of them
    (``HOLD_SHARE``).

    ``workers`` > 0 segments the photos on a local Dask cluster of that many
    worker processes, ``scheduler`` (``tcp://host:port``) on a running Dask
    cluster; otherwise, and for a single photo, one after another in this
    process (see :mod:`evaluation.batch`). The results are the same.

    All or nothing: the results are written into a staged copy of ``out``
    that replaces it only when every photo is done, so a run that is
    cancelled or fails leaves ``out`` as it was (see :mod:`core.transaction`).
    Resumable: the photos done by a run that was killed or cancelled, and
    those of a completed run into ``out``, are kept and not done again by
    the next run with the same model and settings; ``force`` redoes them."""
    from core.model_folder import read_trained_meta
    from core.overlap import output_path, refuse_overlap
    from core.transaction import Transaction

    settings = settings or SegmentSettings()
    settings.check()
    progress = progress or Progress()
    if workers < 0 or workers > 1024:
        raise UserInputError(f"The number of workers must be between 1 and 1024 (0: this process), not {workers}")
    if workers and not scheduler:
        from evaluation.batch import check_local_workers

        check_local_workers(workers)
    files = list_images(images, what="photos folder or photo", hdu=settings.hdu)
    if settings.pixel_size is None:
        settings = _with_file_calibration(settings, files, progress)
    out = output_path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"The output folder is a file: {out}")
    refuse_overlap(out, [images, *files], output_kind="the output folder", input_kind="the photos",
                   remedy="choose an output folder apart from the photos")
    refuse_overlap(out, [model_dir], output_kind="the output folder", input_kind="the model folder",
                   remedy="choose an output folder apart from the model")
    read_trained_meta(model_dir)  # a wrong model folder is reported before any work
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"Cannot create the output folder {out}: {exc.strerror}") from None
    held = previous_auto_segmented(out) if held is None else held
    from evaluation.batch import unfinished_folder

    try:
        with Transaction(out.parent, inputs=[images, model_dir]) as tx:
            result = _segment(model_dir, files, out, tx.stage(out), settings, progress, start_scales,
                              held, workers=workers, scheduler=scheduler, force=force)
            if not result.cancelled:
                tx.commit()
    except BaseException:
        with contextlib.suppress(OSError):  # kept only when it holds photos done, for the next run
            unfinished_folder(out).rmdir()
        raise
    if not result.cancelled:
        import shutil

        shutil.rmtree(unfinished_folder(out), ignore_errors=True)
    return result


def _segment(model_dir, files: list[Path], out: Path, staged: Path, settings: SegmentSettings, progress: Progress,
             start_scales: dict[str, float] | None, held: set[str], *, workers: int, scheduler: str | None,
             force: bool) -> SegmentResult:
    """Segment ``files`` into ``staged``, the copy of ``out`` being written."""
    from core.imageio import output_stems
    from core.model_folder import read_meta
    from evaluation import batch
    from evaluation.detector import DetectorCollector, is_detector_model
    from evaluation.exports import MeasurementCollector
    from synthetic.ccd_labels import parse_overscan

    meta = read_meta(model_dir)
    classes = class_names(meta)
    detector_model = is_detector_model(classes)
    into = batch.unfinished_folder(out)
    result = SegmentResult(out=str(out))
    progress.update(0, len(files), "looking for photos done before")
    tasks = batch.make_tasks(files, output_stems(files), model_dir, settings, start_scales or {}, into,
                             detector_model, held)
    batch.clean_unfinished(into, force=force)
    records: dict[str, tuple[dict, Path]] = {}
    if not force:
        for task in tasks:
            found = batch.done_record(task, staged)
            if found is not None:
                records[task.stem] = found
    todo = [t for t in tasks if t.stem not in records]
    if records:
        progress.log(f"{len(records)} of {len(tasks)} photo(s) done before with this model and these settings: "
                     "kept (force to redo them)")
    if todo:  # a damaged model is reported once, before any photo (and loaded once here)
        progress.update(len(records), len(tasks), "loading the model")
        batch.worker_model(todo[0])
    if todo and (workers > 0 or scheduler) and len(todo) > 1:
        reports = batch.run_on_cluster(todo, segment_one, progress, len(tasks), len(records), workers=workers,
                                       scheduler=scheduler)
    else:
        reports = batch.run_in_process(todo, segment_one, progress, len(tasks), len(records))
    failed: dict[str, str] = {}
    by_stem = {t.stem: t for t in todo}
    for report in reports:
        if report.get("no_space"):
            raise UserInputError(report["no_space"])
        for line in report["log"]:
            progress.log(line)
        if report["unreadable"]:
            result.failed.append(report["name"])
            progress.log(f"skipped: {report['unreadable']}")
        elif report["error"]:
            failed[report["stem"]] = report["error"]
            progress.log(f"failed: {report['error']}")
        else:
            records[report["stem"]] = batch.done_record(by_stem[report["stem"]], staged)
    if progress.cancelled:
        result.cancelled = True
        return result
    unreadable = set(result.failed)
    result.failed = [Path(t.path).name for t in tasks
                     if Path(t.path).name in unreadable or t.stem in failed]
    progress.update(len(tasks), len(tasks), "writing the folder's tables")
    collector = MeasurementCollector(staged, pixel_size=settings.pixel_size, unit=settings.unit,
                                     class_names=classes, include_border=settings.include_border,
                                     split=settings.split, formats=settings.formats)
    detector = (DetectorCollector(staged, gain=settings.gain, overscan=parse_overscan(settings.overscan))
                if detector_model else None)
    done = [records[t.stem] for t in tasks if records.get(t.stem) is not None]
    # The photos segmented into this folder before, not among these, whose
    # files are still there: the folder's tables describe them too.
    earlier, left_out = batch.earlier_records(staged, {t.stem for t in tasks},
                                              batch.measured_with(settings, classes))
    if earlier:
        names = [record["image"] for record, _ in earlier]
        progress.log(f"{len(earlier)} photo(s) segmented into {out} before, not among these, are kept in its "
                     f"tables: {_names(names)}")
    if left_out:
        progress.log(f"{len(left_out)} photo(s) segmented into {out} before with another pixel size, unit or model "
                     f"keep their files there but are left out of its tables: {_names(left_out)} (segment them "
                     "again into it, or remove their files)")
    try:
        batch.merge_records(done + earlier, staged, collector, detector)
    except BaseException:
        collector.abort()
        raise
    for record, _ in done:
        result.photos += 1
        result.objects += int(record["objects"])
    result.kept_before = [record["image"] for record, _ in earlier]
    for record, _ in done + earlier:
        result.scales[record["image"]] = record["scale"]
        result.sources[record["stem"]] = record["source"]
        if record.get("reading") == "auto-segmentation":
            result.auto_segmented.append(record["image"])
    result.left_out = left_out
    folder = collector.finish()
    if detector is not None:
        detector.finish()
    result.measurement_text = folder.summary_text()
    if result.photos == 0 and result.failed:
        if failed:
            raise UserInputError(f"None of the {len(files)} photo(s) could be segmented (first: "
                                 f"{next(iter(failed.values()))})")
        raise UserInputError(f"None of the {len(files)} photo(s) could be read (first: {result.failed[0]})")
    write_json_atomic(staged / "segment.json", {"model": str(Path(model_dir).resolve()),
                                             "settings": asdict(settings), "scales": result.scales,
                                             "photos": result.photos, "objects": result.objects,
                                             "skipped": result.failed, "sources": result.sources,
                                             "auto_segmented": result.auto_segmented,
                                             "kept_from_before": result.kept_before,
                                             "left_out_of_tables": result.left_out})
    progress.update(len(files), len(files), "done")
    return result

