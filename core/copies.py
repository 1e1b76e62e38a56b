"""Copies of folders as they are, and their removal, for the staged copies
of :mod:`core.transaction`: files hard-linked (a file of the application is
never changed in place, so a link is never changed through its copy),
symbolic links kept as links, and a folder removed whole even where it
holds a read-only folder."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def clone(source: Path, target: Path, leave_out: Callable[[str], bool], *, top: bool = True) -> None:
    """Copy ``source`` (file or folder) to ``target`` as it is: files
    hard-linked, symbolic links as links (never followed, so a link to the
    folder itself or to another disk stays a link), hidden files kept, the
    folders within it with their permissions and times; only the names
    ``leave_out`` picks (the application's own leftovers) are left out."""
    if source.is_symlink():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.readlink(source), target)
        return
    if source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        for entry in os.scandir(source):
            if not leave_out(entry.name):
                clone(Path(entry.path), target / entry.name, leave_out, top=False)
        if not top:  # the staged folder itself stays writable: the stage writes there
            with contextlib.suppress(OSError):
                shutil.copystat(source, target, follow_symlinks=False)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        if source.is_file():  # not a pipe or a device, which would block or never end
            shutil.copy2(source, target, follow_symlinks=False)


def _writable_and_again(function, path, _exc_info) -> None:
    """rmtree's error handler: a read-only folder (a user's, inside a folder
    being replaced) is made writable and the removal tried once more."""
    with contextlib.suppress(OSError):
        for folder in (os.path.dirname(path), path):
            if os.path.isdir(folder) and not os.path.islink(folder):
                os.chmod(folder, os.stat(folder).st_mode | 0o700)
        if function is os.rmdir or function is os.unlink:
            function(path)
        elif os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)


def remove(path: Path) -> None:
    """Remove a file, a link (never what it points to) or a folder with all it holds."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, onerror=_writable_and_again)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
