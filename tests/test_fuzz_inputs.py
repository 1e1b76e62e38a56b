"""Malformed inputs, made from a fixed seed: a few hundred broken images
and a few dozen edited model descriptions.

Each goes through the command line (in this process, as ``app.py`` runs
it). Whatever the input, there is no traceback: the command either
finishes (exit 0) or refuses with exit 2 and one message naming the file,
and a refused input leaves nothing written.
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from app import run_cli
from conftest import ROOT
from core.imageio import write_image

SEED = 20261202
BUNDLED = ROOT / "checkpoints"


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _tiff(array: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, array, **kwargs)
    return buf.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _bmp(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="BMP")
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` over a tiny body."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def malformed_images(rng: np.random.Generator) -> list[tuple[str, bytes]]:
    """(file name, bytes) of broken, odd and extreme images."""
    h, w = 48, 64
    scene = (rng.random((h, w)) * 60 + 100).astype(np.uint8)
    scene[10:24, 12:30] = 30
    valid = {
        "png": _png(scene), "png16": _png(scene.astype(np.uint16) * 257), "rgb.png": _png(np.dstack([scene] * 3)),
        "jpg": _jpeg(np.dstack([scene] * 3)), "bmp": _bmp(scene), "tif": _tiff(scene),
        "f32.tif": _tiff(scene.astype(np.float32) / 255), "rgb.tif": _tiff(np.dstack([scene] * 3), photometric="rgb"),
    }
    ext = {"png": ".png", "png16": ".png", "rgb.png": ".png", "jpg": ".jpg", "bmp": ".bmp", "tif": ".tif",
           "f32.tif": ".tif", "rgb.tif": ".tif"}
    out: list[tuple[str, bytes]] = []
    for name, data in valid.items():
        suffix = ext[name]
        stem = name.split(".")[0]
        out.append((f"{stem}_valid{suffix}", data))
        for i in range(8):  # truncated anywhere
            out.append((f"{stem}_cut{i}{suffix}", data[: int(rng.integers(0, len(data)))]))
        for i in range(10):  # bytes flipped in the header
            broken = bytearray(data)
            for _ in range(int(rng.integers(1, 5))):
                k = int(rng.integers(0, min(len(broken), 96)))
                broken[k] ^= int(rng.integers(1, 256))
            out.append((f"{stem}_header{i}{suffix}", bytes(broken)))
        for i in range(4):  # bytes flipped anywhere
            broken = bytearray(data)
            for _ in range(int(rng.integers(1, 40))):
                k = int(rng.integers(0, len(broken)))
                broken[k] = int(rng.integers(0, 256))
            out.append((f"{stem}_body{i}{suffix}", bytes(broken)))
    for width, height in ((0, 10), (10, 0), (1, 1), (1, 5000), (100_000, 100_000), (2**31 - 1, 2**31 - 1)):
        out.append((f"size_{width}x{height}.png", _png_with_size(width, height)))
    for channels in (2, 5, 7):
        out.append((f"channels{channels}.tif", _tiff(rng.integers(0, 4000, (h, w, channels), dtype=np.uint16),
                                                     photometric="minisblack")))
    for dtype in (np.int8, np.int16, np.int32, np.uint32, np.float64, np.float16, np.bool_, np.complex64):
        array = (rng.random((h, w)) * 100).astype(dtype)
        out.append((f"dtype_{np.dtype(dtype).name}.tif", _tiff(array)))
    out.append(("stack.tif", _tiff(rng.integers(0, 255, (4, h, w), dtype=np.uint8))))
    out.append(("volume.tif", _tiff(rng.integers(0, 255, (3, 5, h, w), dtype=np.uint8))))
    out.append(("nan.tif", _tiff(np.full((h, w), np.nan, np.float32))))
    out.append(("inf.tif", _tiff(np.where(rng.random((h, w)) > 0.5, np.inf, -np.inf).astype(np.float32))))
    out.append(("empty.png", b""))
    out.append(("text.png", b"not an image at all\n" * 10))
    out.append(("random.tif", rng.bytes(2000)))
    out.append(("random.jpg", rng.bytes(2000)))
    out.append(("png_named.jpg", valid["png"]))
    out.append(("tiny_1x1.png", _png(np.zeros((1, 1), np.uint8))))
    out.append(("line_1x300.png", _png(np.zeros((1, 300), np.uint8))))
    return out


def _folder_digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")} if folder.exists() else {}


def _run(capsys, argv) -> tuple[int, str]:
    try:
        status = run_cli([str(a) for a in argv])
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    return status, "\n".join(line for line in err.splitlines() if line.startswith("error:"))


def test_a_few_hundred_malformed_images(capsys, tmp_path):
    rng = np.random.default_rng(SEED)
    inputs = malformed_images(rng)
    assert len(inputs) >= 200
    outcomes = {0: 0, 2: 0}
    for i, (name, data) in enumerate(inputs):
        photos = tmp_path / f"in{i}"
        photos.mkdir()
        photo = photos / name
        photo.write_bytes(data)
        wd = tmp_path / f"wd{i}"
        status, error = _run(capsys, ["autoseg", "--images", photo, "--workdir", wd])
        assert status in (0, 2), (name, status)
        outcomes[status] += 1
        if status == 2:
            assert name in error and len(error.splitlines()) == 1, (name, error)
            assert not any(p for p in wd.rglob("*") if p.is_file()), f"{name}: refused, yet files were written"
        assert photo.read_bytes() == data  # the photo is never changed
        shutil.rmtree(wd, ignore_errors=True)
    print(f"{len(inputs)} images: {outcomes[0]} read, {outcomes[2]} refused with a message")
    assert outcomes[0] >= 20 and outcomes[2] >= 50


def edited_descriptions(rng: np.random.Generator, meta: dict) -> list[tuple[str, dict]]:
    """Model descriptions with keys removed, retyped or set to absurd values."""
    odd_values = ["abc", -64, 0, 1e308, None, [], {}, [1, 2], True, float("nan"), 10**12, "", {"mode": "x"}]
    out = []
    for key in sorted(meta):
        edited = copy.deepcopy(meta)
        del edited[key]
        out.append((f"without {key}", edited))
    keys = ["classes", "num_classes", "normalization", "architecture", "tile_size", "patch_size", "object_diameter",
            "epochs_done", "best_epoch", "metrics", "format"]
    for _i in range(30):
        edited = copy.deepcopy(meta)
        key = keys[int(rng.integers(0, len(keys)))]
        value = odd_values[int(rng.integers(0, len(odd_values)))]
        if key in ("normalization", "architecture") and rng.random() < 0.5:
            inner = sorted(edited[key])
            sub = inner[int(rng.integers(0, len(inner)))]
            edited[key][sub] = value
            out.append((f"{key}.{sub} = {value!r}", edited))
        else:
            edited[key] = value
            out.append((f"{key} = {value!r}", edited))
    return out


def test_edited_model_descriptions(capsys, tmp_path):
    rng = np.random.default_rng(SEED)
    photos = tmp_path / "photos"
    photos.mkdir()
    image = (rng.random((48, 64)) * 60 + 100).astype(np.uint8)
    image[10:24, 12:30] = 30
    write_image(photos / "p.png", image)
    meta = json.loads((BUNDLED / "model.json").read_text())
    cases = edited_descriptions(rng, meta)
    outcomes = {0: 0, 2: 0}
    for i, (what, edited) in enumerate(cases):
        model = tmp_path / f"model{i}"
        model.mkdir()
        (model / "model.keras").symlink_to(BUNDLED / "model.keras")
        (model / "model.json").write_text(json.dumps(edited))
        before = _folder_digest(model)
        out = tmp_path / f"out{i}"
        status, error = _run(capsys, ["segment", "--model", model, "--images", photos, "--out", out, "--scale", "1"])
        assert status in (0, 2), (what, status)
        outcomes[status] += 1
        if status == 2:
            assert "model.json" in error and len(error.splitlines()) == 1, (what, error)
            assert not out.exists(), f"{what}: refused, yet {out} was written"
        assert _folder_digest(model) == before
    print(f"{len(cases)} model descriptions: {outcomes[0]} used, {outcomes[2]} refused with a message")
    assert outcomes[2] >= 20

