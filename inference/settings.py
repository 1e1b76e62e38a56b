"""What the segment stage is asked to do (:class:`SegmentSettings`) and
what it did (:class:`SegmentResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from core.errors import UserInputError
from measurement.calibration import Calibration
from measurement.exports import FORMATS


@dataclass
class SegmentSettings:
    scale: float = 0.0            # resampling factor; 0 = automatic from the object size
    tile: int | None = None       # tile side (default: the model's)
    split: bool = True            # split touching objects into separate instances
    calibration: Calibration | None = None  # pixel size and unit of the measurements (None: pixels)
    include_border: bool = False  # objects cut by the edge in the size distribution
    flips: bool | int | str = "auto"  # mirrored views averaged: "auto" where the photo is small, True always, False never
    threshold: float = 0.5        # object probability for an object pixel (two-class models)
    gain: float | None = None     # detector frames: ADU per electron, for charges in e- (None: unknown)
    overscan: str | None = None   # detector frames: overscan columns "A:B", for pedestal and noise
    hdu: int | None = None        # FITS: only this image unit of each file (None: every unit, one photo each)
    formats: tuple = FORMATS      # what to write beside the masks and tables (measurement.exports)
    fallback: bool = True         # two-class models: auto-segmentation's objects where the model saw next to none

    def check(self) -> None:
        if not 0 <= self.scale <= 16:  # NaN too
            raise UserInputError(f"Scale must be 0 (automatic) or between 0 and 16, not {self.scale}")
        if self.calibration is not None and not (isinstance(self.calibration, Calibration)
                                                 and self.calibration.pixel_size > 0
                                                 and np.isfinite(self.calibration.pixel_size)):
            raise UserInputError(f"The calibration must be a positive pixel size, not {self.calibration}")
        if not 0.0 < self.threshold < 1.0:
            raise UserInputError(f"The object threshold must be between 0 and 1, not {self.threshold}")
        if not (self.flips in (True, False, "auto") or (type(self.flips) is int and 0 <= self.flips <= 3)):
            raise UserInputError(f"Mirrored views must be auto, always or never, not {self.flips!r}")
        if self.gain is not None and not (self.gain > 0 and np.isfinite(self.gain)):
            raise UserInputError(f"The gain must be a positive number of ADU per electron, not {self.gain}")
        if self.hdu is not None and not (isinstance(self.hdu, int) and self.hdu >= 0):
            raise UserInputError(f"A FITS unit is a number from 0 (the primary unit), not {self.hdu}")
        from detector.overscan import parse_overscan

        parse_overscan(self.overscan)
        from measurement.exports import parse_formats

        parse_formats(self.formats)

    def plain(self) -> dict:
        """The settings as plain JSON-ready data (for a worker, a record, segment.json)."""
        return asdict(self)

    @classmethod
    def from_plain(cls, values: dict) -> SegmentSettings:
        """Settings back from :meth:`plain` (after a trip through JSON)."""
        values = dict(values)
        values["formats"] = tuple(values.get("formats", FORMATS))
        if isinstance(values.get("calibration"), dict):
            values["calibration"] = Calibration(**values["calibration"])
        return cls(**values)


@dataclass
class SegmentResult:
    photos: int = 0
    objects: int = 0
    failed: list[str] = field(default_factory=list)
    out: str = ""
    scales: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)  # output stem -> the photo it was made of
    cancelled: bool = False
    measurement_text: str = ""
    auto_segmented: list[str] = field(default_factory=list)  # photos given auto-segmentation's objects
    kept_before: list[str] = field(default_factory=list)  # segmented into the folder before: kept in its tables
    left_out: list[str] = field(default_factory=list)  # segmented into it before, measured otherwise: not in them

    def summary(self) -> str:
        text = f"Segmented {self.photos} photo(s) into {self.out}: {self.objects} objects."
        if self.kept_before:
            text += (f" {len(self.kept_before)} photo(s) segmented into it before are kept in its tables (the "
                     "log names them).")
        if self.left_out:
            text += (f" {len(self.left_out)} photo(s) segmented into it before with another pixel size, unit or "
                     "model are left out of its tables (the log names them).")
        if self.measurement_text:
            text += " " + self.measurement_text
        if self.auto_segmented:
            text += (f" {len(self.auto_segmented)} photo(s) have auto-segmentation's objects, the model seeing "
                     "too few of them there (the log names them).")
        if self.failed:
            text += f" {len(self.failed)} photo(s) could not be read."
        if self.cancelled:
            text += " Cancelled before the end; the photos done so far are written."
        return text
