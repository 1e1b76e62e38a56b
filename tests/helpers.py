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
    from training import TrainSettings

    return TrainSettings(epochs=epochs, batch_size=4, patch_size=64, depth=2, base_filters=8,
                         preset="cpu", seed=seed, patience=50, tile_size=128)


def open_window(qtbot, workdir):
    """The main window on ``workdir``, shown and exposed."""
    from gui.main_window import MainWindow

    window = MainWindow(workdir=str(workdir))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def record_message_boxes(monkeypatch, settings_dir) -> list[tuple[str, str]]:
    """Settings in ``settings_dir`` (a first launch) and every information,
    warning or critical message box recorded as (kind, text) and answered OK."""
    from PyQt5.QtWidgets import QMessageBox

    from gui.settings import SETTINGS_DIR_VARIABLE

    monkeypatch.setenv(SETTINGS_DIR_VARIABLE, str(settings_dir))
    shown = []
    for kind in ("information", "warning", "critical"):
        def show(parent, title, text, *args, _kind=kind, **kwargs):
            shown.append((_kind, text))
            return QMessageBox.Ok
        monkeypatch.setattr(QMessageBox, kind, staticmethod(show))
    return shown


def tree_digest(folder) -> dict:
    """Every file under ``folder`` (hidden ones included) -> its SHA-256: two
    equal digests mean nothing was added, removed or changed."""
    import hashlib
    from pathlib import Path

    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def segment_or_die(task):
    """Segment a photo as a worker does, except that the worker process
    dies on the photo b2 (as one killed for lack of memory would)."""
    import os

    if task.stem == "b2":
        os._exit(1)
    from inference.worker import segment_one

    return segment_one(task)


def exact_tree(*folders) -> dict:
    """Everything under ``folders`` as it is on disk, links not followed:
    each file -> its SHA-256, each symbolic link -> where it points, each
    folder -> 'dir'. Two equal results mean nothing was added, removed,
    changed or turned from a link into a copy."""
    import hashlib
    import os

    out = {}
    for folder in folders:
        folder = str(folder)
        if not os.path.lexists(folder):
            continue
        if os.path.islink(folder) or not os.path.isdir(folder):  # a link or a file given itself
            out[folder] = ("link -> " + os.readlink(folder) if os.path.islink(folder)
                           else hashlib.sha256(open(folder, "rb").read()).hexdigest())
            continue
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    out[path] = "link -> " + os.readlink(path)
                elif os.path.isdir(path):
                    out[path] = "dir"
                else:
                    with open(path, "rb") as fh:
                        out[path] = hashlib.sha256(fh.read()).hexdigest()
    return out
