"""Pixel size: how long one pixel is in nanometres, micrometres or millimetres.

Users either type the pixel size (from the microscope's metadata) or click the
two ends of the scale bar burned into the photo and type its length. The
result is kept per working directory in ``<workdir>/calibration.json`` so
every photo of a project is measured with the same scale.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.atomic import write_json_atomic
from core.errors import UserInputError
from core.jsonfile import read_json

CALIBRATION_FILE = "calibration.json"

# Length of one unit in micrometres.
_MICROMETRES = {"nm": 1e-3, "µm": 1.0, "mm": 1e3}
# ASCII spellings used in column and file names.
_SUFFIX = {"nm": "nm", "µm": "um", "mm": "mm"}
_ALIASES = {
    "nm": "nm", "nanometre": "nm", "nanometres": "nm", "nanometer": "nm", "nanometers": "nm",
    "µm": "µm", "μm": "µm", "um": "µm", "micron": "µm", "microns": "µm", "micrometre": "µm",
    "micrometres": "µm", "micrometer": "µm", "micrometers": "µm",
    "mm": "mm", "millimetre": "mm", "millimetres": "mm", "millimeter": "mm", "millimeters": "mm",
}
UNITS = tuple(_MICROMETRES)


def normalise_unit(unit: str) -> str:
    """The canonical name of a length unit: ``"nm"``, ``"µm"`` or ``"mm"``.

    Accepts the usual spellings (``um``, ``micron``, Greek mu ``μm``,
    ``nanometre`` ...). Raises :class:`UserInputError` for anything else.
    """
    key = str(unit).strip()
    canonical = _ALIASES.get(key) or _ALIASES.get(key.lower())
    if canonical is None:
        raise UserInputError(
            f"Unknown length unit '{unit}': use one of {', '.join(UNITS)}."
        )
    return canonical


def unit_suffix(unit: str) -> str:
    """ASCII form of a unit for column names: ``"nm"``, ``"um"`` or ``"mm"``."""
    return _SUFFIX[normalise_unit(unit)]


def convert_length(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a length between nm, µm and mm (``convert_length(1, "µm", "nm") == 1000``)."""
    return float(value) * _MICROMETRES[normalise_unit(from_unit)] / _MICROMETRES[normalise_unit(to_unit)]


@dataclass(frozen=True)
class Calibration:
    """The physical size of one pixel side.

    Attributes
    ----------
    pixel_size : float
        Length of one pixel side in ``unit`` (pixels are square).
    unit : str
        ``"nm"``, ``"µm"`` or ``"mm"``.
    source : str
        ``"typed"`` or ``"scale bar"``, kept for the record.
    scale_bar : dict or None
        The clicked end points (x, y in pixels), their distance in pixels and
        the typed length, when the calibration came from a scale bar.
    """

    pixel_size: float
    unit: str = "µm"
    source: str = "typed"
    scale_bar: dict | None = field(default=None, compare=False)

    @property
    def suffix(self) -> str:
        """ASCII unit for column names (``um`` for µm)."""
        return unit_suffix(self.unit)

    def to_unit(self, unit: str) -> Calibration:
        """The same calibration expressed in another unit."""
        unit = normalise_unit(unit)
        return Calibration(convert_length(self.pixel_size, self.unit, unit), unit,
                           self.source, self.scale_bar)

    def length(self, pixels: float) -> float:
        """A length in pixels converted to ``unit``."""
        return float(pixels) * self.pixel_size

    def area(self, pixels: float) -> float:
        """An area in pixels converted to ``unit`` squared."""
        return float(pixels) * self.pixel_size ** 2

    def describe(self) -> str:
        return f"{self.pixel_size:.6g} {self.unit} per pixel ({self.source})"


def _positive(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"The {what} must be a number, got '{value}'.") from None
    if not math.isfinite(number) or number <= 0:
        raise UserInputError(f"The {what} must be a positive number, got {value}.")
    return number


# The pixel sizes a photo can have, from atomic-resolution electron
# micrographs to macro photographs of a rock face, in µm. Outside them a
# size is a typing slip, and squared areas would leave the range of numbers.
PIXEL_SIZE_RANGE_UM = (1e-6, 1e5)


