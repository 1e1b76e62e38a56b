"""Walk the whole loop in the real window, the way the README tells a new user.

    python scripts/walk_loop.py [--epochs N] [--out DIR] [--keep DIR]

Copies the bundled sample working directory into a fresh folder, opens the
real main window on it (under Xvfb when it is installed and no display is
set), with fresh settings, so every field is as on a first launch; then
presses the buttons in order with real mouse clicks: Auto-segment photos,
Create synthetic data, Train, Segment, Fill background (a click on the
background), Pick objects (two clicks), Save picked to pool, Undo, Improve
model, Segment all photos, Scale. After each step it prints how long it
took, what the progress bar and the status line said, and every message
box, and saves a screenshot of the window (``<out>/walk_NN_<step>.png``).

``--epochs`` is the only field it may change (default: as the window shows).
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
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from screenshot import settle, start_display, wait  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the window's value)")
    parser.add_argument("--out", default=str(ROOT / "out" / "walk"), help="folder for the screenshots")
    parser.add_argument("--keep", default=None, help="working directory to use (default: a temporary one)")
    args = parser.parse_args()
    server = start_display()
    tmp = Path(tempfile.mkdtemp(prefix="segloop_walk_"))
    try:
        return walk(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if server is not None:
            server.terminate()


def walk(args, tmp: Path) -> int:
    os.environ["SEGLOOP_SETTINGS_DIR"] = str(tmp / "settings")  # a first launch
    from PyQt5.QtCore import Qt
    from PyQt5.QtTest import QTest
    from PyQt5.QtWidgets import QMessageBox

    from gui.controls import AUTOSEG, REFINE, SEGMENT, SEGMENT_ALL, SYNTHESIZE, TRAIN
    from gui.main import create_application

    app = create_application()
    boxes: list[str] = []
    for kind in ("information", "warning", "critical"):
        setattr(QMessageBox, kind, staticmethod(
            lambda _p, _t, text, *a, _k=kind, **k: boxes.append(f"{_k}: {text}") or QMessageBox.Ok))
    from gui.main_window import MainWindow

    workdir = Path(args.keep) if args.keep else tmp / "working_directory"
    shutil.copytree(ROOT / "working_directory" / "photos", workdir / "photos")
    window = MainWindow(workdir=str(workdir))
    window.show()
    settle(app, 1.0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    c = window.controls
    print(f"platform {app.platformName()}, window {window.width()}x{window.height()}")
    print(f"fields on first launch: photos {c.photos.text()}, model {c.model.text()}, photo {c.photo.text()}, "
          f"images {c.count.value()} x {c.size.value()} px, epochs {c.epochs.value()}, rounds {c.rounds.value()}")
    if args.epochs is not None:
        c.epochs.setValue(args.epochs)
    step = [0]

    def report(name: str, seconds: float) -> None:
        step[0] += 1
        settle(app, 0.5)
        window.grab().save(str(out / f"walk_{step[0]:02d}_{name.replace(' ', '_')}.png"))
        print(f"{step[0]:2d}. {name:<22} {seconds:7.1f} s | bar: {window.progress.text_shown()} | "
              f"status: {window.review.status.text()[:110] if window.tabs.currentWidget() is window.review else ''}")
        last = [line for line in window.log_view.toPlainText().splitlines() if line.strip()][-2:]
        for line in last:
            print(f"      log: {line[:150]}")
        while boxes:
            print(f"      MESSAGE BOX {boxes.pop(0)}")

    def press(name: str, button) -> None:
        t0 = time.monotonic()
        QTest.mouseClick(button, Qt.LeftButton)
        settle(app, 0.2)
        wait(window, app, 7200)
        report(name, time.monotonic() - t0)

    def click_pixel(row: int, col: int) -> None:
        view = window.review.view
        QTest.mouseClick(view.viewport(), Qt.LeftButton, pos=view.viewport_pos_of(int(row), int(col)))
        settle(app, 0.2)

    press("auto-segment", c.buttons[AUTOSEG])
    press("synthesize", c.buttons[SYNTHESIZE])
    press("train", c.buttons[TRAIN])
    press("segment", c.buttons[SEGMENT])
    review, session = window.review, window.review.session
    if session is None:
        print("no review opened", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    QTest.mouseClick(review.fill_button, Qt.LeftButton)
    background = np.argwhere(session.class_mask == 0)
    click_pixel(*background[len(background) // 2])
    report("fill background", time.monotonic() - t0)
    t0 = time.monotonic()
    QTest.mouseClick(review.pick_button, Qt.LeftButton)
    sizes = sorted(((int((session.labels == i).sum()), i) for i in range(1, session.object_count + 1)),
                   reverse=True)
    for _, oid in sizes[:2]:
        r, k, patch = session.object_patch(oid)
        rr, kk = np.argwhere(patch)[len(np.argwhere(patch)) // 2]
        click_pixel(r + rr, k + kk)
    report("pick two objects", time.monotonic() - t0)
    press("save picked", review.save_button)
    t0 = time.monotonic()
    window.undo_action.trigger()
    report("undo (Ctrl+Z)", time.monotonic() - t0)
    press("improve model", c.buttons[REFINE])
    press("segment all photos", c.buttons[SEGMENT_ALL])
    t0 = time.monotonic()
    c.calibration.size.setText("0.5")
    c.calibration.unit.setCurrentText("µm")
    QTest.mouseClick(c.calibration.set_button, Qt.LeftButton)
    report("scale 0.5 µm", time.monotonic() - t0)
    press("segment all again", c.buttons[SEGMENT_ALL])
    window.tabs.setCurrentWidget(window.results)
    report("results tab", 0.0)
    print(f"screenshots in {out}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
