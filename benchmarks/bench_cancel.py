"""How long does Cancel take while the window trains? (target: under 2 s)

    python benchmarks/bench_cancel.py [--repeats 3]

Opens the real main window (offscreen unless a display is set) on a copy of
the bundled sample working directory, auto-segments and synthesizes with
the fields as they come, then starts Train (from the bundled model, default
batch and image size) and presses Cancel at a random moment after the first
training batch: inside a batch, between batches or in validation. Prints,
for each press, where training was and the seconds from the press until
the window is ready again, then the same for Improve model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="segloop_cancel_"))
    os.environ["SEGLOOP_SETTINGS_DIR"] = str(tmp / "settings")
    from PyQt5.QtWidgets import QApplication

    from gui.controls import AUTOSEG, REFINE, SYNTHESIZE, TRAIN
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    shutil.copytree(ROOT / "working_directory" / "photos", tmp / "wd" / "photos")
    window = MainWindow(workdir=str(tmp / "wd"))
    window.show()

    def run_until_stopped(seconds=3600):
        end = time.monotonic() + seconds
        while window.runner.running and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)

    for stage in (AUTOSEG, SYNTHESIZE):
        window.start_stage(stage)
        run_until_stopped()
    rng = np.random.default_rng(0)
    for stage, label in ((TRAIN, "Train"), (REFINE, "Improve model")):
        for i in range(args.repeats):
            window.start_stage(stage)
            while window.runner.running and "batch 2/" not in window.progress.text_shown():
                app.processEvents()
                time.sleep(0.005)
            wait = float(rng.uniform(0.0, 4.0))
            end = time.monotonic() + wait
            while time.monotonic() < end:
                app.processEvents()
                time.sleep(0.005)
            where = window.progress.text_shown()
            t0 = time.perf_counter()
            window.cancel_stage()
            run_until_stopped(600)
            print(f"{label:<14} press {i + 1}: {time.perf_counter() - t0:5.2f} s from Cancel to ready "
                  f"(pressed {wait:.1f} s after batch 2 began; bar said: {where[:90]})", flush=True)
    window.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
