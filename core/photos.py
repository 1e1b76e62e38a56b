"""The one loop over a stage's photos: read each in turn, report progress,
skip (and say so) a photo that cannot be read, stop when cancelled.

    photos = PhotoLoop(files, progress, doing="segmenting")
    for i, path, image in photos:
        ...
    photos.skipped     # names of the photos that could not be read
    photos.cancelled   # True when the loop stopped on a cancel
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from core.errors import ImageReadError
from core.imageio import output_stems, read_image
from core.progress import Progress


class PhotoLoop:
    """Iterate over ``files`` as ``(index, path, image)``.

    ``doing`` starts the progress message ("segmenting" -> "segmenting
    a.png"). ``skip(path)`` may return a reason to pass a photo by without
    reading it (logged as "<name>: <reason>"; counted in :attr:`passed`).
    ``skipped_note`` starts the log line of an unreadable photo.
    """

    def __init__(self, files: Sequence[Path], progress: Progress, *, doing: str = "",
                 skip: Callable[[Path], str | None] | None = None, skipped_note: str = "skipped") -> None:
        self.files = [Path(f) for f in files]
        self.progress = progress
        self.doing = doing
        self.skip = skip
        self.skipped_note = skipped_note
        self.skipped: list[str] = []  # could not be read
        self.passed = 0  # passed by on purpose (``skip``)
        self.cancelled = False
        self._stems: dict[Path, str] | None = None

    def __len__(self) -> int:
        return len(self.files)

    def stem(self, path: Path) -> str:
        """The name the photo's result files start with (see :func:`core.imageio.output_stems`)."""
        if self._stems is None:
            self._stems = output_stems(self.files)
        return self._stems[Path(path)]

    def __iter__(self) -> Iterator[tuple[int, Path, np.ndarray]]:
        total = len(self.files)
        for i, path in enumerate(self.files):
            if self.progress.cancelled:
                self.cancelled = True
                return
            self.progress.update(i, total, f"{self.doing} {path.name}".strip())
            reason = self.skip(path) if self.skip is not None else None
            if reason:
                self.passed += 1
                self.progress.log(f"{path.name}: {reason}")
                continue
            try:
                image = read_image(path, warn=self.progress.log)
            except ImageReadError as exc:
                self.skipped.append(path.name)
                self.progress.log(f"{self.skipped_note}: {exc}")
                continue
            yield i, path, image
