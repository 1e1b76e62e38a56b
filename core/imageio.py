"""Reading and writing photos in every format users bring, and listing
them: ``read_image`` keeps the native dtype (uint8, uint16, float32) and
the channels; :mod:`core.gray` turns them into what the algorithms and the
display use."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.atomic import atomic_path
from core.errors import ImageReadError, UserInputError, first_line
from core.fits import FITS_EXTENSIONS, image_units, read_fits, split_unit, unit_path, units_as_photos

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp") + FITS_EXTENSIONS
# About 17 000 x 17 000: beyond this a photo is more likely a mistake (or a
# decompression bomb) than a micrograph, and would not fit in memory as float.
MAX_PIXELS = 300_000_000

Warn = Callable[[str], None] | None


def list_images(folder: str | Path, *, what: str = "photos folder", hdu: int | None = None) -> list[Path]:
    """Sorted image files in ``folder`` (not recursive, hidden files skipped).

    A FITS file with several image units is one photo per unit
    (``frame.fits[1]``, ``frame.fits[2]``); with ``hdu`` only that unit of
    each FITS file (``--hdu N``; other images are listed as they are).
    Raises :class:`UserInputError` when the folder is missing or holds no
    image, naming the folder, or when a FITS file has no image in unit ``hdu``.
    """
    photos = _list_images(Path(folder), what)
    return photos if hdu is None else _only_unit(photos, hdu)


def _only_unit(photos: list[Path], hdu: int) -> list[Path]:
    chosen, seen = [], set()
    for photo in photos:
        file, unit = split_unit(photo)
        if file.suffix.lower() not in FITS_EXTENSIONS:
            chosen.append(photo)
            continue
        if file in seen:
            continue
        seen.add(file)
        try:
            units = image_units(file)
        except ImageReadError:  # the reader names it when its turn comes
            chosen.append(photo)
            continue
        if hdu not in units:
            raise UserInputError(f"{file.name} has no image in unit {hdu} "
                                 f"(its image units: {', '.join(map(str, units)) or 'none'}): {file}")
        chosen.append(unit_path(file, hdu))
    return chosen


def _list_images(folder: Path, what: str) -> list[Path]:
    from core.fits import named_unit

    folder = named_unit(folder) or folder  # mef.fits[AMP1] -> mef.fits[2]
    file, unit = split_unit(folder)
    if unit is not None and file.is_file():  # one unit of a FITS file: frame.fits[2]
        units = image_units(file)
        if unit not in units:
            raise UserInputError(f"{file.name} has no image in unit {unit} "
                                 f"(its image units: {', '.join(map(str, units)) or 'none'}): {file}")
        return [folder]
    if not folder.exists():
        raise UserInputError(f"The {what} does not exist: {folder}")
    if folder.is_file():
        if folder.suffix.lower() in FITS_EXTENSIONS:
            return units_as_photos(folder)
        if folder.suffix.lower() in IMAGE_EXTENSIONS:
            return [folder]
        raise UserInputError(f"Not a supported image ({', '.join(IMAGE_EXTENSIONS)}): {folder}")
    if not folder.is_dir():
        raise UserInputError(f"The {what} is not a folder: {folder}")
    try:
        files = sorted(
            p for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        )
    except OSError as exc:  # no permission to list it, a folder on a disk that went away
        raise UserInputError(f"The {what} cannot be read ({exc.strerror or exc}): {folder}") from None
    if not files:
        raise UserInputError(
            f"The {what} holds no images ({', '.join(IMAGE_EXTENSIONS)}): {folder}"
        )
    return [photo for f in files
            for photo in (units_as_photos(f) if f.suffix.lower() in FITS_EXTENSIONS else [f])]


def output_stems(files: list[Path]) -> dict[Path, str]:
    """The name each photo's result files start with (``<stem>_mask.png``...):
    its stem, or its stem and extension (``a_png``, ``a_jpg``) where another
    photo in its folder has the same stem, so that no two photos' results
    share a name. A photo gets the same name whichever of its neighbours is
    processed with it."""
    files = [Path(f) for f in files]
    names: dict[Path, str] = {}
    for f in files:
        file, unit = split_unit(f)
        if unit is not None:  # one amplifier of a FITS file: frame.fits[2] -> frame_hdu2
            names[f] = f"{output_stems([file])[file]}_hdu{unit}"
    files = [f for f in files if f not in names]
    for folder in {f.parent for f in files}:
        try:
            stems = [p.stem for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        except OSError:
            stems = [f.stem for f in files if f.parent == folder]
        twins = {stem for stem in stems if stems.count(stem) > 1}
        for f in files:
            if f.parent == folder:
                names[f] = f"{f.stem}_{f.suffix.lstrip('.')}" if f.stem in twins else f.stem
    return names


def output_stem(path: str | Path) -> str:
    """:func:`output_stems` for one photo."""
    return output_stems([Path(path)])[Path(path)]


def read_image(path: str | Path, *, warn: Warn = None) -> np.ndarray:
    """Read an image file with its native dtype.

    Returns an array of shape (H, W) for gray, (H, W, 3) for RGB or
    (H, W, 4) for RGBA, dtype uint8, uint16 or float32 (other integer types
    are converted to the nearest of these without rescaling). JPEG EXIF
    orientation is applied. For a multi-page TIFF the first page is read and
    ``warn`` is called with a message saying so. A FITS frame gives the
    physical values (BZERO/BSCALE applied) of its first image unit
    (:func:`core.fits.read_fits`).

    Raises :class:`ImageReadError` naming the file when it is missing, empty,
    corrupt, unsupported or enormous.
    """
    path, unit = split_unit(Path(path))
    if unit is not None:
        return _read_fits_unit(path, unit, warn)
    if not path.is_file():
        raise ImageReadError(f"Image file not found: {path}")
    if path.stat().st_size == 0:
        raise ImageReadError(f"Image file is empty: {path}")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise ImageReadError(
            f"Unsupported image type '{suffix}' ({', '.join(IMAGE_EXTENSIONS)} are supported): {path}"
        )
    try:
        if suffix in (".tif", ".tiff"):
            array = _read_tiff(path, warn)
        elif suffix in FITS_EXTENSIONS:
            array = read_fits(path, warn=warn)
            _check_size(array.shape[1], array.shape[0], path)
        else:
            array = _read_pillow(path, warn)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(f"Image is too large to load into memory: {path}") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure means a bad file
        raise ImageReadError(f"Cannot read image {path}: {first_line(exc)}") from None
    return _normalise_array(array, path)


def _read_fits_unit(path: Path, unit: int, warn: Warn) -> np.ndarray:
    if not path.is_file():
        raise ImageReadError(f"Image file not found: {path}")
    array = read_fits(path, hdu=unit, warn=warn)
    _check_size(array.shape[1], array.shape[0], path)
    return _normalise_array(array, path)


def _check_size(width: int, height: int, path: Path) -> None:
    if width <= 0 or height <= 0:
        raise ImageReadError(f"Image has no pixels: {path}")
    if width * height > MAX_PIXELS:
        raise ImageReadError(
            f"Image is enormous ({width} x {height} pixels, more than "
            f"{MAX_PIXELS // 1_000_000} megapixels): {path}"
        )


def _read_pillow(path: Path, warn: Warn) -> np.ndarray:
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = None  # our own limit applies, with a clear message
    with Image.open(path) as im:
        _check_size(im.width, im.height, path)
        n_frames = getattr(im, "n_frames", 1)
        if n_frames > 1 and warn:
            warn(f"{path.name}: {n_frames} frames, using the first")
        im.load()
        if warn and _is_48_or_64_bit_png(path):
            warn(f"{path.name}: a 16-bit colour PNG is read with 8 bits per channel; to keep the "
                 "full range, save it as a 16-bit TIFF")
        if path.suffix.lower() in (".jpg", ".jpeg"):
            im = ImageOps.exif_transpose(im)
        mode = im.mode
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode == "1":
            return np.asarray(im, dtype=np.uint8) * np.uint8(255)
        elif mode in ("LA", "La"):
            im = im.getchannel(0)
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
            im = im.convert("RGB")
        elif mode == "PA":
            im = im.convert("RGBA")
        return np.asarray(im)


def _is_48_or_64_bit_png(path: Path) -> bool:
    """A PNG with 16 bits per channel in colour (RGB or RGBA), which the
    decoder can only give with 8."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    return head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and head[24] == 16 and head[25] in (2, 6)


