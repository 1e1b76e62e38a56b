"""``evaluate``: scoring a folder of predicted masks against expert masks.

Predicted masks are ``<stem>_mask.png`` (or ``<stem>.png``) in the
prediction folder, with ``<stem>_labels.tif`` used as the predicted objects
where present (a 16-bit predicted mask is taken as instance labels itself,
otherwise objects are connected components); expert masks are ``<stem>.png`` in the truth folder. The kind
of truth is recognised from the files:

* **instance labels** (16-bit masks, or more than 16 distinct values): each
  value is one object; pixels are scored as binary foreground;
* **binary** (one non-zero value, e.g. 0/255): foreground vs background,
  objects are connected components;
* **multi-class** (class indices 0..K-1): scored per class, objects are the
  connected components of each class.

The report (printed, and written as ``report.txt``, ``report.json`` and
``confusion.png``) gives per-class precision, recall, F1 and IoU, the
confusion matrix, foreground IoU and Dice per image and their means (IoU
per image, then averaged), and object F1 at IoU 0.5 pooled over images.
For instance and binary truth it also gives the figures users publish
(see :mod:`evaluation.sizes`): per-photo count and D50 errors, and the
diameter error of the particles matched to an expert one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.atomic import atomic_path, write_json_atomic, write_text_atomic
from core.errors import UserInputError
from core.imageio import IMAGE_EXTENSIONS, read_image
from core.progress import Progress
from evaluation import metrics as m
from evaluation.report_text import format_report

MATCH_THRESHOLD = 0.5
MAX_CLASSES = 16


@dataclass
class EvaluationResult:
    """The scores and where they were written."""

    text: str
    report: dict
    images: int
    out_dir: Path | None
    files: list[Path] = field(default_factory=list)
    cancelled: bool = False

    def summary(self) -> str:
        return self.text.split("\n\n")[0]


def _image_files(folder: Path, what: str) -> list[Path]:
    if not folder.exists():
        raise UserInputError(f"The {what} folder does not exist: {folder}")
    if not folder.is_dir():
        raise UserInputError(f"The {what} folder is not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_EXTENSIONS)


def find_predictions(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """``{stem: mask}`` and ``{stem: labels}`` in a prediction folder: the
    ``_mask`` files when there are any, else every image that is not an
    overlay or a label image."""
    files = _image_files(folder, "prediction")
    masks = {p.stem[:-5]: p for p in files if p.stem.endswith("_mask")}
    labels = {p.stem[:-7]: p for p in files if p.stem.endswith("_labels")}
    if not masks:
        masks = {p.stem: p for p in files if not p.stem.endswith(("_overlay", "_labels"))}
    return masks, labels


MAX_MASK_COLOURS = 256


def _read_mask(path: Path) -> np.ndarray:
    """A mask as integers: gray values as they are; a colour mask (each
    object or class in its own colour) with one integer per colour, 0 for
    black. A colour photo given as a mask is refused."""
    mask = read_image(path)
    if mask.ndim == 3:
        rgb = mask[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            colours, labels = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
            if len(colours) > MAX_MASK_COLOURS:
                raise UserInputError(f"{path} looks like a photo, not a mask ({len(colours)} colours): give the "
                                     "masks, with one value (or colour) per class or per object")
            coloured = colours.any(axis=1)  # black is the background: 0, the other colours 1, 2, ...
            order = np.where(coloured, np.cumsum(coloured), 0)
            return order[labels.reshape(rgb.shape[:2])].astype(np.int64)
        mask = mask[..., 0]
    if mask.dtype.kind == "f":
        mask = np.rint(np.nan_to_num(mask)).astype(np.int64)
    return mask


def _truth_kind(truths: dict[str, Path]) -> tuple[str, int]:
    """("instances" | "binary" | "classes", largest class index) over the truth files."""
    values: set[int] = set()
    kind = "classes"
    for path in truths.values():
        mask = _read_mask(path)
        uniq = np.unique(mask)
        if mask.dtype == np.uint16 or uniq.size > MAX_CLASSES or uniq.max() > 255:
            return "instances", 1
        values.update(int(v) for v in uniq)
    nonzero = values - {0}
    if len(nonzero) <= 1 and (not nonzero or max(nonzero) in (1, 255)):
        kind = "binary"
    return kind, (1 if kind == "binary" else max(values | {1}))


def run_evaluate(pred: str | Path, truth: str | Path, out: str | Path | None = None, *,
                 progress: Progress | None = None) -> EvaluationResult:
    """Score predicted masks against expert masks and write the report.

    Parameters
    ----------
    pred : path
        Folder of predicted masks (``<stem>_mask.png`` or ``<stem>.png``).
    truth : path
        Folder of expert masks (``<stem>.png``).
    out : path, optional
        Folder for report.txt, report.json and confusion.png (default:
        ``<pred>_evaluation`` beside ``pred``). It may not be, hold or lie
        inside ``pred`` or ``truth`` (see :mod:`core.overlap`).
    progress : core.progress.Progress, optional

    Returns
    -------
    EvaluationResult
        ``text`` is the printed report.

    Raises
    ------
    UserInputError
        A missing folder, no stem in common, or a mask whose size differs
        from its expert mask.
    """
    from core.overlap import output_path, refuse_overlap

    progress = progress if progress is not None else Progress()
    pred, truth = Path(pred), Path(truth)
    predictions, pred_labels = find_predictions(pred)
    out_dir = output_path(out, output_kind="the report folder") if out is not None else default_report_folder(pred)
    refuse_overlap(out_dir, [pred, truth], output_kind="the report folder", input_kind="the mask folder",
                   remedy="choose a report folder apart from the masks")
    truths = {p.stem: p for p in _image_files(truth, "truth")}
    if not predictions:
        raise UserInputError(f"The prediction folder holds no masks: {pred}")
    if not truths:
        raise UserInputError(f"The truth folder holds no masks: {truth}")
    stems = sorted(set(predictions) & set(truths))
    if not stems:
        raise UserInputError(f"No predicted mask has the name of an expert mask (e.g. {next(iter(predictions))} "
                             f"in {pred}, {next(iter(truths))} in {truth})")
    kind, top_class = _truth_kind({s: truths[s] for s in stems})
    num_classes = max(2, top_class + 1)
    confusion = np.zeros((num_classes, num_classes), np.int64)
    per_image, matches, sizes = [], {}, []
    cancelled = False
    for i, stem in enumerate(stems):
        if progress.cancelled:
            cancelled = True
            break
        progress.update(i, len(stems), f"scoring {stem}")
        predicted, expected = _read_mask(predictions[stem]), _read_mask(truths[stem])
        if predicted.shape != expected.shape:
            raise UserInputError(f"Predicted mask {predictions[stem].name} is {predicted.shape[1]} x "
                                 f"{predicted.shape[0]} pixels but expert mask {truths[stem].name} is "
                                 f"{expected.shape[1]} x {expected.shape[0]}")
        if kind == "classes":
            if predicted.max() >= num_classes:
                grown = int(predicted.max()) + 1
                if grown > MAX_CLASSES:
                    raise UserInputError(f"Predicted mask {predictions[stem].name} holds value {int(predicted.max())}, "
                                         f"not a class index")
                confusion = np.pad(confusion, ((0, grown - num_classes), (0, grown - num_classes)))
                num_classes = grown
            confusion += m.confusion_matrix(predicted, expected, num_classes)
        else:
            confusion += m.confusion_matrix(predicted > 0, expected > 0, 2)
        iou, dice = m.foreground_iou_dice(predicted, expected)
        row = {"image": stem, "foreground_iou": m._num(iou), "foreground_dice": m._num(dice)}
        objects = _match_image(kind, stem, predicted, expected, pred_labels, matches, num_classes)
        if objects is not None:
            from evaluation.sizes import photo_sizes

            sizes.append(photo_sizes(stem, *objects))
            row.update({k: v for k, v in sizes[-1].row().items() if k != "image"})
        per_image.append(row)
    progress.update(len(stems), len(stems), "scored")
    report = _build_report(kind, confusion, per_image, matches, pred, truth, predictions, truths, stems)
    if sizes:
        from evaluation.sizes import summarise

        report["sizes"] = summarise(sizes)
    report["cancelled"] = cancelled
    text = format_report(report)
    files = _write(out_dir, report, text)
    return EvaluationResult(text, report, len(per_image), out_dir, files, cancelled)


def default_report_folder(pred: str | Path) -> Path:
    """Where the report goes when no folder is given: ``<pred>_evaluation``
    beside the prediction folder (never into it, where a file of the user's
    could be overwritten)."""
    pred = Path(os.path.abspath(pred))
    return pred.with_name(f"{pred.name}_evaluation")


def _match_image(kind, stem, predicted, expected, pred_labels, matches, num_classes):
    """Match one image's objects into ``matches``; the (predicted, expert)
    instance labels where the truth is instances or binary, else None."""
    if kind == "classes":
        for cls in range(1, num_classes):
            result = m.instance_matching(m.label_objects(predicted == cls), m.label_objects(expected == cls),
                                         MATCH_THRESHOLD, pred_are_labels=True)
            matches.setdefault(cls, []).append(result)
        return None
    if stem in pred_labels:
        objects = _read_mask(pred_labels[stem])
        if objects.shape != predicted.shape:
            raise UserInputError(f"Label image {pred_labels[stem].name} does not have the size of its mask")
        pred_objects, are_labels = objects, True
    elif predicted.dtype == np.uint16 or predicted.max() > 255:
        pred_objects, are_labels = predicted, True  # the prediction is itself an instance-label image
    else:
        pred_objects, are_labels = predicted > 0, False
    truth_objects = expected if kind == "instances" else m.label_objects(expected)
    matches.setdefault(1, []).append(
        m.instance_matching(pred_objects, truth_objects, MATCH_THRESHOLD, pred_are_labels=are_labels))
    return (pred_objects if are_labels else m.label_objects(pred_objects)), truth_objects


def _class_names(kind: str, num_classes: int, truth: Path) -> list[str]:
    if kind != "classes":
        return ["background", "foreground"]
    from training.data_files import read_class_names

    return read_class_names(truth.parent, num_classes)


def _build_report(kind, confusion, per_image, matches, pred, truth, predictions, truths, stems) -> dict:
    scores = m.scores_from_confusion(confusion)
    names = _class_names(kind, scores.num_classes, truth)
    ious = [r["foreground_iou"] for r in per_image if r["foreground_iou"] is not None]
    dices = [r["foreground_dice"] for r in per_image if r["foreground_dice"] is not None]
    objects = {names[c]: m.pool_matches(results).as_dict() for c, results in sorted(matches.items())}
    return {
        "prediction_folder": str(pred),
        "truth_folder": str(truth),
        "truth_kind": kind,
        "images": len(per_image),
        "skipped_predictions": sorted(set(predictions) - set(stems)),
        "skipped_truths": sorted(set(truths) - set(stems)),
        "classes": names,
        "pixel": scores.as_dict(names),
        "mean_foreground_iou": float(np.mean(ious)) if ious else None,
        "mean_foreground_dice": float(np.mean(dices)) if dices else None,
        "match_threshold": MATCH_THRESHOLD,
        "objects": objects,
        "per_image": per_image,
    }


def _write(out_dir: Path, report: dict, text: str) -> list[Path]:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"Cannot create the report folder {out_dir}: {exc.strerror}") from None
    write_text_atomic(out_dir / "report.txt", text + "\n")
    write_json_atomic(out_dir / "report.json", report)
    files = [out_dir / "report.txt", out_dir / "report.json"]
    files.append(plot_confusion(np.array(report["pixel"]["confusion"]), report["classes"],
                                out_dir / "confusion.png"))
    return files


def plot_confusion(confusion: np.ndarray, names: list[str], path: Path) -> Path:
    """The confusion matrix as a PNG: colour = share of each true class's
    pixels, text = that share and the pixel count."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    size = 2.0 + 1.1 * len(names)
    fig = Figure(figsize=(size, size * 0.85), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="share of the true class")
    for (r, c), value in np.ndenumerate(confusion):
        ax.text(c, r, f"{share[r, c]:.2f}\n{value}", ha="center", va="center", fontsize=8,
                color="white" if share[r, c] > 0.6 else "black")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix (pixels)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
