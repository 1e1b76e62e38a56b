#!/usr/bin/env python3
"""SegLoop: from unlabelled microscope photos to a trained segmentation model
and per-object measurements.

With no arguments (or only --workdir) the desktop application opens; with a
subcommand the same stage functions run headless with a progress bar on the
terminal. Exit status: 0 success, 1 cancelled or failed, 2 bad input
(nothing was changed), 3 finished but some photos could not be read (they
are named on stderr and, for segment, in segment.json).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Keep TensorFlow's start-up chatter off the user's terminal (oneDNN stays on).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MAX_SEED = 2**32 - 1
MIRRORS = {"auto": "auto", "always": True, "never": False}  # --mirrors: SegmentSettings.flips


def _argument(convert, accept, expected: str):
    """An argparse type: ``convert`` the text, then ``accept`` the value or
    say what was ``expected``."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            kind = "a whole number" if convert is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind}, got '{text}'") from None
        if not accept(value):  # NaN fails every comparison, so it is refused too
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value
    return parse


positive_int = _argument(int, lambda v: v > 0, "a number above 0")
non_negative_int = _argument(int, lambda v: v >= 0, "0 or more")
seed_int = _argument(int, lambda v: 0 <= v <= MAX_SEED, f"a seed from 0 to {MAX_SEED}")
scale_float = _argument(float, lambda v: 0 <= v <= 16, "0 (automatic) or a factor up to 16")
workers_int = _argument(int, lambda v: 0 <= v <= 1024, "a number of workers from 0 to 1024")


def model_folder(value: str) -> str:
    """A model folder argument; the word ``bundled`` names the model that
    comes with the application (wherever it was installed)."""
    if value == "bundled":
        from core.model_folder import BUNDLED_MODEL  # noqa: PLC0415 - no TensorFlow behind it

        return str(BUNDLED_MODEL)
    return value


