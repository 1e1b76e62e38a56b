"""Speed of the CCD simulator, class proportions of its frames, and how well
the threshold labeller does against the exact masks.

    python benchmarks/bench_ccd_simulator.py                 # speed, proportions, labeller F1
    python benchmarks/bench_ccd_simulator.py --learnability  # also train a small U-Net (~15 min)

``--learnability`` trains a small stand-alone U-Net (plain cross-entropy,
no class weights) on simulated frames and scores it on frames of another
seed: it checks that the exact labels can be learned, independently of the
application's training settings (``bench_ccd.py`` checks those).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detector.thresholds import class_scores, label_frame, robust_level  # noqa: E402
from synthetic.ccd import CLASS_NAMES, CCDSettings, frame_rng, render_frame, run_simulate_ccd, simulate_frame  # noqa: E402


def bench_simulate(size: int, frames: int, repeats: int) -> float:
    settings = CCDSettings(size=size)
    rates = []
    for r in range(repeats):
        start = time.perf_counter()
        for i in range(frames):
            simulate_frame(frame_rng(r, i), settings)
        rates.append(frames / (time.perf_counter() - start))
    return float(np.median(rates))


def bench_run(size: int, count: int) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = run_simulate_ccd(Path(tmp) / "sim", settings=CCDSettings(count=count, size=size, seed=1))
        rate = count / (time.perf_counter() - start)
        megabytes = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6
    print(f"  files: {megabytes:.1f} MB for {count} frames")
    return rate, result.class_fractions


def bench_labeller(size: int, frames: int) -> None:
    settings = CCDSettings(size=size)
    truth, pred, seconds = [], [], 0.0
    for i in range(frames):
        f = render_frame(frame_rng(7, i), settings)
        start = time.perf_counter()
        mask, _ = label_frame(f.frame)
        seconds += time.perf_counter() - start
        truth.append(f.mask)
        pred.append(mask)
    print(f"threshold labeller on {frames} frames of {size} x {size} (seed 7): "
          f"{1e3 * seconds / frames:.1f} ms per frame")
    print_scores(class_scores(np.stack(truth), np.stack(pred)))


def print_scores(scores: dict) -> None:
    for name, s in scores.items():
        print(f"  {name:11s} precision {s['precision']:.3f}  recall {s['recall']:.3f}  F1 {s['f1']:.3f}")


def normalise(frame: np.ndarray) -> np.ndarray:
    """Frame in units of its own noise, bright values compressed (arcsinh)."""
    pedestal, sigma = robust_level(frame)
    return np.arcsinh((frame - pedestal) / sigma).astype(np.float32)


def learnability(train_frames: int, steps: int, crop: int, test_frames: int) -> None:
    import keras  # noqa: PLC0415 - heavy, only for this check
    from keras import layers  # noqa: PLC0415

    keras.utils.set_random_seed(0)
    settings = CCDSettings(size=256)
    data = [render_frame(frame_rng(100, i), settings) for i in range(train_frames)]
    x_all = np.stack([normalise(f.frame) for f in data])[..., None]
    y_all = np.stack([f.mask for f in data])
    rng = np.random.default_rng(0)

    def batches(batch: int):
        while True:
            idx = rng.integers(0, len(x_all), batch)
            oy, ox = rng.integers(0, 256 - crop + 1, (2, batch))
            xb = np.stack([x_all[i, y:y + crop, x:x + crop] for i, y, x in zip(idx, oy, ox)])
            yb = np.stack([y_all[i, y:y + crop, x:x + crop] for i, y, x in zip(idx, oy, ox)])
            k = int(rng.integers(4))
            yield np.rot90(xb, k, axes=(1, 2)).copy(), np.rot90(yb, k, axes=(1, 2)).copy()

    def block(x, n):
        for _ in range(2):
            x = layers.Conv2D(n, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.Activation("relu")(x)
        return x

    inputs = keras.Input((None, None, 1))
    skips, x = [], inputs
    for n in (16, 32, 64):
        x = block(x, n)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
    x = block(x, 128)
    for n, skip in zip((64, 32, 16), reversed(skips)):
        x = layers.Conv2DTranspose(n, 2, strides=2, padding="same")(x)
        x = block(layers.Concatenate()([x, skip]), n)
    outputs = layers.Conv2D(len(CLASS_NAMES), 1, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy")
    start = time.perf_counter()
    model.fit(batches(16), steps_per_epoch=steps, epochs=1, verbose=0)
    train_s = time.perf_counter() - start

    test = [render_frame(frame_rng(999, i), settings) for i in range(test_frames)]
    x_test = np.stack([normalise(f.frame) for f in test])[..., None]
    pred = np.concatenate([np.argmax(model.predict_on_batch(x_test[i:i + 8]), -1)
                           for i in range(0, len(x_test), 8)])
    print(f"small U-Net ({model.count_params()} parameters), {steps} steps of 16 crops of {crop} px "
          f"from {train_frames} frames (seed 100), {train_s:.0f} s; "
          f"scored on {test_frames} frames of seed 999:")
    print_scores(class_scores(np.stack([f.mask for f in test]), pred))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=200, help="frames per speed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--learnability", action="store_true")
    parser.add_argument("--steps", type=int, default=1500, help="training steps for --learnability")
    args = parser.parse_args()

    print(f"CPU cores available: {os.cpu_count()}; simulate_frame runs on one")
    rate = bench_simulate(args.size, args.frames, args.repeats)
    print(f"simulate_frame {args.size} x {args.size}: {rate:.0f} frames/s "
          f"(median of {args.repeats} runs of {args.frames} frames)")
    rate, fractions = bench_run(args.size, args.frames)
    print(f"run_simulate_ccd {args.size} x {args.size} with writing TIFF + PNG: {rate:.0f} frames/s")
    print("class pixel fractions: " + ", ".join(f"{k} {100 * v:.2f} %" for k, v in fractions.items()))
    bench_labeller(args.size, 100)
    if args.learnability:
        learnability(train_frames=400, steps=args.steps, crop=128, test_frames=40)


if __name__ == "__main__":
    main()
