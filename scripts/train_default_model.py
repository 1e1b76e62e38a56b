"""Train the small default model shipped in checkpoints/.

It is trained by the application's own stages on its own bundled sample
photos (working_directory/photos): auto-segmentation, synthesis, training.
The optimiser state is left out of the saved file (the model is for
segmenting; training it further starts a fresh optimiser), which keeps it
small.

    python scripts/train_default_model.py [--epochs 25] [--out checkpoints]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.progress import TerminalProgress  # noqa: E402
from core.quiet_tf import import_tensorflow  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT / "working_directory" / "photos")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--out", type=Path, default=ROOT / "checkpoints")
    args = parser.parse_args()
    import_tensorflow()
    import keras

    from segmentation.autoseg import run_autoseg
    from synthetic.compose import SynthesisSettings, run_synthesize
    from training.settings import TrainSettings
    from training.train import run_training

    progress = TerminalProgress()
    with tempfile.TemporaryDirectory() as tmp:
        workdir, model_dir = Path(tmp) / "wd", Path(tmp) / "model"
        run_autoseg(args.photos, workdir, progress=progress)
        run_synthesize(workdir, settings=SynthesisSettings(count=300, size=256, seed=0), progress=progress)
        result = run_training(workdir / "synthetic", model_dir,
                              settings=TrainSettings(epochs=args.epochs, preset="cpu", seed=0), progress=progress)
        print(result.summary())
        args.out.mkdir(parents=True, exist_ok=True)
        model = keras.saving.load_model(model_dir / "model.keras", compile=False, safe_mode=True)
        model.save(args.out / "model.keras")
        for name in ("model.json", "history.csv", "curves.png"):
            if (model_dir / name).exists():
                shutil.copy2(model_dir / name, args.out / name)
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"default model written to {args.out} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