class OneLineParser(argparse.ArgumentParser):
    """Argument mistakes in one line on stderr (exit 2), with where to look for help."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def fits_unit(value: str) -> int | None:
    """``--hdu``: ``all`` (None) or a unit number from 0."""
    if value.strip().lower() == "all":
        return None
    try:
        unit = int(value)
    except ValueError:
        unit = -1
    if unit < 0:
        raise argparse.ArgumentTypeError(f"'{value}' is not a FITS unit: give a number from 0 (the primary unit) "
                                         "or all")
    return unit


HDU_HELP = ("FITS frames: only image unit N of each file (0 = primary), or all (default: every image unit, "
            "one photo each, e.g. one per amplifier)")

OVERSCAN_HELP = ("detector frames: overscan (or prescan) columns that give the pedestal and readout noise, "
                 "A:B counted from 0 as in Python (-100: = the last 100 columns)")


def command_name() -> str:
    """How the user started the program: `segloop` when installed as a package, else `app.py`."""
    return "segloop" if Path(sys.argv[0]).name == "segloop" else "app.py"


def build_parser() -> argparse.ArgumentParser:
    # The defaults are the settings' own (the window shows the same); these
    # two modules are light, so --help still answers at once.
    from dataclasses import fields

    from loop.settings import RefineSettings
    from synthetic.settings import SynthesisSettings
    from training.settings import TrainSettings

    SYNTHESIS, TRAINING = SynthesisSettings(), TrainSettings()  # noqa: N806 - read as constants below
    ROUND = {f.name: f.default for f in fields(RefineSettings)}  # noqa: N806
    parser = OneLineParser(
        prog=command_name(),
        description="SegLoop: label-free segmentation of microscope and detector images. "
                    "Run without a subcommand to open the desktop application.",
    )
    parser.add_argument("--workdir", help="working directory to open in the GUI")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("autoseg", help="classical auto-segmentation of photos into the object pool")
    p.add_argument("--images", required=True, help="folder of photos (or one photo)")
    p.add_argument("--workdir", required=True, help="working directory (created if missing)")
    p.add_argument("--polarity", choices=["auto", "dark", "bright"], default="auto",
                   help="objects darker or brighter than the background (default: detect)")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed for augmented variants")
    p.add_argument("--variants", type=non_negative_int, default=0,
                   help="augmented variants saved per pooled object (default 0)")

    p = sub.add_parser("synthesize", help="composite training images from the object pool")
    p.add_argument("--workdir", required=True, help="working directory holding the object pool")
    p.add_argument("--count", type=positive_int, default=SYNTHESIS.count,
                   help=f"number of images (default {SYNTHESIS.count})")
    p.add_argument("--size", type=positive_int, default=SYNTHESIS.size,
                   help=f"image side in pixels (default {SYNTHESIS.size})")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (same seed, same images)")

    p = sub.add_parser("simulate-ccd", help="simulate CCD detector frames with exact class masks")
    p.add_argument("--out", required=True, help="output folder (images/ and masks/ are written)")
    p.add_argument("--count", type=positive_int, default=None, help="number of frames (default 200)")
    p.add_argument("--size", type=positive_int, default=None, help="frame side in pixels (default 256)")
    p.add_argument("--seed", type=seed_int, default=None, help="random seed (same seed, same frames)")
    p.add_argument("--settings", default=None, metavar="FILE",
                   help="simulator settings measured by fit-ccd (or a simulation.json); "
                        "--count, --size and --seed given here win")

    p = sub.add_parser("fit-ccd", help="measure the user's detector frames into simulator settings")
    p.add_argument("--frames", required=True, help="folder of frames (FITS, TIFF, ...) or one frame")
    p.add_argument("--out", required=True, help="settings file to write (JSON), for simulate-ccd --settings")
    p.add_argument("--gain", type=str, default=None, metavar="ADU_PER_E",
                   help="ADU per electron, when known (charges and noise in electrons; default 1)")
    p.add_argument("--overscan", default=None, metavar="A:B", help=OVERSCAN_HELP)
    p.add_argument("--hdu", type=fits_unit, default=None, metavar="N|all", help=HDU_HELP)

    p = sub.add_parser("label-ccd", help="label real CCD frames by thresholds in noise sigmas (a training set)")
    p.add_argument("--frames", required=True, help="folder of frames (FITS, TIFF, ...) or one frame")
    p.add_argument("--out", required=True, help="output folder (images/, masks/ and ccd_labels.json are written)")
    p.add_argument("--overscan", default=None, metavar="A:B", help=OVERSCAN_HELP)
    p.add_argument("--hdu", type=fits_unit, default=None, metavar="N|all", help=HDU_HELP)

    p = sub.add_parser("train", help="train a U-Net on a folder with images/ and masks/")
    p.add_argument("--data", required=True, help="folder with images/ and masks/ (e.g. WORKDIR/synthetic)")
    p.add_argument("--model", required=True, type=model_folder,
                   help="model folder (created; resumed if it holds a model)")
    p.add_argument("--epochs", type=positive_int, default=TRAINING.epochs,
                   help=f"number of epochs (default {TRAINING.epochs})")
    p.add_argument("--batch-size", type=positive_int, default=TRAINING.batch_size,
                   help=f"images per batch (default {TRAINING.batch_size})")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed")
    p.add_argument("--start-from", default=None, metavar="DIR", type=model_folder,
                   help="when --model holds no model yet, start from a copy of the model in DIR "
                        "(bundled = the model that comes with the application); DIR is never changed")

    p = sub.add_parser("segment", help="segment photos with a trained model and measure the objects")
    p.add_argument("--model", required=True, type=model_folder,
                   help="model folder (model.keras + model.json); bundled = the model that comes with the "
                        "application")
    p.add_argument("--images", required=True, help="folder of photos or one photo")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--pixel-size", type=str, default=None,
                   help="length of one pixel side, for sizes in physical units (e.g. 2.5)")
    p.add_argument("--unit", default="um", help="unit of --pixel-size: nm, um or mm (default um)")
    p.add_argument("--workdir", default=None,
                   help="use the calibration stored in this working directory (set in the window)")
    p.add_argument("--scale", type=scale_float, default=0.0,
                   help="resample the photos by this factor before segmenting (default 0: chosen per photo "
                        "from the size of its objects)")
    p.add_argument("--mirrors", choices=MIRRORS, default="auto",
                   help="average each photo's prediction with the photo mirrored three ways: auto (default) where "
                        "the photo at its scale is at most 1 megapixel (where it changes the answer), always, never")
    p.add_argument("--no-mirrors", action="store_true", help="the same as --mirrors never")
    p.add_argument("--model-only", action="store_true",
                   help="keep the model's mask even where it sees next to none of the objects auto-segmentation "
                        "finds (by default auto-segmentation's objects are kept there, and the log says so)")
    p.add_argument("--gain", type=str, default=None, metavar="ADU_PER_E",
                   help="detector frames: ADU per electron, to give cluster charges in electrons too")
    p.add_argument("--overscan", default=None, metavar="A:B", help=OVERSCAN_HELP)
    p.add_argument("--hdu", type=fits_unit, default=None, metavar="N|all", help=HDU_HELP)
    p.add_argument("--formats", default="all", metavar="LIST",
                   help="what to write beside the masks and the folder tables: a comma-separated choice of "
                        "csv (per-photo tables), tiff (label images), roi (ImageJ ROI zips), geojson (QuPath), "
                        "coco (annotations.json), overlay (PNG); default all")
    p.add_argument("--workers", type=workers_int, default=0, metavar="N",
                   help="segment on N worker processes of a local Dask cluster (default 0: one photo after "
                        "another in this process)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="segment on a running Dask cluster; the model, photos and output folder must be at the "
                        "same paths on its workers, with this application installed there")
    p.add_argument("--force", action="store_true",
                   help="segment every photo again (by default photos already done into --out with this model "
                        "and these settings, by a completed or an interrupted run, are kept)")

    p = sub.add_parser("evaluate", help="score predicted masks against expert masks")
    p.add_argument("--pred", required=True, help="folder of predicted masks")
    p.add_argument("--truth", required=True, help="folder of expert masks")
    p.add_argument("--out", help="folder for the report (default: a folder beside --pred named after it, "
                                  "<pred>_evaluation)")

    p = sub.add_parser("pipeline", help="auto-segment, synthesize, train and segment in one go")
    p.add_argument("--images", required=True, help="folder of photos")
    p.add_argument("--workdir", required=True, help="working directory")
    p.add_argument("--model", required=True, type=model_folder, help="model folder")
    p.add_argument("--epochs", type=positive_int, default=TRAINING.epochs,
                   help=f"number of epochs (default {TRAINING.epochs})")

    p = sub.add_parser("refine", help="self-training rounds: segment, pool confident objects, retrain")
    p.add_argument("--images", required=True, help="folder of photos")
    p.add_argument("--workdir", required=True, help="working directory")
    p.add_argument("--model", required=True, type=model_folder, help="model folder")
    p.add_argument("--rounds", type=positive_int, default=1, help="number of rounds (default 1)")
    p.add_argument("--epochs", type=positive_int, default=ROUND["epochs"],
                   help=f"training epochs each round adds (default {ROUND['epochs']})")
    p.add_argument("--count", type=positive_int, default=ROUND["synthetic_count"],
                   help=f"synthetic images each round composites (default {ROUND['synthetic_count']})")
    p.add_argument("--start-from", default=None, metavar="DIR", type=model_folder,
                   help="when --model holds no model yet, start from a copy of the model in DIR "
                        "(bundled = the model that comes with the application); DIR is never changed")

    return parser


SKIPPED_PHOTOS = 3


def _reported(result) -> int:
    """Print what a stage did; the exit status: 1 cancelled, 3 with the
    photos that could not be read named on stderr, else 0."""
    print(result.summary() if hasattr(result, "summary") else result.text)
    if getattr(result, "cancelled", False):
        return 1
    failed = list(getattr(result, "failed", None) or [])
    if not failed:
        return 0
    names = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
    print(f"warning: {len(failed)} photo(s) could not be read and were skipped: {names}", file=sys.stderr)
    return SKIPPED_PHOTOS


def _run_autoseg(args, progress):
    from segmentation.autoseg import AutosegSettings, run_autoseg

    settings = AutosegSettings(polarity=args.polarity, seed=args.seed, variants=args.variants)
    return run_autoseg(args.images, args.workdir, settings=settings, progress=progress)


def _run_synthesize(args, progress):
    from synthetic.compose import SynthesisSettings, run_synthesize

    settings = SynthesisSettings(count=args.count, size=args.size, seed=args.seed)
    return run_synthesize(args.workdir, settings=settings, progress=progress)


def _run_simulate_ccd(args, progress):
    from synthetic.ccd import CCDSettings, run_simulate_ccd
    from synthetic.ccd_settings import load_ccd_settings

    settings = load_ccd_settings(args.settings) if args.settings else CCDSettings()
    for name in ("count", "size", "seed"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    return run_simulate_ccd(args.out, settings=settings, progress=progress)


def _run_fit_ccd(args, progress):
    from detector.fit import run_fit_ccd
    from detector.overscan import parse_overscan

    return run_fit_ccd(args.frames, args.out, gain=_gain(args.gain), overscan=parse_overscan(args.overscan),
                       hdu=args.hdu, progress=progress)


def _run_label_ccd(args, progress):
    from detector.label_frames import run_label_ccd
    from detector.overscan import parse_overscan

    return run_label_ccd(args.frames, args.out, overscan=parse_overscan(args.overscan), hdu=args.hdu,
                         progress=progress)


def _run_train(args, progress):
    from training.settings import TrainSettings
    from training.train import run_training

    settings = TrainSettings(seed=args.seed, epochs=args.epochs, batch_size=args.batch_size)
    return run_training(args.data, args.model, settings=settings, progress=progress, start_from=args.start_from)


def _pixel_calibration(args):
    from measurement.calibration import calibration_from_pixel_size

    return calibration_from_pixel_size(args.pixel_size, args.unit)  # refuses a word, zero, an absurd size


def _gain(text: str | None) -> float | None:
    from core.errors import UserInputError

    if text is None:
        return None
    try:
        gain = float(text)
    except ValueError:
        raise UserInputError(f"--gain must be a number of ADU per electron, not '{text}'") from None
    if not (gain > 0 and gain < float("inf")):
        raise UserInputError(f"--gain must be a positive number of ADU per electron, not '{text}'")
    return gain


def _run_segment(args, progress):
    from dataclasses import replace

    from inference.settings import SegmentSettings
    from inference.stage import run_segment
    from measurement.calibration import load_calibration
    from measurement.exports import parse_formats

    mirrors = MIRRORS["never" if args.no_mirrors else args.mirrors]
    settings = SegmentSettings(scale=args.scale, gain=_gain(args.gain), overscan=args.overscan, hdu=args.hdu,
                               formats=parse_formats(args.formats), flips=mirrors, fallback=not args.model_only)
    settings.check()
    if args.pixel_size is not None:
        calibration = _pixel_calibration(args)
    elif args.workdir:
        calibration = load_calibration(args.workdir)
        if calibration is None:
            progress.log(f"{args.workdir} holds no calibration: sizes are in pixels only")
    else:
        calibration = None  # run_segment then uses a pixel size the photos carry
    if calibration is not None:
        settings = replace(settings, calibration=calibration)
        progress.log(f"Sizes also in {calibration.unit}: {calibration.describe()}")
    return run_segment(args.model, args.images, args.out, settings=settings, progress=progress,
                       workers=args.workers, scheduler=args.scheduler, force=args.force)


def _run_evaluate(args, progress):
    from evaluation.report import run_evaluate

    return run_evaluate(args.pred, args.truth, args.out, progress=progress)


def _run_pipeline(args, progress):
    from loop.pipeline import run_pipeline

    return run_pipeline(args.images, args.workdir, args.model, epochs=args.epochs, progress=progress)


def _run_refine(args, progress):
    from loop.refine import run_refine
    from loop.settings import RefineSettings

    settings = RefineSettings(epochs=args.epochs, synthetic_count=args.count)
    return run_refine(args.images, args.workdir, args.model, rounds=args.rounds, settings=settings,
                      progress=progress, start_from=args.start_from)


def _check_before_tensorflow(args) -> None:
    """The mistakes that can be seen without TensorFlow, reported before
    its import (several seconds) rather than after."""
    from core.errors import UserInputError
    from core.imageio import list_images
    from core.model_folder import read_trained_meta

    if getattr(args, "images", None):
        list_images(args.images, what="photos folder or photo", hdu=getattr(args, "hdu", None))
    if args.command == "segment":
        read_trained_meta(args.model)
        if args.pixel_size is not None:
            _pixel_calibration(args)
        _gain(args.gain)
        from detector.overscan import parse_overscan

        parse_overscan(args.overscan)
        from measurement.exports import parse_formats

        parse_formats(args.formats)
        if args.workers and args.scheduler:
            raise UserInputError("Give either --workers (a local cluster) or --scheduler (a running one), not both")
        if args.workers:
            from inference.batch import check_local_workers

            check_local_workers(args.workers)
    if args.command == "train" and not os.path.isdir(args.data):
        raise UserInputError(f"The training data folder does not exist: {args.data}")


NEEDS_TENSORFLOW = {"train", "segment", "pipeline", "refine"}

HANDLERS = {
    "autoseg": _run_autoseg,
    "synthesize": _run_synthesize,
    "simulate-ccd": _run_simulate_ccd,
    "label-ccd": _run_label_ccd,
    "fit-ccd": _run_fit_ccd,
    "train": _run_train,
    "segment": _run_segment,
    "evaluate": _run_evaluate,
    "pipeline": _run_pipeline,
    "refine": _run_refine,
}


def run_cli(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from gui.main import main as gui_main  # noqa: PLC0415 - Qt only when the GUI opens

        return gui_main(workdir=args.workdir)

    from core.errors import StageCancelled, UserInputError, user_error_from
    from core.progress import TerminalProgress

    progress = TerminalProgress()
    try:
        if args.command in NEEDS_TENSORFLOW:
            from core.quiet_tf import import_tensorflow

            _check_before_tensorflow(args)
            if args.command != "segment":  # segment loads it only where no checked conversion is kept
                import_tensorflow()
        return _reported(HANDLERS[args.command](args, progress))
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        mistake = user_error_from(exc)
        if mistake is None:
            raise
        print(f"error: {mistake}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, StageCancelled):
        print("cancelled", file=sys.stderr)
        return 1


def main() -> int:
    return run_cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