def _read_tiff(path: Path, warn: Warn) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.pages:
            raise ImageReadError(f"TIFF file has no images: {path}")
        page = tif.pages[0]
        if len(page.shape) < 2:
            raise ImageReadError(f"TIFF page is not an image (shape {page.shape}): {path}")
        series = tif.series[0] if tif.series else None
        if _rows_as_pages(tif, page, series):
            # (rows, columns, channels) written one row per page: the image is the series.
            _check_size(int(series.shape[1]), int(series.shape[0]), path)
            array, axes = series.asarray(), "YXS"
        else:
            _check_size(int(page.imagewidth), int(page.imagelength), path)
            n_pages = len(tif.pages)
            if n_pages > 1 and warn:
                warn(f"{path.name}: a stack of {n_pages} pages, using the first")
            array, axes = page.asarray(), page.axes
        rgb = page.photometric == tifffile.PHOTOMETRIC.RGB
    return _channels_last(array, axes, rgb, path, warn)


def _rows_as_pages(tif, page, series) -> bool:
    """Whether a file holds one image of shape (H, W, channels) written with
    one page per row, as some programs do for channel counts other than 3 and 4."""
    return (series is not None and tif.is_shaped and len(page.shape) == 2 and page.shape[-1] <= 16
            and len(series.shape) == 3 and series.shape[0] == len(tif.pages) and series.shape[0] > 16)


