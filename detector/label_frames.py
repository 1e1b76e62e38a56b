"""Threshold labels for a folder of the user's own CCD frames.

``run_label_ccd`` labels every frame with :func:`detector.thresholds.label_frame`
(thresholds in units of each frame's own noise sigma, plus the geometry of
glow, hot pixels and clusters) and writes a training set laid out like a
simulated one, so that a model can be checked against, or fine-tuned on,
the user's detector:

    OUT/images/<stem>.tif     the frame as read (ADU)
    OUT/masks/<stem>.png      class index: 0 background, 1 glowing, 2 hot pixel, 3 cluster
    OUT/ccd_labels.json       classes, and per frame its pedestal, noise and counts

The labels are a baseline, not the truth: faint clusters near the noise are
missed or partly labelled (see the README for how they compare with the
exact masks of simulated frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.atomic import write_json_atomic
from core.errors import UserInputError
from core.gray import to_gray
from core.imageio import list_images, write_image
from core.photos import PhotoLoop
from core.progress import Progress
from detector.overscan import frame_overscan, overscan_columns, overscan_text
from detector.thresholds import CLASS_NAMES, label_frame

DESCRIPTION = "ccd_labels.json"


@dataclass
class LabelCCDResult:
    out: Path
    frames: int = 0
    clusters: int = 0
    hot_pixels: int = 0
    failed: list[str] = field(default_factory=list)
    cancelled: bool = False

    def summary(self) -> str:
        if self.cancelled:
            return f"Labelling cancelled: nothing was kept, {self.out} is as it was."
        text = (f"Labelled {self.frames} frame(s) into {self.out}: {self.clusters} clusters, "
                f"{self.hot_pixels} hot pixels.")
        if self.failed:
            text += f" {len(self.failed)} frame(s) could not be read or labelled."
        return text


def run_label_ccd(frames: str | Path, out: str | Path, *, overscan: slice | None = None,
                  hdu: int | None = None, progress: Progress | None = None) -> LabelCCDResult:
    """Label every frame of ``frames`` (a folder or one file) into ``out``.

    All or nothing: the set is written into a staged copy of ``out`` that
    replaces it only at the end, so a cancelled or failed run leaves ``out``
    as it was. A frame that cannot be read, or is too small to label, is
    reported and skipped. ``overscan`` columns give each frame's pedestal
    and noise and are labelled background.
    """
    from core.overlap import output_path, refuse_overlap
    from core.transaction import Transaction

    progress = progress if progress is not None else Progress()
    files = list_images(frames, what="frames folder", hdu=hdu)
    out = output_path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"The output folder is an existing file, not a folder: {out}")
    refuse_overlap(out, [frames, *files], output_kind="the output folder", input_kind="the frames",
                   remedy="choose an output folder apart from the frames")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"The output folder cannot be created: {out} ({exc.strerror})") from None
    with Transaction(out.parent, inputs=[frames]) as tx:
        result = _label(files, out, tx.stage(out), progress, overscan)
        if not result.cancelled:
            tx.commit()
    return result


def _label(files: list[Path], out: Path, staged: Path, progress: Progress,
           overscan: slice | None = None) -> LabelCCDResult:
    (staged / "images").mkdir(parents=True, exist_ok=True)
    (staged / "masks").mkdir(parents=True, exist_ok=True)
    result = LabelCCDResult(out)
    rows = []
    photos = PhotoLoop(files, progress, doing="labelling")
    for _, path, image in photos:
        frame = to_gray(image)
        try:
            columns = frame_overscan(path, overscan)
            over = overscan_columns(frame.shape[1], columns)
            mask, info = label_frame(frame, pedestal_region=np.s_[:, over] if over.any() else None)
            mask[:, over] = 0  # no pixel there: only the readout's noise
        except UserInputError as exc:
            photos.skipped.append(path.name)
            progress.log(f"skipped: {path.name}: {exc}")
            continue
        stem = photos.stem(path)
        write_image(staged / "images" / f"{stem}.tif", np.asarray(frame))
        write_image(staged / "masks" / f"{stem}.png", mask)
        result.frames += 1
        result.clusters += info.clusters
        result.hot_pixels += info.hot_pixels + info.hot_line_pixels
        rows.append({"file": stem, "source": path.name, "pedestal_adu": round(info.pedestal, 3),
                     "noise_sigma_adu": round(info.sigma, 4), "clusters": info.clusters,
                     "hot_pixels": info.hot_pixels, "hot_line_pixels": info.hot_line_pixels,
                     "glow_fraction": round(info.glow_fraction, 5),
                     "overscan_columns": overscan_text(columns) if over.any() else None})
        where = f" (overscan {overscan_text(columns)})" if over.any() else ""
        progress.log(f"{path.name}: pedestal {info.pedestal:.1f} ADU, noise {info.sigma:.2f} ADU{where}, "
                     f"{info.clusters} clusters, {info.hot_pixels + info.hot_line_pixels} hot pixels")
    result.failed, result.cancelled = photos.skipped, photos.cancelled
    if result.cancelled:
        return result
    if result.frames == 0:
        raise UserInputError(f"None of the {len(files)} frame(s) could be labelled (first: {result.failed[0]})")
    write_json_atomic(staged / DESCRIPTION, {
        "what": "threshold labels of real CCD frames (a baseline, not the truth)",
        "files": {"images": "images/<stem>.tif (the frame as read, ADU)",
                  "masks": "masks/<stem>.png (uint8 class index, same stem)"},
        "classes": list(CLASS_NAMES),
        "frames": rows,
        "skipped": result.failed,
    })
    progress.update(len(files), len(files), "done")
    return result
