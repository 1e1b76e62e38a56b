"""The working-directory layout shared by every stage (see DESIGN.md).

```
<workdir>/project.json        settings used, versions, provenance
<workdir>/objects/images/     object pool crops
<workdir>/objects/masks/      matching masks, same file names
<workdir>/objects/index.csv   one row per pool object
<workdir>/autoseg/            <stem>_mask.png and <stem>_labels.tif per photo
<workdir>/synthetic/images|masks
<workdir>/reports/
```
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

from core.atomic import atomic_path, write_json_atomic, write_text_atomic
from core.errors import UserInputError

APP_NAME = "SegLoop"
APP_VERSION = "0.1.0"

INDEX_COLUMNS = [
    "file", "source_image", "x0", "y0", "x1", "y1", "class", "origin",
    "confidence", "area", "variant_of", "created",
]
ORIGINS = ("auto", "picked", "refined")


def now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True)
class WorkingDirectory:
    """Paths of one working directory. Creating the object creates nothing;
    :meth:`ensure` makes the folders."""

    root: Path

    # The names of what a working directory holds (only this class spells them).
    PROJECT = "project.json"
    OBJECTS = "objects"        # the object pool: images/, masks/, index.csv
    AUTOSEG = "autoseg"        # auto-segmentation's mask per photo
    SYNTHETIC = "synthetic"    # composited training images: images/, masks/
    CCD = "synthetic_ccd"      # simulated detector frames: images/, masks/
    CCD_DETECTOR = "ccd_detector.json"  # simulator settings measured from the user's frames
    LABELLED_CCD = "labelled_ccd"  # the user's detector frames with threshold labels: images/, masks/
    REFINE = "refine"          # a self-training round's masks per photo
    SEGMENTED = "segmented"    # the segment stage's results and tables
    MODEL = "model"            # a model trained here (on the pool's images)
    MODEL_CCD = "model_ccd"    # a model trained here on simulated detector frames
    REPORTS = "reports"

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def project_json(self) -> Path:
        return self.root / self.PROJECT

    @property
    def objects(self) -> Path:
        return self.root / self.OBJECTS

    @property
    def objects_images(self) -> Path:
        return self.objects / "images"

    @property
    def objects_masks(self) -> Path:
        return self.objects / "masks"

    @property
    def index_csv(self) -> Path:
        return self.objects / "index.csv"

    @property
    def autoseg(self) -> Path:
        return self.root / self.AUTOSEG

    @property
    def synthetic(self) -> Path:
        return self.root / self.SYNTHETIC

    @property
    def synthetic_images(self) -> Path:
        return self.synthetic / "images"

    @property
    def synthetic_masks(self) -> Path:
        return self.synthetic / "masks"

    @property
    def ccd(self) -> Path:
        return self.root / self.CCD

    @property
    def labelled_ccd(self) -> Path:
        return self.root / self.LABELLED_CCD

    @property
    def ccd_detector(self) -> Path:
        return self.root / self.CCD_DETECTOR

    @property
    def refine(self) -> Path:
        return self.root / self.REFINE

    @property
    def segmented(self) -> Path:
        return self.root / self.SEGMENTED

    @property
    def model(self) -> Path:
        return self.root / self.MODEL

    @property
    def model_ccd(self) -> Path:
        return self.root / self.MODEL_CCD

    @property
    def reports(self) -> Path:
        return self.root / self.REPORTS

    def ensure(self) -> WorkingDirectory:
        """Create the folders (and project.json) if missing."""
        if self.root.exists() and not self.root.is_dir():
            raise UserInputError(f"The working directory is a file, not a folder: {self.root}")
        try:
            for folder in (self.objects_images, self.objects_masks, self.autoseg,
                           self.synthetic_images, self.synthetic_masks, self.reports):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserInputError(f"Cannot create the working directory {self.root}: {exc.strerror}") from None
        if not self.project_json.exists():
            write_json_atomic(self.project_json, {
                "application": APP_NAME,
                "version": APP_VERSION,
                "created": now_iso(),
                "stages": {},
            })
        return self

    # -- project.json -------------------------------------------------------
    def load_project(self) -> dict:
        if not self.project_json.exists():
            return {"application": APP_NAME, "version": APP_VERSION, "stages": {}}
        from core.jsonfile import read_json_object

        project = read_json_object(self.project_json, what="project description (project.json)")
        if not isinstance(project.get("stages", {}), dict):
            raise UserInputError(f"{self.project_json} is not a project description of this application: its "
                                 "'stages' entry is not an object (move the file away to start it again)")
        return project

    def record_stage(self, stage: str, info: dict) -> None:
        """Store what a stage did (settings, counts, time, versions)."""
        project = self.load_project()
        entry = dict(info)
        entry.setdefault("finished", now_iso())
        entry.setdefault("versions", software_versions())
        project.setdefault("stages", {})[stage] = entry
        project["updated"] = now_iso()
        write_json_atomic(self.project_json, project)

    # -- objects/index.csv --------------------------------------------------
    def read_index(self) -> list[dict]:
        """The rows of objects/index.csv, each with every column of
        ``INDEX_COLUMNS`` (empty where the file lacks it); one saved again by
        a spreadsheet (Windows encoding, a byte-order mark, semicolons) is
        read as well. A file that is not a pool index (no 'file' column, a
        folder, unreadable) is refused with one message."""
        path = self.index_csv
        if not path.exists():
            return []
        if path.is_dir():
            raise UserInputError(f"{path} is a folder, not the object pool's index (a file): move it away")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UserInputError(f"The object pool's index cannot be read ({exc.strerror or exc}): {path}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        first = text.split("\n", 1)[0]
        delimiter = ";" if "file" not in first.split(",") and ";" in first else ","
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            header = [name.strip() for name in next(reader, [])]
            rows = [dict(zip(header, values)) for values in reader if any(v.strip() for v in values)]
        except csv.Error as exc:
            raise UserInputError(f"{path} is not an object pool index ({exc})") from None
        if header and "file" not in header:
            raise UserInputError(f"{path} is not an object pool index (it has no 'file' column)")
        return [{**dict.fromkeys(INDEX_COLUMNS, ""), **row} for row in rows]

    def append_index(self, rows: list[dict]) -> None:
        """Add rows to objects/index.csv (rewritten atomically)."""
        if not rows:
            return
        existing = self.read_index()
        self.write_index(existing + rows)

    def write_index(self, rows: list[dict]) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=INDEX_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in INDEX_COLUMNS})
        write_text_atomic(self.index_csv, buf.getvalue())

    def pool_files(self, rows: list[dict] | None = None) -> list[str]:
        """File names of pool objects: listed in index.csv (or ``rows`` of it,
        already read), with a crop and a mask."""
        listed = {row.get("file", "") for row in (self.read_index() if rows is None else rows)}
        return sorted(set(self.object_files()) & listed)

    def object_files(self) -> list[str]:
        """File names that have both a crop and a mask on disk, listed in the index or not."""
        return sorted(set(self._files(self.objects_images)) & set(self._files(self.objects_masks)))

    @staticmethod
    def _files(folder: Path) -> list[str]:
        if not folder.is_dir():
            return []
        return [p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]

    def tidy_pool(self) -> list[str]:
        """Make the pool's files and its index agree (after a crash of an
        older version, or files moved by hand): crops and masks without an
        index row are removed, rows whose crop or mask is missing are
        dropped. Returns what was done, one line each (none when they agree)."""
        rows = self.read_index()
        images, masks = set(self._files(self.objects_images)), set(self._files(self.objects_masks))
        if not rows and (images or masks):
            # An emptied or damaged index is the user's to mend, never a
            # reason to delete every object of the pool.
            state = "lists no object" if self.index_csv.exists() else "is missing"
            raise UserInputError(f"The object pool's index {self.index_csv} {state}, yet the pool holds "
                                 f"{len(images | masks)} object file(s): put the index back (or move "
                                 f"{self.objects} away to start a new pool); nothing was removed")
        kept = [row for row in rows if row.get("file", "") in images and row.get("file", "") in masks]
        done = []
        if len(kept) != len(rows):
            self.write_index(kept)
            done.append(f"object pool: dropped {len(rows) - len(kept)} index row(s) whose crop or mask is missing")
        listed = {row["file"] for row in kept}
        for folder, names, what in ((self.objects_images, images, "crop"), (self.objects_masks, masks, "mask")):
            orphans = sorted(names - listed)
            for name in orphans:
                (folder / name).unlink(missing_ok=True)
            if orphans:
                done.append(f"object pool: removed {len(orphans)} {what} file(s) with no row in "
                            f"index.csv (e.g. {orphans[0]})")
        return done


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(text: str, max_len: int = 60) -> str:
    """A file-name-safe version of a photo's stem."""
    stem = _SAFE.sub("_", text).strip("._") or "image"
    return stem[:max_len]


