"""Time from process start to the main window shown (target: under 2 s).

    python benchmarks/bench_gui_startup.py [--runs 5] [--workdir DIR]

Each run starts a fresh ``python app.py --workdir DIR`` (the real entry
point) in a child process whose event loop, once the window is shown and
the first events are processed, prints a marker and quits. The time is
measured by this process, from just before starting the child to reading
the marker: interpreter start-up and imports included. Uses the offscreen
Qt platform unless a display is set. Also prints which heavy modules were
loaded by then (TensorFlow must not be).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, runpy
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication

_exec = QApplication.exec_

def exec_and_report(self=None):
    app = QApplication.instance()
    def shown():
        windows = [w for w in app.topLevelWidgets() if w.isVisible()]
        heavy = sorted(m for m in ("tensorflow", "keras", "scipy", "matplotlib", "skimage") if m in sys.modules)
        print("SHOWN", len(windows), ",".join(heavy) or "-", flush=True)
        app.quit()
    QTimer.singleShot(0, shown)
    return _exec()

QApplication.exec_ = exec_and_report
sys.argv = ["app.py", "--workdir", sys.argv[1]]
sys.path.insert(0, ".")
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def one_run(workdir: str, settings: str) -> tuple[float, str]:
    env = dict(os.environ, SEGLOOP_SETTINGS_DIR=settings)
    if not env.get("DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, workdir], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = ""
    for line in proc.stdout:
        if line.startswith("SHOWN"):
            break
    elapsed = time.perf_counter() - t0
    _, errors = proc.communicate(timeout=30)
    if not line.startswith("SHOWN"):
        raise SystemExit(f"the window did not open (exit status {proc.returncode}):\n{errors[-2000:]}")
    return elapsed, line.split()[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", default=None, help="working directory to open (default: a new temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or str(Path(tmp) / "wd")
        times, heavy = [], "-"
        for i in range(args.runs):
            seconds, heavy = one_run(workdir, str(Path(tmp) / "settings"))
            times.append(seconds)
            print(f"run {i + 1}: window shown after {seconds:.2f} s")
    print(f"startup: median {statistics.median(times):.2f} s, max {max(times):.2f} s over {len(times)} runs "
          f"(target < 2 s); heavy modules loaded at start-up: {heavy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
