import numpy as np
import pytest
import tifffile
from PIL import Image

from core import imageio
from core.errors import ImageReadError, UserInputError
from core.gray import is_blank, to_display_uint8, to_gray_float
from core.imageio import list_images, read_image, write_image


def test_png_8_and_16_bit_keep_their_dtype(tmp_path):
    a8 = np.arange(200, dtype=np.uint8).reshape(10, 20)
    a16 = (np.arange(200, dtype=np.uint16) * 300).reshape(10, 20)
    write_image(tmp_path / "a8.png", a8)
    write_image(tmp_path / "a16.png", a16)
    assert read_image(tmp_path / "a8.png").dtype == np.uint8
    b16 = read_image(tmp_path / "a16.png")
    assert b16.dtype == np.uint16 and np.array_equal(b16, a16)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [None, 3, 4])
def test_tiff_gray_rgb_rgba_all_dtypes(tmp_path, dtype, channels):
    shape = (12, 16) if channels is None else (12, 16, channels)
    rng = np.random.default_rng(0)
    data = (rng.random(shape) * (1 if dtype == np.float32 else np.iinfo(dtype).max)).astype(dtype)
    tifffile.imwrite(tmp_path / "x.tif", data, photometric="minisblack" if channels is None else "rgb")
    out = read_image(tmp_path / "x.tif")
    assert out.dtype == dtype and out.shape == shape
    assert np.array_equal(out, data)
    gray = to_gray_float(out)
    assert gray.shape == (12, 16) and gray.dtype == np.float32
    assert 0.0 <= gray.min() and gray.max() <= 1.0


def test_tiff_stack_uses_first_page_and_warns(tmp_path):
    stack = np.stack([np.full((8, 9), i, np.uint16) for i in range(5)])
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    warnings = []
    out = read_image(tmp_path / "stack.tif", warn=warnings.append)
    assert out.shape == (8, 9) and out.max() == 0
    assert warnings and "first" in warnings[0]


@pytest.mark.parametrize("channels", [2, 5])
@pytest.mark.parametrize("layout", ["pages", "contig", "planar"])
def test_tiff_with_two_or_five_channels_gives_the_whole_first_channel(tmp_path, channels, layout):
    rng = np.random.default_rng(channels)
    data = rng.integers(0, 4000, (40, 30, channels), dtype=np.uint16)
    if layout == "pages":  # how tifffile and others write samples-last arrays of odd channel counts
        tifffile.imwrite(tmp_path / "x.tif", data, photometric="minisblack")
    elif layout == "contig":
        tifffile.imwrite(tmp_path / "x.tif", data, photometric="minisblack", planarconfig="contig",
                         extrasamples=[0] * (channels - 1))
    else:
        tifffile.imwrite(tmp_path / "x.tif", np.moveaxis(data, -1, 0), photometric="minisblack",
                         planarconfig="separate", extrasamples=[0] * (channels - 1))
    warnings = []
    out = read_image(tmp_path / "x.tif", warn=warnings.append)
    assert out.shape == (40, 30) and np.array_equal(out, data[..., 0])
    assert (channels == 5) == any("5 channels" in w for w in warnings)


def test_output_stems_never_collide_and_do_not_depend_on_the_neighbours_processed(tmp_path):
    for name in ("a.png", "a.jpg", "b.png", "notes.txt", "notes.png"):
        (tmp_path / name).write_bytes(b"x")
    files = [tmp_path / n for n in ("a.png", "a.jpg", "b.png", "notes.png")]
    assert imageio.output_stems(files) == {files[0]: "a_png", files[1]: "a_jpg", files[2]: "b", files[3]: "notes"}
    assert imageio.output_stem(tmp_path / "a.jpg") == "a_jpg"


def test_blank_photos():
    assert is_blank(np.full((5, 5), 7, np.uint16))
    assert is_blank(np.full((5, 5, 3), 7, np.uint8))
    assert is_blank(np.full((5, 5), np.nan, np.float32))
    nan_but_one = np.full((5, 5), np.nan, np.float32)
    nan_but_one[0, 0] = 1.0
    assert is_blank(nan_but_one)
    nan_but_one[1, 1] = 2.0
    assert not is_blank(nan_but_one)
    assert not is_blank(np.eye(5, dtype=np.uint8))