class UniqueNamer:
    """Hands out file names ``<prefix>_<NNNN><suffix>`` that are free in all
    of the given folders, so a re-run never overwrites earlier files."""

    def __init__(self, *folders: Path) -> None:
        self.folders = folders
        self._taken: set[str] = set()
        for folder in folders:
            if folder.is_dir():
                self._taken.update(p.stem for p in folder.iterdir())
        self._counters: dict[str, int] = {}

    def next(self, prefix: str, suffix: str) -> str:
        n = self._counters.get(prefix, 0)
        while True:
            n += 1
            stem = f"{prefix}_{n:04d}"
            if stem not in self._taken and not any((f / (stem + suffix)).exists() for f in self.folders):
                self._taken.add(stem)
                self._counters[prefix] = n
                return stem + suffix


def software_versions() -> dict:
    import numpy

    versions = {"python": platform.python_version(), "numpy": numpy.__version__,
                "application": APP_VERSION}
    for name in ("skimage", "PIL", "tensorflow", "keras"):
        module = __import__("sys").modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "?")
    return versions


__all__ = ["WorkingDirectory", "UniqueNamer", "safe_stem", "INDEX_COLUMNS", "ORIGINS",
           "atomic_path", "now_iso", "software_versions", "APP_NAME", "APP_VERSION"]
