"""All-or-nothing stages: a stage works on a staged copy of what it
changes, and the copy replaces the originals only when the stage completes.

A cancelled, failed or killed stage therefore leaves the working directory
(and the model or results folder) exactly as it was::

    with Transaction(workdir) as tx:
        staged = tx.stage(workdir / "objects")       # a copy to work on
        ... write into staged ...
        if not cancelled:
            tx.commit()                               # swap the copies in
    # leaving the block without commit() throws the copies away

Copies are made with hard links where the file system allows (every file of
the application is written under a temporary name and renamed into place,
never changed in place, so a linked file is never modified through its
copy) and by copying otherwise. Parts under the transaction's folder are
staged in ``<folder>/.staging-<id>/``; other parts (a model folder elsewhere)
in a hidden sibling folder of their own.

The swap is a handful of renames. It is written down first in
``journal.json``, so a swap cut short by a crash or a kill is finished by
the next transaction on the same folder (:func:`recover`); a staging area
without a journal is the leftover of a stage that never completed and is
removed.

A transaction opened inside a staged copy (a stage calling another stage)
works on that copy directly: the outer transaction decides.

A staging area also locks what it stages: a second stage that would change
the same files or folders while the first runs (another window, a command
in a terminal) is refused with one message naming the process that holds
them, before it has changed anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from core.atomic import is_partial, write_json_atomic
from core.copies import clone, remove
from core.errors import UserInputError
from core.overlap import refuse_current_folder, refuse_overlap

STAGING_PREFIX = ".staging-"
MARKER = ".staged-copy"  # in a staged folder: transactions inside it are the outer one's business
JOURNAL = "journal.json"
EXTERNAL = "external.json"  # staged copies of parts outside the home folder
OWNER = "owner.json"  # the process working in a staging area
CLAIMS = "claims.json"  # the real paths a staging area is changing (the lock)
_LIVE: set[str] = set()  # staging areas of transactions open in this process


_AREA_NAME = re.compile(r"^\.staging-[0-9a-f]{12}$")
_EXTERNAL_NAME = re.compile(r"^\..+\.staging-[0-9a-f]{12}(?:\.old)?$")


def _leftover(name: str) -> bool:
    """Names only this application makes and never keeps: half-written files,
    staging areas and the staged copies of parts outside their home."""
    return is_partial(name) or _AREA_NAME.match(name) is not None or _EXTERNAL_NAME.match(name) is not None


def _areas(folder: Path) -> list[Path]:
    """The staging areas in ``folder`` (folders named as this module names
    them; a user's own ``.staging-notes`` is none of them)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    return [Path(e.path) for e in entries if _AREA_NAME.match(e.name) and e.is_dir(follow_symlinks=False)]


def _inside_staged_copy(path: Path) -> bool:
    return any((p / MARKER).exists() for p in [path, *path.parents])


class Transaction:
    """Staged copies of some files and folders, swapped in by :meth:`commit`."""

    def __init__(self, home: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = ()) -> None:
        self.home = Path(home)
        self.inputs = [i for i in inputs if i is not None]
        self.passthrough = _inside_staged_copy(self.home)
        self.area = self.home / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
        self.parts: list[tuple[Path, Path]] = []  # (staged, real)
        self.external: list[str] = []  # staged copies outside the area
        self.claimed: list[Path] = []  # the real paths this stage changes (see _claim)
        self.committed = False

    @property
    def root(self) -> Path:
        """The folder that stands for ``home`` while the stage runs: parts
        staged from ``home`` sit here at the same relative paths."""
        return self.home if self.passthrough else self.area

    # -- context -------------------------------------------------------------
    def __enter__(self) -> Transaction:
        if not self.passthrough:
            recover(self.home)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if isinstance(exc, UserInputError) and not self.passthrough and exc.args:
            # The user knows the real places, not the staged copies.
            exc.args = (self._real_text(str(exc.args[0])), *exc.args[1:])
        elif isinstance(exc, OSError) and not self.passthrough and isinstance(exc.filename, str):
            exc.filename = self._real_text(exc.filename)
        if self.committed or self.passthrough:
            return
        if (self.area / JOURNAL).is_file():
            # The swap began and was interrupted: it is finished, now if
            # possible, otherwise by the next transaction on this folder.
            with contextlib.suppress(OSError):
                _finish(self.area)
            return
        self.discard()

    # -- staging -------------------------------------------------------------
    def stage(self, real: str | os.PathLike, *, source: str | os.PathLike | None = None) -> Path:
        """A staged copy of ``real`` (a file or folder, which may not exist
        yet) to work on; filled from ``source`` instead when given."""
        real = Path(real)
        if self.passthrough:
            if source is not None and not real.exists():
                clone(Path(source), real, _leftover)
            return real
        real_abs = real.resolve()
        home_abs = self.home.resolve()
        if real_abs == home_abs:
            raise ValueError("stage the parts of the folder, not the folder itself")
        refuse_overlap(real, self.inputs)
        refuse_current_folder(real)
        self._make_area()
        self._claim(real_abs)
        if real_abs.is_relative_to(home_abs):
            staged = self.area / real_abs.relative_to(home_abs)
        else:
            staged = real_abs.parent / f".{real_abs.name}.{self.area.name.lstrip('.')}"
            # Written down before it exists, so that recover() can remove it.
            self.external.append(str(staged))
            write_json_atomic(self.area / EXTERNAL, self.external)
        origin = Path(source) if source is not None else real_abs
        if origin.exists():
            clone(origin, staged, _leftover)
        if staged.is_dir() or (source is None and real_abs.is_dir()) or (source is not None and origin.is_dir()):
            staged.mkdir(parents=True, exist_ok=True)
            (staged / MARKER).touch()
        self.parts.append((staged, real_abs))
        return staged

    def _make_area(self) -> None:
        if not self.area.exists():
            try:
                self.area.mkdir(parents=True)
            except OSError as exc:
                raise UserInputError(f"Cannot write in {self.home}: {exc.strerror or exc}") from None
            _LIVE.add(str(self.area.resolve()))
            (self.area / MARKER).touch()
            write_json_atomic(self.area / OWNER, {
                "pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": _command_line()})

    def claim(self, real: str | os.PathLike) -> None:
        """Hold ``real`` (a folder changed in place, such as a model folder
        being trained) until the transaction ends, without staging it: a
        stage that would change it meanwhile is refused, as for a staged part."""
        if self.passthrough:
            return
        real_abs = Path(os.path.abspath(real)).resolve()
        refuse_overlap(real, self.inputs)
        self._make_area()
        self._claim(real_abs)

    def _claim(self, real: Path) -> None:
        """Write down that this stage changes ``real``, then refuse if a stage
        still running already changes it (or a folder holding it, or a part
        of it). Claims are read from the staging areas of the folders that
        hold ``real``; a part outside the home gets a small area beside it
        (owner and claims only), so that stages working there see it too."""
        self.claimed.append(real)
        claims = [str(r) for r in self.claimed]
        write_json_atomic(self.area / CLAIMS, claims)
        if not real.is_relative_to(self.home.resolve()):
            beside = real.parent / self.area.name
            if str(beside) not in self.external:
                self.external.append(str(beside))
                write_json_atomic(self.area / EXTERNAL, self.external)
                try:
                    beside.mkdir(exist_ok=True)
                except OSError as exc:
                    raise UserInputError(f"Cannot write in {real.parent}: {exc.strerror or exc}") from None
                _LIVE.add(str(beside.resolve()))
                (beside / OWNER).write_bytes((self.area / OWNER).read_bytes())
            write_json_atomic(beside / CLAIMS, claims)
        mine = {self.area.resolve(), real.parent.resolve() / self.area.name}
        for folder in dict.fromkeys([self.home.resolve(), *real.parents]):
            for area in _areas(folder):
                if area.resolve() in mine or not _owner_alive(area):
                    continue
                try:
                    theirs = [Path(c) for c in json.loads((area / CLAIMS).read_text(encoding="utf-8"))]
                except (OSError, ValueError, TypeError):
                    continue
                if any(c == real or c.is_relative_to(real) or real.is_relative_to(c) for c in theirs):
                    raise UserInputError(f"{real} is being changed by another run ({_holder(area)}); "
                                         "wait for it to finish, or stop it, and try again")

    def _swaps(self) -> list[tuple[str, str]]:
        """(staged, real) path prefixes, longest first."""
        home, area = self.home.resolve(), self.area.resolve()
        swaps = [(str(area), str(home)), (str(self.area), str(self.home))]
        swaps += [(str(staged), str(real)) for staged, real in self.parts if not staged.is_relative_to(self.area)]
        swaps.sort(key=lambda pair: -len(pair[0]))
        return swaps

    def _real_text(self, text: str) -> str:
        """``text`` with every path into a staged copy naming the real place."""
        for old, new in self._swaps():
            text = text.replace(old, new)
        return text

    def _paths_to_real(self) -> None:
        """Paths into the staged copies that a stage wrote into its JSON files
        (where its data or model were) are made to name the real places."""
        swaps = self._swaps()

        def fix(value):
            if isinstance(value, str):
                for old, new in swaps:
                    if value == old or value.startswith(old + os.sep):
                        return new + value[len(old):]
                return value
            if isinstance(value, list):
                return [fix(v) for v in value]
            if isinstance(value, dict):
                return {k: fix(v) for k, v in value.items()}
            return value

        for staged, _real in self.parts:
            files = staged.rglob("*.json") if staged.is_dir() else [staged] if staged.suffix == ".json" else []
            for path in files:
                if path.is_symlink() or not path.is_file() or path.stat().st_size > 20_000_000:
                    continue
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                fixed = fix(data)
                if fixed != data:
                    write_json_atomic(path, fixed)

    # -- ending ----------------------------------------------------------------
    def commit(self) -> None:
        """Replace the originals with the staged copies."""
        if self.passthrough or self.committed:
            self.committed = True
            return
        self._paths_to_real()
        self._make_area()
        entries = []
        for i, (staged, real) in enumerate(self.parts):
            if staged.is_relative_to(self.area):
                old = self.area / ".old" / str(i)
            else:  # beside the part, on its file system: a rename never crosses disks
                old = real.parent / f".{real.name}.{self.area.name.lstrip('.')}.old"
                self.external.append(str(old))
            # A part whose staged copy the stage removed is removed too.
            entries.append({"staged": str(staged), "real": str(real), "old": str(old), "remove": not staged.exists()})
        write_json_atomic(self.area / EXTERNAL, self.external)
        write_json_atomic(self.area / JOURNAL, {"parts": entries})
        _finish(self.area)
        self.committed = True

    def discard(self) -> None:
        """Throw the staged copies away; the originals stay as they were."""
        if self.passthrough:
            return
        _discard_area(self.area)
        self.parts, self.external = [], []


@contextlib.contextmanager
def hold(folder: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = ()):
    """Hold ``folder``, which a stage changes in place (a model folder being
    trained), while the ``with`` block runs: another stage that would change
    it (a second training, a self-training round on its working directory)
    is refused until the block ends, and this one is refused while another
    holds it. Inside a staged copy the outer stage holds it already."""
    folder = Path(os.path.abspath(folder))
    if _inside_staged_copy(folder):
        yield
        return
    tx = Transaction(folder.parent, inputs=inputs)
    with tx:
        tx.claim(folder)
        try:
            yield
        finally:
            tx.discard()


def _finish(area: Path) -> None:
    """Carry out (or finish) the swap written in ``area``'s journal. Each
    step can be repeated, so a swap cut short is finished by running it again."""
    journal = json.loads((area / JOURNAL).read_text(encoding="utf-8"))
    for entry in journal["parts"]:
        staged, real, old = Path(entry["staged"]), Path(entry["real"]), Path(entry["old"])
        if staged.exists():
            if staged.is_dir():
                (staged / MARKER).unlink(missing_ok=True)
            if real.exists() or real.is_symlink():
                old.parent.mkdir(parents=True, exist_ok=True)
                remove(old)
                os.rename(real, old)
            real.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staged, real)
        elif entry.get("remove") and real.exists():
            old.parent.mkdir(parents=True, exist_ok=True)
            remove(old)
            os.rename(real, old)
    # The swap is complete: what it replaced goes.
    (area / JOURNAL).unlink()
    _discard_area(area)