def _pixel_size_in_range(pixel_size: float, unit: str, given) -> float:
    low, high = PIXEL_SIZE_RANGE_UM
    in_um = convert_length(pixel_size, unit, "µm")
    if not low <= in_um <= high:
        raise UserInputError(f"The pixel size must lie between 0.001 nm and 100 mm, got {given} {unit}.")
    return pixel_size


def calibration_from_pixel_size(pixel_size: float, unit: str = "µm") -> Calibration:
    """A calibration from a typed pixel size (length of one pixel side).

    Raises :class:`UserInputError` for zero, negative or non-finite sizes,
    sizes outside ``PIXEL_SIZE_RANGE_UM`` and unknown units.
    """
    unit = normalise_unit(unit)
    size = _pixel_size_in_range(_positive(pixel_size, "pixel size"), unit, pixel_size)
    return Calibration(size, unit, "typed")


def calibration_from_scale_bar(
    p0: tuple[float, float], p1: tuple[float, float], length: float, unit: str = "µm"
) -> Calibration:
    """A calibration from the two clicked ends of a scale bar and its length.

    Parameters
    ----------
    p0, p1 : (x, y)
        The ends of the scale bar in image pixel coordinates (any sub-pixel
        position; the bar need not be horizontal).
    length : float
        The length printed on the bar, in ``unit``.
    unit : str
        ``"nm"``, ``"µm"`` or ``"mm"`` (usual spellings accepted).

    Raises :class:`UserInputError` when the length is not a positive number,
    a point is not two finite numbers, the points are less than one pixel
    apart or the unit is unknown.
    """
    length = _positive(length, "scale bar length")
    unit = normalise_unit(unit)
    points = []
    for name, point in (("first", p0), ("second", p1)):
        try:
            x, y = (float(v) for v in point)
        except (TypeError, ValueError):
            raise UserInputError(f"The {name} scale bar end must be two numbers (x, y), got {point!r}.") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise UserInputError(f"The {name} scale bar end is not a finite point: {point!r}.")
        points.append((x, y))
    distance = math.hypot(points[1][0] - points[0][0], points[1][1] - points[0][1])
    if distance < 1.0:
        raise UserInputError(
            "The two scale bar ends are (nearly) the same point: click both ends of the bar."
        )
    bar = {"p0": list(points[0]), "p1": list(points[1]), "length": length,
           "length_px": distance}
    size = _pixel_size_in_range(length / distance, unit, f"{length / distance:.3g}")
    return Calibration(size, unit, "scale bar", bar)


def save_calibration(workdir: str | os.PathLike, calibration: Calibration) -> Path:
    """Store the calibration in ``<workdir>/calibration.json`` (atomically)."""
    path = Path(workdir) / CALIBRATION_FILE
    data = {"pixel_size": calibration.pixel_size, "unit": calibration.unit,
            "source": calibration.source}
    if calibration.scale_bar is not None:
        data["scale_bar"] = calibration.scale_bar
    from core.workdir import now_iso  # late: keeps this module light for the GUI

    data["saved"] = now_iso()
    write_json_atomic(path, data)
    return path


