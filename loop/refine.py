"""``refine``: self-training rounds.

One round, the loop the review tab offers by hand run on its own:

1. segment the photos with the current model (and once more mirrored),
   each at the scale it was last segmented at or a step either side, or
   where a new first look reads it if the model is surer there (see
   :func:`inference.photo.segment_photo`);
2. keep the objects the model is sure of: a clear probability margin inside
   and around the object, the same object found in the mirrored photo, a
   plausible shape (solid, not cut by the border, a size like its
   neighbours', not two particles touching), and not in the pool already
   (from auto-segmentation or a user's pick);
3. put them into the pool with ``origin=refined`` (replacing those of the
   previous round) and retire auto-segmented objects the model now clearly
   calls background;
4. composite a new synthetic set, now also on backgrounds of the photos the
   model has understood, and continue training the same model (warm start);
5. segment the photos again into ``<workdir>/segmented``; a photo that had
   auto-segmentation's objects keeps them unless the retrained model now
   sees most of them (see :data:`inference.fallback.HOLD_SHARE`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from core.errors import ImageReadError, UserInputError
from core.gray import percentile_range, to_gray, to_gray_float
from core.imageio import list_images, read_image, write_image
from core.photos import PhotoLoop
from core.progress import Progress, SubProgress
from core.stats import robust_spread
from core.workdir import WorkingDirectory
from inference.confident import model_sure_objects
from loop.settings import RefineSettings
from segmentation.pool import pooled_labels


@dataclass
class RefineResult:
    rounds: int = 0
    added: list[int] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)
    segmented: str = ""
    cancelled: bool = False
    last_segment: object = None

    @property
    def failed(self) -> list[str]:
        """Photos the last segmentation could not read."""
        return list(getattr(self.last_segment, "failed", None) or [])

    def summary(self) -> str:
        if not self.rounds:
            return ("Cancelled before the first self-training round completed: the working directory and "
                    "the model are as they were before." if self.cancelled else "No self-training round ran.")
        text = (f"{self.rounds} self-training round(s): "
                + ", ".join(f"round {i + 1}: {a} objects added, {r} retired"
                            for i, (a, r) in enumerate(zip(self.added, self.retired)))
                + f". Photos segmented again into {self.segmented}.")
        if self.cancelled:
            kept = (f"as they were after round {self.rounds}" if self.rounds
                    else "as they were before")
            text += (f" Cancelled during round {self.rounds + 1}: the working directory and the model "
                     f"are {kept}.")
        return text


def _photo_stats(image: np.ndarray, gray: np.ndarray, labels: np.ndarray, chosen: list[int],
                 mask_file: str, pooled: int) -> dict:
    objects = labels > 0
    background = ~ndi.binary_dilation(objects, iterations=2)
    bg_level = float(np.median(gray[background])) if background.any() else float(np.median(gray))
    obj_level = float(np.median(gray[objects])) if objects.any() else bg_level
    smooth = ndi.gaussian_filter(gray, 1.0)
    residual = (gray - smooth)[background] if background.any() else (gray - smooth).ravel()
    noise = robust_spread(residual)
    all_areas = np.bincount(labels.ravel())
    areas = all_areas[1:][all_areas[1:] > 0]
    if chosen:
        # The pooled objects are composited at the size they have here, so
        # the photo's object size is theirs; specks the model also saw are
        # neither objects for the density nor for the size.
        typical = float(np.median(all_areas[list(chosen)]))
        areas = areas[areas >= typical / 4]
    diameter = float(np.sqrt(4 * np.median(areas) / np.pi)) if areas.size else 0.0
    return {"mask": mask_file, "polarity": "dark" if obj_level < bg_level else "bright",
            "objects": int(areas.size), "pooled": pooled, "median_diameter_px": round(diameter, 2),
            "area_fraction": round(float(objects.mean()), 4), "noise_sigma": round(noise, 5),
            "width": int(gray.shape[1]), "height": int(gray.shape[0]),
            "gray_range": [round(v, 4) for v in percentile_range(to_gray(image))],
            "background_level": round(bg_level, 4), "object_level": round(obj_level, 4)}


def _auto_mask(workdir: WorkingDirectory, info: dict | None) -> np.ndarray | None:
    try:
        return read_image(workdir.autoseg / info["mask"]) > 0 if info else None
    except (ImageReadError, KeyError):
        return None


def refine_pool(images, workdir: WorkingDirectory, model_dir, settings: RefineSettings,
                progress: Progress, start_scales: dict[str, float] | None = None) -> tuple[int, int]:
    """Steps 1-3 of a round; returns (objects added, objects retired).
    ``start_scales``: the scale each photo was last segmented at."""
    from inference.batch import model_fingerprint
    from inference.photo import segment_photo
    from inference.predict import load_model
    from inference.runtime import prediction_network
    from segmentation.pool import add_objects, delete_objects

    files = list_images(images)
    model, meta = load_model(model_dir)
    model = prediction_network(model, key=model_fingerprint(model_dir))
    for line in workdir.tidy_pool():
        progress.log(line)
    rows = workdir.read_index()
    previous = [r["file"] for r in rows if r.get("origin") == "refined"]
    delete_objects(workdir.root, previous)
    rows = workdir.read_index()
    by_photo: dict[str, list[dict]] = {}
    for row in rows:
        by_photo.setdefault(row["source_image"], []).append(row)
    refine_dir = workdir.refine
    auto_stats = workdir.load_project().get("stages", {}).get("autoseg", {}).get("photos", {})
    stats, added, retire = {}, 0, []
    photos = PhotoLoop(files, progress, doing="finding confident objects in")
    for i, path, image in photos:
        _, scale, fg = segment_photo(model, meta, image, return_foreground=True,
                                     start=(start_scales or {}).get(path.name, 0.0))
        found = model_sure_objects(model, meta, image, scale, fg, settings.sureness,
                                   taken=pooled_labels(workdir.root, path.name, image.shape))
        mask_file = f"{WorkingDirectory.REFINE}/{photos.stem(path)}_mask.png"
        measured = _photo_stats(image, to_gray_float(image), found.labels, found.chosen, mask_file, 0)
        classical_polarity = auto_stats.get(path.name, {}).get("polarity")
        if found.labels.any() and classical_polarity and measured["polarity"] != classical_polarity:
            # The model sees objects of the other polarity than auto-segmentation
            # did: one of the two has the photo inside out, so nothing is learnt from it.
            progress.log(f"{path.name}: left out of this round (the model's objects are "
                         f"{measured['polarity']}, auto-segmentation's {classical_polarity})")
            continue
        # auto objects the model now clearly calls background
        for row in by_photo.get(path.name, []):
            if row.get("origin") != "auto":
                continue
            x0, y0, x1, y1 = (int(row[k]) for k in ("x0", "y0", "x1", "y1"))
            crop_mask = read_image(workdir.objects_masks / row["file"]) > 0
            region = fg[y0:y1, x0:x1]
            if crop_mask.shape == region.shape and region[crop_mask].mean() < settings.retire_below:
                retire.append(row["file"])
        written = add_objects(workdir.root, image, found.labels, found.chosen, source_image=path.name,
                              origin="refined",
                              confidences={k: float(found.foreground[found.labels == k].mean())
                                           for k in found.chosen},
                              seed=settings.seed + i)
        added += len(written)
        # Backgrounds are cut from this mask: anything either the model or the
        # classical auto-segmentation calls an object is removed from them.
        removed = fg >= 0.3
        classical = _auto_mask(workdir, auto_stats.get(path.name))
        if classical is not None and classical.shape == removed.shape:
            removed |= classical
        write_image(refine_dir / f"{photos.stem(path)}_mask.png", removed.astype(np.uint8) * np.uint8(255))
        kept_auto = sum(1 for r in by_photo.get(path.name, []) if r.get("origin") == "auto"
                        and r["file"] not in retire)
        stats[path.name] = {**measured, "pooled": kept_auto + len(written)}
    retired = delete_objects(workdir.root, retire)
    workdir.record_stage("refine", {"photos": stats, "added": added, "retired": retired})
    return added, retired


# What a round changes in the working directory (and reads: autoseg masks).
ROUND_PARTS = (WorkingDirectory.OBJECTS, WorkingDirectory.AUTOSEG, WorkingDirectory.REFINE,
               WorkingDirectory.SYNTHETIC, WorkingDirectory.SEGMENTED, WorkingDirectory.PROJECT)


def run_refine(images: str | Path, workdir: str | Path, model_dir: str | Path, *, rounds: int = 1,
               settings: RefineSettings | None = None, progress: Progress | None = None,
               start_from: str | Path | None = None,
               on_epoch_end: Callable[[int, dict], None] | None = None) -> RefineResult:
    """Run ``rounds`` self-training rounds (see the module notes).

    Each round is all or nothing: it works on a staged copy of the pool,
    synthetic set, segmentations and model, which replaces the originals
    only when the round completes. A round that is cancelled or fails
    leaves the working directory and the model as they were after the last
    completed round.

    ``start_from``: a model folder to start from when ``model_dir`` holds
    no model yet (the bundled model); it is never changed itself.
    ``on_epoch_end(epoch, logs)`` is called after every training epoch, as
    by :func:`training.train.run_training`.
    """
    from core.model_folder import check_writable, holds_model, read_trained_meta, training_record
    from core.transaction import Transaction
    from inference.stage import previous_scales, run_segment
    from synthetic.compose import SynthesisSettings, run_synthesize
    from training.settings import TrainSettings
    from training.train import run_training

    settings = settings or RefineSettings()
    progress = progress or Progress()
    if rounds < 1:
        raise UserInputError(f"The number of rounds must be at least 1, not {rounds}")
    model_dir = Path(model_dir)
    check_writable(model_dir)
    list_images(images)
    wd = WorkingDirectory(workdir)
    if not wd.pool_files():
        raise UserInputError(f"The object pool in {wd.root} is empty: run Auto-segment (or the pipeline) first")
    if holds_model(model_dir):
        start_from = None
    meta = read_trained_meta(start_from if start_from is not None else model_dir)
    result = RefineResult(segmented=str(wd.segmented))
    train_settings = TrainSettings(**{k: v for k, v in training_record(meta).items()
                                      if k in TrainSettings.__dataclass_fields__})
    train_settings.epochs = settings.epochs
    for k in range(rounds):
        base = k / rounds

        def part(a, b, label, base=base, k=k):
            return SubProgress(progress, base + a / rounds, base + b / rounds, f"round {k + 1}: {label}")

        with Transaction(wd.root, inputs=[images, start_from]) as tx:
            part(0.0, 0.0, "preparing").update(0, 1, "copying the pool and the model to work on")
            for name in ROUND_PARTS:
                tx.stage(wd.root / name)
            staged = WorkingDirectory(tx.root)
            model = tx.stage(model_dir, source=start_from if k == 0 else None)
            # A photo's object size does not change between rounds: each round
            # starts its scale check where the last segmentation ended; the retrained
            # model's first look (which misjudged large particles by 2-5x after a
            # round) is only checked beside it.
            scales = previous_scales(staged.segmented)
            added, retired = refine_pool(images, staged, model, settings, part(0.0, 0.2, "pool"), scales)
            if progress.cancelled:
                result.cancelled = True
                break
            run_synthesize(staged.root, settings=SynthesisSettings(count=settings.synthetic_count,
                                                                   size=settings.synthetic_size,
                                                                   seed=settings.seed + 1000 * (k + 1),
                                                                   fit_size=True),
                           progress=part(0.2, 0.3, "synthesis"))
            trained = run_training(staged.synthetic, model, settings=train_settings,
                                   progress=part(0.3, 0.9, "training"), on_epoch_end=on_epoch_end)
            if trained.cancelled or progress.cancelled:
                result.cancelled = True
                break
            result.last_segment = run_segment(model, images, staged.segmented,
                                              progress=part(0.9, 1.0, "segmentation"), start_scales=scales)
            if progress.cancelled or getattr(result.last_segment, "cancelled", False):
                result.cancelled = True
                break
            tx.commit()
        result.rounds += 1
        result.added.append(added)
        result.retired.append(retired)
        progress.log(f"round {k + 1}: {added} objects added to the pool, {retired} retired")
    return result
