"""Small shared helpers for tests."""

import subprocess
import sys

import numpy as np

from conftest import ROOT


def run_app(*args, timeout=300, cwd=None):
    """Run ``python app.py ARGS`` and return the CompletedProcess."""
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT)


def match_count(pred_labels: np.ndarray, true_labels: np.ndarray, ids=None, thresh: float = 0.5) -> int:
    """How many predicted objects (``ids``, default all) match a true object at IoU >= thresh."""
    ids = np.unique(pred_labels[pred_labels > 0]) if ids is None else ids
    hits = 0
    for i in ids:
        m = pred_labels == i
        under = true_labels[m]
        under = under[under > 0]
        if under.size == 0:
            continue
        t = true_labels == np.bincount(under).argmax()
        if (m & t).sum() / (m | t).sum() >= thresh:
            hits += 1
    return hits


def tiny_training(epochs=6, seed=0):
    """Training settings small enough for tests: a depth-2 U-Net on 64-pixel patches."""
    from training.train import TrainSettings

    return TrainSettings(epochs=epochs, batch_size=4, patch_size=64, depth=2, base_filters=8,
                         preset="cpu", seed=seed, patience=50, tile_size=128)
