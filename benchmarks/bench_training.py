"""Training speed: images per second of the default U-Net preset.

    python benchmarks/bench_training.py [--preset cpu] [--size 256] [--batch 8] [--steps 12]

Prints three figures: the network alone (``train_on_batch`` on ready arrays),
the input pipeline alone (the ``tf.data`` stream of augmented patches that
training reads, with no network: what it can feed a faster device) and the
whole pipeline (``run_training`` on a generated folder: reading,
normalising, augmenting, streaming), after the first (tracing) steps.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def network_speed(preset: str, size: int, batch: int, steps: int, precision: str) -> float:
    import numpy as np

    from training.losses import per_class_iou_metrics, weighted_loss
    from training.unet import get_model
    from training.unet import preset as preset_args

    model = get_model((None, None, 1), 2, precision=precision, **preset_args(preset))
    model.compile(optimizer="adam", loss=weighted_loss([0.5, 5.0], dice_weight=0.5),
                  metrics=per_class_iou_metrics(["background", "object"]))
    rng = np.random.default_rng(0)
    x = rng.random((batch, size, size, 1), dtype=np.float32)
    y = (rng.random((batch, size, size)) < 0.05).astype(np.uint8)
    for _ in range(2):
        model.train_on_batch(x, y)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch / (time.perf_counter() - t0)


def write_folder(data: Path, size: int, count: int) -> None:
    import numpy as np

    from core.imageio import write_image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for i in range(count):
        mask = np.zeros((size, size), np.uint8)
        for _ in range(8):
            cy, cx, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(5, 20)]
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
        image = np.clip(80 + 100 * mask + rng.normal(0, 20, mask.shape), 0, 255).astype(np.uint8)
        write_image(data / "images" / f"i{i:03d}.png", image)
        write_image(data / "masks" / f"i{i:03d}.png", mask)


def input_speed(size: int, batch: int, batches: int = 60) -> float:
    """Training patches per second from the input pipeline alone."""
    import numpy as np

    from training import dataset as ds
    from training.data_files import scan_data
    from training.normalize import default_spec

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_folder(data, size, 40)
        found = scan_data(data, num_classes=2)
        normalization = default_spec("percentile")
        source = ds.SampleSource(found, normalization, cache_mb=512)
        aug = ds.Augmentation.for_mode(normalization["mode"], True)
        rng = np.random.default_rng(0)
        indices = list(range(len(found.pairs)))
        stream = iter(ds.make_tf_dataset(lambda: ds.training_patches(source, indices, size, rng, aug), size, batch))
        for _ in range(5):
            next(stream)
        t0 = time.perf_counter()
        for _ in range(batches):
            next(stream)
        return batches * batch / (time.perf_counter() - t0)


def pipeline_speed(preset: str, size: int, batch: int, precision: str) -> float:
    from core.progress import Progress
    from training.settings import TrainSettings
    from training.train import run_training

    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        count = 4 * batch + 4  # 4 training batches per epoch after the validation split
        write_folder(data, size, count)
        settings = TrainSettings(epochs=3, batch_size=batch, patch_size=size, preset=preset, precision=precision,
                                 val_fraction=4 / count)
        last = [time.perf_counter()]

        def on_epoch_end(epoch, logs):
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now

        run_training(data, Path(tmp) / "model", settings=settings, progress=Progress(), on_epoch_end=on_epoch_end)
    # Epochs 2 and 3 (epoch 1 includes graph tracing); validation included.
    return 2 * 4 * batch / sum(times[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args()
    net = network_speed(args.preset, args.size, args.batch, args.steps, args.precision)
    print(f"network alone: {net:.1f} training images/s ({args.preset} preset, {args.precision}, "
          f"{args.size}x{args.size}, batch {args.batch})", flush=True)
    feed = input_speed(args.size, args.batch)
    print(f"input pipeline alone (reading, augmenting, batching; one Python thread): {feed:.1f} patches/s",
          flush=True)
    pipe = pipeline_speed(args.preset, args.size, args.batch, args.precision)
    print(f"whole pipeline (run_training, with validation): {pipe:.1f} training images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
