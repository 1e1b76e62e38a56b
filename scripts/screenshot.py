"""Screenshots of the real window in the middle of a review.

    python scripts/screenshot.py [--photos DIR] [--workdir DIR] [--model DIR] [--out DIR]

Runs the application's main window (under Xvfb when it is installed and no
display is set, otherwise offscreen), drives it like a user: auto-segments
the photos into the pool, opens one photo's segmentation for review
(segmented by the model when the model folder holds one and the Segment
stage is available, otherwise by the classical auto-segmentation), fills
the closed contours, picks a few objects, then starts a long stage so the
progress bar is caught mid-run, and saves one PNG per tab with
``QWidget.grab()``: window_review.png, window_training.png, window_pool.png,
window_results.png (the names the README shows).

Without --photos, sample photos of particles are rendered into a temporary
folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def start_display() -> subprocess.Popen | None:
    """An Xvfb display for the real xcb window, if none is set."""
    if os.environ.get("DISPLAY") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if shutil.which("Xvfb") is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return None
    for number in range(91, 99):
        if not Path(f"/tmp/.X{number}-lock").exists():
            break
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    os.environ["DISPLAY"] = f":{number}"
    return server


def wait(window, app, seconds: float = 600) -> None:
    end = time.monotonic() + seconds
    while window.runner.running and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()


def settle(app, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def sample_photos(folder: Path) -> Path:
    from core.imageio import write_image
    from synthetic.scenes import render_particle_scene

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        image, _ = render_particle_scene((600, 800), count=30, polarity="dark", seed=10 + i)
        write_image(folder / f"particles_{i}.png", image)
    return folder


def classical_segmentation(photo: Path, out: Path) -> None:
    """What the review shows when no model is at hand: the auto-segmentation,
    drawn as outlines where objects are large, so there is something to fill."""
    import tifffile

    from core.imageio import read_image, write_image
    from segmentation.autoseg import find_objects

    found = find_objects(read_image(photo))
    classes = (found.labels > 0).astype(np.uint8)
    write_image(out / f"{photo.stem}_mask.png", classes)
    tifffile.imwrite(out / f"{photo.stem}_labels.tif", found.labels.astype(np.int32))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", help="folder of photos (default: rendered samples)")
    parser.add_argument("--workdir", help="working directory (default: a temporary one)")
    parser.add_argument("--model", help="model folder for the Segment stage")
    parser.add_argument("--out", default=str(ROOT / "out" / "screenshots"), help="folder for the PNGs")
    parser.add_argument("--size", default="1400x900", help="window size WxH")
    args = parser.parse_args()

    server = start_display()
    tmp = Path(tempfile.mkdtemp(prefix="segloop_shot_"))
    try:
        return shoot(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if server is not None:
            server.terminate()


def shoot(args, tmp: Path) -> int:
    os.environ["SEGLOOP_SETTINGS_DIR"] = str(tmp / "settings")
    from PyQt5.QtCore import Qt
    from PyQt5.QtWidgets import QDialog, QMessageBox

    from gui import dialogs
    from gui.controls import AUTOSEG, SEGMENT, SYNTHESIZE
    from gui.main import create_application
    from gui.review import FILL, PICK

    app = create_application()
    for kind in ("information", "warning", "critical"):
        setattr(QMessageBox, kind, staticmethod(lambda _p, _t, text, *a, **k: print("message:", text)))
    dialogs.DataclassDialog.exec_ = lambda self: QDialog.Accepted
    from gui.main_window import MainWindow

    photos = Path(args.photos) if args.photos else sample_photos(tmp / "photos")
    workdir = Path(args.workdir) if args.workdir else tmp / "wd"
    window = MainWindow(workdir=str(workdir))
    w, h = (int(v) for v in args.size.split("x"))
    window.resize(w, h)
    window.show()
    settle(app)
    c = window.controls
    c.photos.set_text(str(photos))
    from core.imageio import list_images

    photo = list_images(photos)[0]
    c.photo.set_text(str(photo))
    if args.model:
        c.model.set_text(args.model)
        window.training.load_history(Path(args.model) / "history.csv")

    window.start_stage(AUTOSEG)
    wait(window, app)
    used_model = False
    if args.model and (Path(args.model) / "model.keras").is_file():
        window.start_stage(SEGMENT)
        wait(window, app)
        used_model = window.review.session is not None
    if not used_model:
        out = workdir / "segmented"
        out.mkdir(parents=True, exist_ok=True)
        classical_segmentation(photo, out)
        if not args.model:
            c.model.set_text(str(tmp))
        window.open_review()
        wait(window, app)
    review = window.review
    session = review.session
    if session is None:
        print("no review could be opened", file=sys.stderr)
        return 1
    window.tabs.setCurrentWidget(review)
    settle(app)

    # A user's clicks: fill from the open background, then pick three objects.
    view = review.view
    review.set_tool(FILL)
    background = np.argwhere(session.class_mask == 0)
    r, col = background[len(background) // 3]
    from PyQt5.QtTest import QTest

    QTest.mouseClick(view.viewport(), Qt.LeftButton, pos=view.viewport_pos_of(int(r), int(col)))
    review.set_tool(PICK)
    picked = 0
    for oid in range(1, session.object_count + 1):
        patch = session.object_patch(oid)
        if patch is None or patch[2].sum() < 50 or picked >= 3:
            continue
        pr, pc = np.argwhere(patch[2])[len(np.argwhere(patch[2])) // 2]
        QTest.mouseClick(view.viewport(), Qt.LeftButton, pos=view.viewport_pos_of(patch[0] + pr, patch[1] + pc))
        picked += 1
    settle(app)

    # A long stage, caught mid-run for the progress bar.
    c.source_ccd.setChecked(True)
    c.count.setValue(5000)
    c.size.setValue(256)
    window.start_stage(SYNTHESIZE)
    end = time.monotonic() + 20
    while time.monotonic() < end and not (window.progress.value() > 20 and "ETA" in window.progress.text_shown()):
        app.processEvents()
        time.sleep(0.02)
    window.tabs.setCurrentWidget(review)
    settle(app, 0.3)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    shots = {"review": review, "training": window.training, "pool": window.pool, "results": window.results}
    for name, tab in shots.items():
        window.tabs.setCurrentWidget(tab)
        settle(app, 0.8 if name == "pool" else 0.3)
        window.grab().save(str(out_dir / f"window_{name}.png"))
    window.cancel_stage()
    wait(window, app)
    print(f"review of {photo.name} ({'model' if used_model else 'classical auto-segmentation'}), "
          f"{session.object_count} objects, {len(session.selected)} picked; "
          f"platform {app.platformName()}; screenshots in {out_dir}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
