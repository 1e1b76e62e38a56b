"""Detector frames in FITS: the image data of one header-data unit.

CCD frames come as FITS files, often with one image extension per
amplifier and the primary unit holding only a header. The values are ADU,
stored as 16- or 32-bit integers with ``BZERO``/``BSCALE`` (applied here,
after the stored values are memory-mapped) or as floats. Rows are kept in the order the file stores them: row 0
is the frame's first row (FITS y = 1), so coordinates in the results are
FITS pixel coordinates less one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.errors import ImageReadError, first_line

FITS_EXTENSIONS = (".fits", ".fit", ".fts")

# One unit of a FITS file, named as CFITSIO and astropy users write it:
# ``frame.fits[2]`` is unit 2 (0 = primary) of ``frame.fits``.
_UNIT = re.compile(r"^(?P<file>.+\.(?:fits|fit|fts))\[(?P<unit>\d+)\]$", re.IGNORECASE)


def split_unit(path: Path) -> tuple[Path, int | None]:
    """``frame.fits[2]`` -> (``frame.fits``, 2); any other path -> (path, None)."""
    path = Path(path)
    match = _UNIT.match(path.name)
    if match is None:
        return path, None
    return path.with_name(match["file"]), int(match["unit"])


# The same unit named as astropy and CFITSIO also allow: ``mef.fits[AMP1]``, by its EXTNAME.
_NAMED_UNIT = re.compile(r"^(?P<file>.+\.(?:fits|fit|fts))\[(?P<name>[^\]]*[^\]\d][^\]]*)\]$", re.IGNORECASE)


def named_unit(path: Path) -> Path | None:
    """``mef.fits[AMP1]`` -> ``mef.fits[2]`` (the image unit whose EXTNAME is
    AMP1) when the file exists; None for a path not of that form or a file
    that is not there. Raises :class:`ImageReadError` when no image unit has
    that name, listing those it has."""
    path = Path(path)
    match = _NAMED_UNIT.match(path.name)
    if match is None or not path.with_name(match["file"]).is_file():
        return None
    file, wanted = path.with_name(match["file"]), match["name"].strip().upper()
    with _open(file) as units:
        names = {i: str(u.header.get("EXTNAME", "")).strip() for i, u in enumerate(units) if _is_image(u)}
    for index, name in names.items():
        if name.upper() == wanted:
            return unit_path(file, index)
    listed = ", ".join(f"{i} ({n})" if n else str(i) for i, n in names.items()) or "none"
    raise ImageReadError(f"{file.name} has no image unit named {match['name']} (its image units: {listed}): {file}")


def unit_path(path: Path, unit: int) -> Path:
    """The name of one unit of a FITS file: ``frame.fits[2]``."""
    return Path(path).with_name(f"{Path(path).name}[{unit}]")


def units_as_photos(path: Path) -> list[Path]:
    """A FITS file as the photos it holds: the file itself when it has one
    image unit (or cannot be read: the reader reports it), else one
    ``frame.fits[N]`` per image unit (one per amplifier), each segmented and
    reported on its own."""
    try:
        units = image_units(path)
    except ImageReadError:
        return [path]
    return [unit_path(path, unit) for unit in units] if len(units) > 1 else [path]


def image_units(path: Path) -> list[int]:
    """Indices of the header-data units of a FITS file that hold an image
    of at least two dimensions."""
    with _open(path) as units:
        return [i for i, unit in enumerate(units) if _is_image(unit)]


# A FITS section as IRAF writes it in DATASEC/BIASSEC: '[x1:x2,y1:y2]', 1-based, inclusive.
_SECTION = re.compile(r"^\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]$")


def bias_columns(path: Path) -> slice | None:
    """The overscan columns a FITS frame's header names (the IRAF keyword
    ``BIASSEC``, e.g. ``'[4117:4216,1:2048]'``) as a 0-based slice, for the
    unit the path names (``frame.fits[2]``) or the first image unit. None
    for a file that is not FITS, has no such keyword, or names columns
    outside the frame or all of them (a row overscan, say)."""
    file, unit = split_unit(Path(path))
    if file.suffix.lower() not in FITS_EXTENSIONS:
        return None
    try:
        with _open(file) as units:
            images = [i for i, u in enumerate(units) if _is_image(u)]
            index = unit if unit is not None else (images[0] if images else None)
            if index is None or not 0 <= index < len(units):
                return None
            header = units[index].header
            match = _SECTION.match(str(header.get("BIASSEC", "")).strip())
            width = int(header.get("NAXIS1", 0))
    except (ImageReadError, ValueError, TypeError):
        return None
    if match is None:
        return None
    x1, x2 = int(match[1]), int(match[2])
    if not (1 <= x1 <= x2 <= width) or (x1, x2) == (1, width):
        return None
    return slice(x1 - 1, x2)


def read_fits(path: Path, *, hdu: int | None = None, warn: Callable[[str], None] | None = None) -> np.ndarray:
    """The image of one unit of a FITS file, scaled to physical values.

    ``hdu`` picks the unit (0 = primary); by default the first that holds
    an image, and ``warn`` is told when there are others (one per amplifier).
    Raises :class:`ImageReadError` naming the file for a corrupt, truncated
    or image-less file, a cube of several planes (which plane, or which
    combination of them, is the user's choice) and a frame with no finite
    value.
    """
    with _open(path) as units:
        images = [i for i, unit in enumerate(units) if _is_image(unit)]
        if hdu is None:
            if not images:
                raise ImageReadError(f"FITS file holds no image data: {path}")
            hdu = images[0]
            if len(images) > 1 and warn:
                warn(f"{path.name}: {len(images)} image units (one per amplifier?), using unit {hdu}")
        elif not 0 <= hdu < len(units):
            raise ImageReadError(f"FITS file has no unit {hdu} (it has {len(units)}): {path}")
        elif hdu not in images:
            raise ImageReadError(f"FITS unit {hdu} holds no image data: {path}")
        unit = units[hdu]
        shape = tuple(unit.shape)
        if int(np.prod(shape[:-2])) > 1:
            raise ImageReadError(
                f"FITS file {path} holds a cube of shape {shape}, not one frame: save each plane as its own "
                f"file or image unit (a stack of exposures or of skipper samples is the user's to combine)")
        try:
            raw = unit.data[(0,) * (len(shape) - 2)] if len(shape) > 2 else unit.data
            data = _scaled(raw, unit.header)
        except (OSError, ValueError, TypeError, IndexError) as exc:
            raise ImageReadError(f"Cannot read the image data of FITS file {path}: {first_line(exc)}") from None
        if data.dtype.kind == "f" and not np.isfinite(data).any():
            raise ImageReadError(f"FITS file {path} holds no pixel values: every pixel is NaN or BLANK")
        return data


def _open(path: Path):
    import warnings

    from astropy.io import fits

    try:
        # The stored values are memory-mapped and scaled here, one plane at a
        # time. Astropy's own warnings (a truncated file, a header card that
        # breaks the standard) are left out: a file that cannot be read gets
        # one message of ours, a readable one needs none.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            units = fits.open(path, memmap=True, lazy_load_hdus=False, do_not_scale_image_data=True)
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise ImageReadError(f"Cannot read FITS file {path}: {first_line(exc)}") from None
    return units


def _is_image(unit) -> bool:
    from astropy.io import fits

    return (isinstance(unit, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))
            and unit.header.get("NAXIS", 0) >= 2 and all(n > 0 for n in unit.shape))


def _scaled(raw: np.ndarray, header) -> np.ndarray:
    """Stored values to physical ones: ``BSCALE * stored + BZERO``, with
    ``BLANK`` pixels as NaN. Integers stay integers where the scaling is an
    integer offset (16-bit unsigned frames are stored as signed + 32768);
    :func:`core.imageio.read_image` narrows them to uint16 where they fit."""
    bscale, bzero = float(header.get("BSCALE", 1.0)), float(header.get("BZERO", 0.0))
    blank = header.get("BLANK") if raw.dtype.kind in "iu" else None
    raw = np.asarray(raw)
    if raw.dtype.kind in "iu" and bscale == 1.0 and bzero.is_integer() and blank is None:
        wide = np.int64 if raw.dtype.itemsize >= 4 else np.int32
        return raw.astype(wide) + wide(int(bzero))
    data = raw.astype(np.float32)
    if bscale != 1.0 or bzero != 0.0:
        data = data * np.float32(bscale) + np.float32(bzero)
    if blank is not None:
        data[np.asarray(raw) == int(blank)] = np.nan
    return data
