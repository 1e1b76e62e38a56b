"""Does the window stay responsive while stages run? (target: no gap over 100 ms)

    python benchmarks/bench_gui_responsiveness.py [--quick] [--work DIR]

Opens the real main window (offscreen unless a display is set), starts
each stage from its button with small real data, and samples a 20 ms QTimer
on the GUI thread meanwhile. A gap between two ticks is time the event loop
could not answer the user. Prints, per stage: its duration, the number of
ticks, the median, p99 and largest gap. Also times the clicks of the review
(fill, pick) on a photo-sized mask, which run on the GUI thread, and
loading a pool of 2000 thumbnails.
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


class GapMeter:
    """Records the times a 20 ms timer fires on the GUI thread."""

    def __init__(self, interval_ms: int = 20) -> None:
        from PyQt5.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self.ticks: list[float] = []

    def __enter__(self):
        self.ticks = [time.perf_counter()]
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.stop()
        self.ticks.append(time.perf_counter())

    def report(self, label: str) -> str:
        gaps = np.diff(self.ticks) * 1000
        return (f"{label:<34} {self.ticks[-1] - self.ticks[0]:7.1f} s  {len(gaps):6d} ticks  "
                f"median {np.median(gaps):5.1f} ms  p99 {np.percentile(gaps, 99):6.1f} ms  "
                f"largest {gaps.max():6.1f} ms")


def wait_for_stage(window, timeout: float = 1800) -> None:
    from PyQt5.QtCore import QEventLoop, QTimer

    if not window.runner.running:
        return
    loop = QEventLoop()
    window.runner.stopped.connect(loop.quit)
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    loop.exec_()


def press(window, stage: str, label: str, results: list[str]) -> bool:
    with GapMeter() as meter:
        started = window.start_stage(stage)
        wait_for_stage(window)
    if not started or "not available" in window.progress.text_shown() or "stopped" in window.progress.text_shown():
        results.append(f"{label:<34} did not run: {window.messages[-1] if window.messages else '?'}")
        return False
    results.append(meter.report(label))
    return True


def photos(folder: Path, count: int, shape: tuple[int, int]) -> Path:
    from core.imageio import write_image
    from synthetic.scenes import render_particle_scene

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, _ = render_particle_scene(shape, count=25, polarity="dark", seed=i)
        write_image(folder / f"photo_{i:02d}.png", image)
    return folder


def review_clicks(results: list[str]) -> None:
    """Fill and pick clicks on a 2592 x 2048 photo with 400 outlined objects."""
    from gui.review import FILL, PICK, ReviewSession

    h, w = 2048, 2592
    mask = np.zeros((h, w), np.uint8)
    rng = np.random.default_rng(0)
    for r, c in rng.integers(40, [h - 60, w - 60], size=(400, 2)):
        mask[r:r + 30, c:c + 30] = 1
        mask[r + 2:r + 28, c + 2:c + 28] = 0  # outlines only: every one is a closed contour
    session = ReviewSession(np.zeros((h, w), np.uint8), mask)
    t = time.perf_counter()
    session.prepare_fill()  # in the worker that loads the review, as the window does
    prepare_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    outcome = session.click(0, 0, FILL)
    fill_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    oid = next(i for i in range(1, 400) if session.object_patch(i) is not None)
    r, c, _ = session.object_patch(oid)
    session.click(r + 15, c + 15, PICK)
    pick_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    session.undo()
    session.undo()
    undo_ms = (time.perf_counter() - t) * 1000
    results.append(f"{'review on 2592x2048, 400 contours':<34} fill click {fill_ms:.0f} ms "
                   f"({outcome.message.split('(')[0].strip()}), pick click {pick_ms:.1f} ms, "
                   f"two undos {undo_ms:.0f} ms (computation; {prepare_ms:.0f} ms beforehand in the worker)")

    # The same clicks through the Review tab: computation plus redrawing the overlay.
    from PyQt5.QtWidgets import QApplication

    from gui.review_panel import ReviewPanel

    panel = ReviewPanel()
    panel.resize(1000, 700)
    panel.show()
    session = ReviewSession(np.zeros((h, w), np.uint8), mask)
    session.prepare_fill()
    panel.set_session(session)
    QApplication.processEvents()
    t = time.perf_counter()
    panel._clicked(0, 0, None)
    QApplication.processEvents()
    fill_ms = (time.perf_counter() - t) * 1000
    panel.set_tool(PICK)
    t = time.perf_counter()
    panel._clicked(r + 15, c + 15, None)
    QApplication.processEvents()
    pick_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    panel.undo()
    panel.undo()
    QApplication.processEvents()
    undo_ms = (time.perf_counter() - t) * 1000
    results.append(f"{'  same, through the Review tab':<34} fill click {fill_ms:.0f} ms, pick click "
                   f"{pick_ms:.1f} ms, two undos {undo_ms:.0f} ms (with redrawing)")
    panel.close()


def pool_loading(window, work: Path, results: list[str]) -> None:
    from PyQt5.QtWidgets import QApplication

    from segmentation.pool import add_objects

    n = 2000
    image = np.full((40, 40 * n), 200, np.uint8)
    labels = np.zeros(image.shape, np.int32)
    for i in range(n):
        labels[8:32, 40 * i + 8:40 * i + 32] = i + 1
    image[labels > 0] = 50
    pool_wd = work / "pool_wd"
    add_objects(pool_wd, image, labels, range(1, n + 1), source_image="p.png", margin=2)
    window.tabs.setCurrentWidget(window.pool)
    window.pool.set_mode("pool")
    with GapMeter() as meter:
        t = time.perf_counter()
        window.pool.set_workdir(pool_wd)
        QApplication.processEvents()
        refresh_ms = (time.perf_counter() - t) * 1000
        end = time.perf_counter() + 3
        while time.perf_counter() < end:
            QApplication.processEvents()
            time.sleep(0.005)
    results.append(meter.report(f"pool of {n}: list {refresh_ms:.0f} ms, load"))
    results.append(f"{'':<34} thumbnails loaded for the visible part: {window.pool.model.requested} of {n}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller stages (a few seconds each)")
    parser.add_argument("--work", default=None, help="folder for the data (default: temporary, removed)")
    args = parser.parse_args()

    from PyQt5.QtWidgets import QDialog, QMessageBox

    from gui import dialogs
    from gui.controls import AUTOSEG, SEGMENT, SYNTHESIZE, TRAIN
    from gui.main import create_application

    work = Path(args.work or tempfile.mkdtemp(prefix="segloop_bench_gui_"))
    os.environ["SEGLOOP_SETTINGS_DIR"] = str(work / "settings")
    app = create_application()
    for kind in ("information", "warning", "critical"):
        setattr(QMessageBox, kind, staticmethod(lambda *a, **k: QMessageBox.Ok))
    dialogs.DataclassDialog.exec_ = lambda self: QDialog.Accepted

    from gui.main_window import MainWindow

    if (work / "wd").exists():
        shutil.rmtree(work / "wd")
    window = MainWindow(workdir=str(work / "wd"))
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    c = window.controls
    results: list[str] = []
    quick = args.quick

    c.photos.set_text(str(photos(work / "photos", 3 if quick else 8, (512, 640))))
    c.model.set_text(str(work / "model"))
    press(window, AUTOSEG, "auto-segment", results)
    c.count.setValue(10 if quick else 60)
    c.size.setValue(128 if quick else 256)
    press(window, SYNTHESIZE, "create synthetic data", results)

    c.source_ccd.setChecked(True)
    c.count.setValue(20 if quick else 100)
    c.size.setValue(128 if quick else 256)
    press(window, SYNTHESIZE, "simulate CCD frames", results)
    c.epochs.setValue(1 if quick else 2)
    c.batch.setValue(4)
    c.size.setValue(64 if quick else 128)
    shutil.rmtree(work / "model", ignore_errors=True)
    trained = press(window, TRAIN, "train (incl. TensorFlow import)", results)
    if trained:
        frames = sorted((c.training_data_dir() / "images").iterdir())
        c.photo.set_text(str(frames[0]))
        press(window, SEGMENT, "segment one frame + open review", results)

    review_clicks(results)
    pool_loading(window, work, results)

    window.close()
    print("\nGUI responsiveness (20 ms timer on the GUI thread; target: largest gap < 100 ms)")
    for line in results:
        print(line)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