def load_calibration(workdir: str | os.PathLike) -> Calibration | None:
    """The calibration stored in ``<workdir>/calibration.json``, or None when
    the working directory has none.

    Raises :class:`UserInputError` naming the file when it is unreadable or
    holds an invalid pixel size or unit.
    """
    path = Path(workdir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    data = read_json(path, what="calibration file")
    try:
        pixel_size, unit = data["pixel_size"], data.get("unit", "µm")
    except (AttributeError, KeyError, TypeError) as exc:
        raise UserInputError(f"The calibration file is unreadable: {path} ({exc})") from None
    try:
        calibration = calibration_from_pixel_size(pixel_size, unit)
    except UserInputError as exc:
        raise UserInputError(f"{exc} (in {path})") from None
    return Calibration(calibration.pixel_size, calibration.unit, str(data.get("source", "typed")),
                       data.get("scale_bar"))


def _nice_unit(metres: float) -> tuple[float, str]:
    """A length in metres as (value, unit) in nm, µm or mm, whichever reads
    best (the value between about 0.1 and 1000)."""
    for unit, per_metre in (("nm", 1e9), ("µm", 1e6), ("mm", 1e3)):
        value = metres * per_metre
        if value < 1000:
            return value, unit
    return metres * 1e3, "mm"


def calibration_from_file(path: str | os.PathLike) -> Calibration | None:
    """The pixel size a TIFF photo carries, or None.

    Read (by tifffile) from, in this order: ImageJ metadata (unit and
    resolution), OME-XML (``PhysicalSizeX`` and its unit), FEI / Thermo
    Fisher SEM headers (``[Scan] PixelWidth`` in metres), Zeiss SEM headers
    (``AP_PIXEL_SIZE``), and the TIFF resolution tags when their unit is the
    centimetre (inch-based resolutions are a printer's dpi, not a
    microscope's). The ``source`` names where the size came from. Any other
    file, or one without these, gives None.
    """
    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            found = _from_imagej(tif, page) or _from_ome(tif) or _from_fei(tif) or _from_zeiss(tif) \
                or _from_resolution(page)
    except Exception:  # noqa: BLE001 - a photo whose metadata cannot be read simply has none
        return None
    if found is None:
        return None
    size, unit, source = found
    try:
        size = _positive(size, "pixel size")
        unit = normalise_unit(unit)
    except UserInputError:
        return None
    if unit == "mm" and size < 1e-3:  # written in mm but finer than a micrometre: show it in nm
        size, unit = size * 1e6, "nm"
    return Calibration(size, unit, source=source)


def _resolution(page) -> float | None:
    """Pixels per unit from the XResolution tag, None when absent or 1."""
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    num, den = tag.value
    per_unit = num / den if den else 0.0
    return per_unit if per_unit > 0 and per_unit != 1.0 else None


def _from_imagej(tif, page):
    meta = tif.imagej_metadata if tif.is_imagej else None
    unit = (meta or {}).get("unit")
    per_unit = _resolution(page)
    if unit and per_unit and unit not in ("pixel", "pixels", "inch"):
        return 1.0 / per_unit, "µm" if unit in ("micron", "microns", "\\u00B5m") else unit, "ImageJ metadata"
    return None


def _from_ome(tif):
    if not tif.is_ome or not tif.ome_metadata:
        return None
    import re

    size = re.search(r'PhysicalSizeX="([0-9.eE+-]+)"', tif.ome_metadata)
    unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', tif.ome_metadata)
    return (float(size.group(1)), unit.group(1) if unit else "µm", "OME metadata") if size else None


def _from_fei(tif):
    meta = tif.fei_metadata if tif.is_fei else None
    width = ((meta or {}).get("Scan") or {}).get("PixelWidth") or ((meta or {}).get("EScan") or {}).get(
        "PixelWidth")
    if isinstance(width, int | float) and width > 0:
        value, unit = _nice_unit(float(width))
        return value, unit, "FEI / Thermo Fisher SEM metadata"
    return None


def _from_zeiss(tif):
    meta = tif.sem_metadata if tif.is_sem else None
    entry = (meta or {}).get("ap_pixel_size") or (meta or {}).get("ap_image_pixel_size")
    if entry and len(entry) >= 3 and isinstance(entry[1], int | float):
        return float(entry[1]), str(entry[2]), "Zeiss SEM metadata"
    return None


def _from_resolution(page):
    unit = page.tags.get("ResolutionUnit")
    per_cm = _resolution(page)
    if unit is not None and int(unit.value) == 3 and per_cm:  # RESUNIT.CENTIMETER
        value, shown = _nice_unit(0.01 / per_cm)
        return value, shown, "TIFF resolution tags"
    return None


def common_file_calibration(paths) -> Calibration | None:
    """The pixel size every one of ``paths`` carries (see
    :func:`calibration_from_file`), or None when one carries none or they
    differ (a folder is then measured in pixels, never with a wrong scale)."""
    found = None
    for path in paths:
        calibration = calibration_from_file(path)
        if calibration is None:
            return None
        if found is None:
            found = calibration
        elif (calibration.unit != found.unit
              or not math.isclose(calibration.pixel_size, found.pixel_size, rel_tol=1e-6)):
            return None
    return found
