"""Overscan (prescan) columns of a detector frame: the columns read out
past the sensor, which hold only the readout's pedestal and noise. Given by
the user as ``A:B`` (``--overscan``) or read from a FITS header
(``BIASSEC``)."""

from __future__ import annotations

import numpy as np

from core.errors import UserInputError


def parse_overscan(spec: str | None) -> slice | None:
    """Overscan (or prescan) columns given as ``A:B`` in Python's slice
    notation, 0-based: ``-100:`` the last 100 columns, ``:8`` the first 8,
    ``4096:4196`` those. None for no spec; a bad one is refused."""
    if spec is None or not str(spec).strip():
        return None
    parts = str(spec).strip().split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        start, stop = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise UserInputError(f"Overscan columns are given as A:B (e.g. -100: for the last 100 columns), "
                             f"not '{spec}'") from None
    if start is not None and stop is not None and (start < 0) == (stop < 0) and start >= stop:
        raise UserInputError(f"The overscan columns {spec} name no column: A must be below B (e.g. -100: for the "
                             "last 100 columns)")
    return slice(start, stop)


def frame_overscan(path, given: slice | None) -> slice | None:
    """A frame's overscan columns: those the user gave, else those its FITS
    header names (``BIASSEC``), else None (pedestal and noise from the
    frame's own background)."""
    if given is not None:
        return given
    from core.fits import bias_columns

    return bias_columns(path)


def overscan_text(overscan: slice) -> str:
    """``slice(4116, 4216)`` -> ``'4116:4216'``, as ``--overscan`` takes it."""
    return f"{'' if overscan.start is None else overscan.start}:{'' if overscan.stop is None else overscan.stop}"


def overscan_columns(width: int, overscan: slice | None) -> np.ndarray:
    """Boolean mask of a frame's overscan columns (all False for None).
    Refused when the spec holds no column of the frame or all of them."""
    columns = np.zeros(width, bool)
    if overscan is None:
        return columns
    columns[overscan] = True
    if not columns.any():
        raise UserInputError(f"The overscan columns {overscan_text(overscan)} name no column of a frame {width} "
                             "pixels wide.")
    if columns.all():
        raise UserInputError(f"The overscan columns {overscan_text(overscan)} take every column of a frame {width} "
                             "pixels wide, leaving none for the image.")
    return columns
