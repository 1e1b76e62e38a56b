"""Opening the desktop application (``python app.py [--workdir DIR]``).

Only Qt and numpy load here; scipy loads with the first review and
TensorFlow inside the training and segmentation workers, so the window
opens in well under two seconds.
"""

from __future__ import annotations

import sys

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QApplication

from gui.settings import APPLICATION, ORGANISATION


def create_application(argv: list[str] | None = None) -> QApplication:
    """The running QApplication, created if needed."""
    app = QApplication.instance()
    if app is None:
        QApplication.setAttribute(Qt.AA_EnableHighDpiScaling, True)
        QApplication.setAttribute(Qt.AA_UseHighDpiPixmaps, True)
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    return app


def no_display_reason() -> str | None:
    """Why the window cannot open here (a Linux machine with no desktop
    session, e.g. over ssh), or None when it can."""
    import os

    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    from pathlib import Path

    command = "segloop" if Path(sys.argv[0]).name == "segloop" else "python app.py"
    return ("no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set). "
            f"Open it from a desktop session, or under a virtual screen: xvfb-run {command}; "
            f"every stage also runs from the command line: {command} --help")


def main(workdir: str | None = None) -> int:
    """Open the main window (on ``workdir`` if given) and run until it closes.

    Returns the application's exit status (0 on a normal close, 2 when
    there is no display to open it on).
    """
    reason = no_display_reason()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    app = create_application()
    from gui.main_window import MainWindow

    window = MainWindow(workdir=workdir)
    window.show()
    return int(app.exec_())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else None))