def test_a_16_bit_colour_png_is_not_made_8_bit_silently(tmp_path):
    import struct
    import zlib

    h, w = 20, 30
    data = (np.arange(h * w * 3).reshape(h, w, 3) * 70).astype(">u2")
    raw = b"".join(b"\x00" + data[r].tobytes() for r in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    (tmp_path / "rgb48.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                                         + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    warnings = []
    out = read_image(tmp_path / "rgb48.png", warn=warnings.append)
    assert out.shape == (h, w, 3)
    assert len(warnings) == 1 and "16-bit colour PNG" in warnings[0] and "TIFF" in warnings[0]
    write_image(tmp_path / "gray16.png", np.arange(600, dtype=np.uint16).reshape(20, 30) * 100)
    assert read_image(tmp_path / "gray16.png", warn=warnings.append).dtype == np.uint16 and len(warnings) == 1


def test_jpeg_exif_orientation_is_honoured(tmp_path):
    data = np.zeros((20, 40, 3), np.uint8)
    data[:, :10] = 255  # a white stripe on the left
    im = Image.fromarray(data)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "rot.jpg")
    assert out.shape == (40, 20, 3)
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # stripe now at the top


def test_bmp_and_palette_images(tmp_path):
    data = (np.random.default_rng(1).random((10, 10, 3)) * 255).astype(np.uint8)
    Image.fromarray(data).save(tmp_path / "x.bmp")
    assert read_image(tmp_path / "x.bmp").shape == (10, 10, 3)
    Image.fromarray(data).convert("P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (10, 10, 3)


def test_percentile_scaling_is_not_divide_by_65535():
    twelve_bit = np.linspace(200, 4000, 10000).reshape(100, 100).astype(np.uint16)
    gray = to_gray_float(twelve_bit)
    assert gray.min() == 0.0 and gray.max() == 1.0
    assert abs(float(np.median(gray)) - 0.5) < 0.02


def test_constant_image_is_all_zeros_not_nan():
    assert not np.isnan(to_gray_float(np.full((5, 5), 7, np.uint8))).any()


def test_display_of_float_frames_is_never_black():
    frame = np.random.default_rng(2).normal(1000, 5, (32, 32)).astype(np.float32)
    shown = to_display_uint8(frame)
    assert shown.dtype == np.uint8 and shown.std() > 30


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"this is not an image", "Cannot read"),
])
def test_corrupt_and_empty_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=match) as info:
        read_image(path)
    assert "bad.png" in str(info.value)


def test_truncated_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "t.tif", np.zeros((64, 64), np.uint16))
    data = (tmp_path / "t.tif").read_bytes()
    (tmp_path / "t.tif").write_bytes(data[:200])
    with pytest.raises(ImageReadError, match="t.tif"):
        read_image(tmp_path / "t.tif")


def test_unsupported_and_missing(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageReadError, match="Unsupported"):
        read_image(tmp_path / "notes.txt")
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "nothing.png")


def test_enormous_image_is_refused_before_decoding(tmp_path, monkeypatch):
    write_image(tmp_path / "big.png", np.zeros((100, 100), np.uint8))
    monkeypatch.setattr(imageio, "MAX_PIXELS", 5000)
    with pytest.raises(ImageReadError, match="enormous"):
        read_image(tmp_path / "big.png")


def test_list_images_missing_empty_and_sorted(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        list_images(tmp_path / "nope")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "readme.txt").write_text("x")
    with pytest.raises(UserInputError, match="holds no images"):
        list_images(tmp_path / "d")
    for name in ("b.png", "a.TIF", ".hidden.png"):
        (tmp_path / "d" / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path / "d")] == ["a.TIF", "b.png"]


def test_write_is_atomic_and_can_refuse_overwrite(tmp_path):
    write_image(tmp_path / "x.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(FileExistsError):
        write_image(tmp_path / "x.png", np.ones((4, 4), np.uint8), overwrite=False)
    assert read_image(tmp_path / "x.png").max() == 0
    with pytest.raises(UserInputError):
        write_image(tmp_path / "f.png", np.zeros((4, 4), np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]  # no temporary left behind