def _channels_last(array: np.ndarray, axes: str, rgb: bool, path: Path, warn: Warn) -> np.ndarray:
    """Keep the rows, columns and channels of a TIFF page (the first plane of
    any other axis) and put the channels last: gray, RGB or RGBA."""
    if len(axes) != array.ndim:  # unknown layout: rows and columns are the last two axes
        axes = "Q" * (array.ndim - 2) + "YX"
    extra = [a for a in axes if a not in "YXS"]
    if extra:
        array = array[tuple(slice(None) if a in "YXS" else 0 for a in axes)]
        axes = "".join(a for a in axes if a in "YXS")
        if warn:
            warn(f"{path.name}: extra dimensions, using the first plane")
    if "S" not in axes:
        return array
    array = np.moveaxis(array, axes.index("S"), -1)
    samples = array.shape[-1]
    if samples == 1:
        return array[..., 0]
    if samples == 2:  # gray + alpha
        return array[..., 0]
    if samples > 4:
        keep = 3 if rgb else 1
        if warn:
            warn(f"{path.name}: {samples} channels, using the first {'three (RGB)' if keep == 3 else 'one'}")
        array = array[..., :keep]
        return array[..., 0] if keep == 1 else array
    return array


def _normalise_array(array: np.ndarray, path: Path) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 2:  # gray + alpha
        array = array[..., 0]
    if array.ndim not in (2, 3) or array.size == 0:
        raise ImageReadError(f"Image has an unsupported shape {array.shape}: {path}")
    dtype = array.dtype
    if dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    if dtype in (np.uint8, np.uint16, np.float32):
        return np.ascontiguousarray(array)
    if np.issubdtype(dtype, np.floating):
        return array.astype(np.float32)
    if np.issubdtype(dtype, np.integer):
        lo, hi = (int(array.min()), int(array.max()))
        if lo >= 0 and hi <= 255 and dtype.itemsize == 1:
            return array.astype(np.uint8)
        if lo >= 0 and hi <= 65535:
            return array.astype(np.uint16)
        return array.astype(np.float32)
    raise ImageReadError(f"Image has an unsupported pixel type {dtype}: {path}")


def write_label_image(path: str | Path, labels: np.ndarray) -> Path:
    """Instance labels as a TIFF: uint16, or uint32 when there are more than
    65535 objects."""
    labels = np.asarray(labels)
    dtype = np.uint16 if int(labels.max(initial=0)) <= np.iinfo(np.uint16).max else np.uint32
    return write_image(path, labels.astype(dtype, copy=False))


def write_image(path: str | Path, array: np.ndarray, *, overwrite: bool = True) -> Path:
    """Write an image atomically. PNG (and BMP, JPEG) via Pillow for uint8 /
    uint16 arrays; TIFF via tifffile for any dtype (float kept as float32).

    Raises :class:`UserInputError` when the format cannot hold the data
    (float in PNG), and ``FileExistsError`` when ``overwrite`` is False and
    the file exists.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    array = np.asarray(array)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * np.uint8(255)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if suffix in (".tif", ".tiff"):
            import tifffile

            if array.dtype == np.float64:
                array = array.astype(np.float32)
            photometric = "rgb" if array.ndim == 3 and array.shape[-1] in (3, 4) else "minisblack"
            tifffile.imwrite(tmp, array, photometric=photometric, compression="zlib",
                             compressionargs={"level": 1})
        else:
            from PIL import Image

            if array.dtype not in (np.uint8, np.uint16):
                raise UserInputError(f"Cannot save {array.dtype} pixels as {suffix}: {path}")
            if array.dtype == np.uint16 and array.ndim == 3:
                raise UserInputError(f"Cannot save 16-bit colour as {suffix}, use .tif: {path}")
            fmt = {".png": "PNG", ".bmp": "BMP", ".jpg": "JPEG", ".jpeg": "JPEG"}.get(suffix)
            if fmt is None:
                raise UserInputError(f"Unsupported output image type '{suffix}': {path}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                options = {"compress_level": 1} if fmt == "PNG" else {}
                Image.fromarray(array).save(tmp, format=fmt, **options)
    return path