def _discard_area(area: Path) -> None:
    _LIVE.discard(str(area.resolve()))
    with contextlib.suppress(OSError, ValueError):
        for staged in json.loads((area / EXTERNAL).read_text(encoding="utf-8")):
            remove(Path(staged))
    remove(area)


def recover(home: str | os.PathLike) -> list[str]:
    """Finish swaps cut short in ``home`` and remove staging left by stages
    that never completed; returns what was done, one line each."""
    from core.atomic import remove_stale_parts

    home = Path(home)
    done = []
    if not home.is_dir():
        return done
    parts = remove_stale_parts(home)
    if parts:
        done.append(f"removed {parts} temporary file(s) left by a stage that was killed")
    for area in _areas(home):
        if _owner_alive(area):
            continue  # another stage is working in it right now
        if (area / JOURNAL).is_file():
            _finish(area)
            done.append(f"finished saving the results of an interrupted stage ({area.name})")
        else:
            _discard_area(area)
            done.append(f"removed the unfinished work of a stage that did not complete ({area.name})")
    return done


def _command_line() -> str:
    import sys

    words = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    return " ".join(words)[:200]


def _holder(area: Path) -> str:
    """Who works in a staging area, in words: 'process 123, app.py autoseg ..., since 10:02:03'."""
    try:
        owner = json.loads((area / OWNER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "a run in progress"
    if owner.get("pid") == os.getpid():
        return "another stage of this program"
    started = str(owner.get("started", ""))
    return (f"process {owner.get('pid')}, {owner.get('command') or 'a stage'}"
            + (f", since {started}" if started else ""))


def _owner_alive(area: Path) -> bool:
    """Whether the stage that made ``area`` is still running: a transaction
    open in this process, or the live process written in its owner file."""
    if str(area.resolve()) in _LIVE:
        return True
    try:
        owner = json.loads((area / OWNER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if owner.get("host") != socket.gethostname():
        return False
    if owner.get("pid") == os.getpid():
        return False  # not open in this process (not in _LIVE): left by an earlier one with our pid
    try:
        os.kill(int(owner["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True
