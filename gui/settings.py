"""Remembering the user's fields and window geometry between runs.

Settings live in an INI file in the user's configuration folder
(``~/.config/SegLoop/SegLoop.ini`` on Linux). ``SEGLOOP_SETTINGS_DIR``
points them elsewhere, which tests and scripts use so that they never touch
a user's own settings.
"""

from __future__ import annotations

import os

from PyQt5.QtCore import QSettings

ORGANISATION = "SegLoop"
APPLICATION = "SegLoop"
SETTINGS_DIR_VARIABLE = "SEGLOOP_SETTINGS_DIR"


def app_settings() -> QSettings:
    """The application's QSettings (INI format, user scope)."""
    folder = os.environ.get(SETTINGS_DIR_VARIABLE)
    if folder:
        QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, folder)
    return QSettings(QSettings.IniFormat, QSettings.UserScope, ORGANISATION, APPLICATION)


def read_value(settings: QSettings, key: str, default, kind: type):
    """A stored value converted to ``kind``, or ``default`` when missing or
    unreadable (an INI file edited by hand must not stop the window opening)."""
    value = settings.value(key, None)
    if value is None or value == "":
        return default
    try:
        if kind is bool:
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        return kind(value)
    except (TypeError, ValueError):
        return default


def save_window(window, settings: QSettings) -> None:
    """Store the window's fields, geometry, panel sizes and open tab."""
    window.controls.save(settings)
    settings.setValue("window/geometry", window.saveGeometry())
    settings.setValue("window/split", window.split.saveState())
    settings.setValue("window/right", window.right.saveState())
    settings.setValue("window/tab", window.tabs.currentIndex())
    settings.sync()


def restore_window(window, settings: QSettings) -> None:
    """Bring back what :func:`save_window` stored (a first launch: 1400 x 900)."""
    geometry = settings.value("window/geometry")
    if geometry is not None:
        window.restoreGeometry(geometry)
    else:
        window.resize(1400, 900)
    for key, splitter in (("window/split", window.split), ("window/right", window.right)):
        state = settings.value(key)
        if state is not None:
            splitter.restoreState(state)
    window.tabs.setCurrentIndex(read_value(settings, "window/tab", 0, int))
