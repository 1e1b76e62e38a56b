"""Atomic file writes: a cancelled or crashed stage never leaves a
half-written file behind, because every file is written under a temporary
name in the same folder and renamed into place only when complete."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

# The temporary names this application writes under: ``.<stem>.<8 random>.part<suffix>``
# (atomic_path) and ``.<name>.part-<8 hex>`` (a file or folder being linked or
# made). Nothing else is ever taken for a leftover, so a user's own hidden
# files (``.thesis.partial.txt``) are never removed or left out of a copy.
_PARTIAL = re.compile(r"^\..+\.(?:[a-z0-9_]{8}\.part(?:\.[^.]+)?|part-[0-9a-f]{8})$")


def is_partial(name: str) -> bool:
    """Whether ``name`` is a temporary name of this application's writers."""
    return _PARTIAL.match(name) is not None


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True):
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    With ``overwrite=False`` an existing ``path`` is never replaced: the
    rename is done with a hard link, which fails if the name was taken
    meanwhile, so two writers cannot both win.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results should be as readable as any file
    try:
        yield tmp
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # raises FileExistsError if taken meanwhile
            tmp.unlink()
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def remove_stale_parts(folder: str | os.PathLike, *, older_than_s: float = 3600.0) -> int:
    """Remove temporary files (``.name.XXXX.part.ext``) left in ``folder`` by a
    writer that was killed; only ones untouched for ``older_than_s`` seconds,
    so a file being written right now is never removed. Returns how many."""
    import time

    folder = Path(folder)
    removed = 0
    if not folder.is_dir():
        return 0
    for path in folder.glob(".*"):
        if not is_partial(path.name):
            continue
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink() and time.time() - path.stat().st_mtime > older_than_s:
                path.unlink()
                removed += 1
    return removed


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
