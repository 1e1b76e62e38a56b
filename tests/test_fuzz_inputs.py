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
import pytest
import tifffile
from PIL import Image

from app import run_cli
from conftest import ROOT
from core.imageio import write_image

pytestmark = pytest.mark.slow  # loads the bundled model hundreds of times

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



# -- the user's folders under every stage ----------------------------------------------

FOLDER_CASES = 160
DAMAGED_INDEX = ["", "header", "quote", "missing", "folder", "no photo column"]
DAMAGED_PROJECT = ['[1, 2]', '{"stages": "abc"}', "[" * 20_000 + "]" * 20_000, "{half"]


def _user_extras(folder: Path, elsewhere: Path) -> None:
    """What a user keeps in a folder a stage writes to: hidden files named
    like leftovers, a link to the folder itself, links to a folder and a
    file elsewhere (another disk, say)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".thesis.partial.txt").write_text("chapter 3")
    (folder / ".staging-notes.txt").write_text("notes")
    (folder / "self").symlink_to(folder)
    (folder / "other_disk").symlink_to(elsewhere)
    (folder / "linked.txt").symlink_to(elsewhere / "data.txt")


def _damage_index(wd: Path, how: str) -> None:
    index = wd / "objects" / "index.csv"
    text = index.read_text()
    if how == "header":
        index.write_text(text.splitlines()[0] + "\n")
    elif how == "quote":
        index.write_text('"' + text)
    elif how == "missing":
        index.unlink()
    elif how == "folder":
        index.unlink()
        index.mkdir()
    elif how == "no photo column":
        index.write_text(text.replace("source_image", "photo"))
    else:
        index.write_text("")


def _folder_case(rng, root: Path, templates: Path) -> tuple[list, list[Path], str]:
    """One stage with one layout of its input and output folders: (argv,
    the folders whose every file is the user's, what the case is)."""
    import os

    for name in ("photos", "frames", "pred", "truth", "wd"):
        shutil.copytree(templates / name, root / name, symlinks=True)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "data.txt").write_text("on another disk")
    users = [root / "photos", root / "frames", root / "pred", root / "truth", elsewhere]
    photos, frames, wd = root / "photos", root / "frames", root / "wd"
    stage = ["autoseg", "label-ccd", "fit-ccd", "simulate-ccd", "evaluate", "synthesize"][int(rng.integers(0, 6))]
    pick = lambda options: options[int(rng.integers(0, len(options)))]  # noqa: E731
    extras = rng.random() < 0.6
    if stage == "autoseg":
        layout = pick(["new", "existing", "damaged index", "photos in it", "same as photos", "current folder"])
        out = {"new": root / "wd2", "same as photos": photos, "current folder": Path(".")}.get(layout, wd)
        if layout == "damaged index":
            how = pick(DAMAGED_INDEX)
            _damage_index(wd, how)
            layout += f" ({how or 'empty'})"
        if layout == "photos in it":
            shutil.move(str(photos), str(wd / "photos"))
            users[0] = photos = wd / "photos"
        if layout == "current folder":
            os.chdir(wd)
        argv = ["autoseg", "--images", photos, "--workdir", out]
        target = wd / "objects" if out in (wd, Path(".")) else out
    elif stage == "label-ccd":
        layout = pick(["new", "same as frames", "frames in it", "inside the frames folder", "current folder",
                       "empty"])
        out = {"new": root / "out", "same as frames": frames, "frames in it": root / "out",
               "inside the frames folder": frames / "out", "current folder": Path("."), "empty": ""}[layout]
        if layout == "frames in it":
            (root / "out").mkdir()
            shutil.move(str(frames), str(root / "out" / "images"))
            users[1] = frames = root / "out" / "images"
        if layout == "current folder":
            (root / "here").mkdir()
            os.chdir(root / "here")
        argv = ["label-ccd", "--frames", frames, "--out", out]
        target = root / "here" if layout == "current folder" else Path(out) if out else None
    elif stage == "fit-ccd":
        layout = pick(["new", "a frame", "among the frames", "json beside the frames", "a folder", "empty"])
        out = {"new": root / "fit.json", "a frame": frames / "frame.tif", "among the frames": frames / "fit.fits",
               "json beside the frames": frames / "fit.json", "a folder": root / "elsewhere", "empty": ""}[layout]
        argv = ["fit-ccd", "--frames", pick([frames, frames / "frame.tif"]), "--out", out]
        target = None
    elif stage == "simulate-ccd":
        layout = pick(["new", "a user's frames there", "an earlier simulation", "current folder", "empty"])
        out = root / "sim"
        if layout == "a user's frames there":
            write_image(out / "masks" / "ccd_00001.png", np.zeros((8, 8), np.uint8))
            users.append(out / "masks")
        elif layout == "an earlier simulation":
            assert run_cli(["simulate-ccd", "--out", str(out), "--count", "3", "--size", "64"]) == 0
        elif layout == "current folder":
            out.mkdir()
            os.chdir(out)
        argv = ["simulate-ccd", "--out", {"current folder": ".", "empty": ""}.get(layout, out), "--count", "2",
                "--size", "64"]
        target = out
    elif stage == "evaluate":
        layout = pick(["default", "the predictions", "the expert masks", "holding the predictions", "new"])
        out = {"the predictions": root / "pred", "the expert masks": root / "truth",
               "holding the predictions": root, "new": root / "report"}.get(layout)
        argv = ["evaluate", "--pred", root / "pred", "--truth", root / "truth"] + (["--out", out] if out else [])
        target = out if layout == "new" else None
    else:
        layout = pick(["fine", "damaged project", "damaged index"])
        if layout == "damaged project":
            (wd / "project.json").write_text(pick(DAMAGED_PROJECT))
        elif layout == "damaged index":
            _damage_index(wd, pick(DAMAGED_INDEX))
        argv = ["synthesize", "--workdir", wd, "--count", "2", "--size", "64"]
        target = wd / "synthetic"
    if extras and target is not None and not str(target) == "":
        target = target if target.is_absolute() else Path(os.getcwd()) / target
        _user_extras(target, elsewhere)
        users.extend(target / name for name in (".thesis.partial.txt", ".staging-notes.txt", "self",
                                                "other_disk", "linked.txt"))
    return argv, users, f"{stage}: {layout}{' + user files' if extras else ''}"


@pytest.fixture(scope="module")
def folder_templates(tmp_path_factory):
    from synthetic.scenes import render_particle_scene

    root = tmp_path_factory.mktemp("templates")
    for i in range(2):
        image, _ = render_particle_scene((96, 128), count=6, radius=(5, 8), seed=i)
        write_image(root / "photos" / f"p{i}.png", image)
    rng = np.random.default_rng(SEED)
    frame = rng.normal(1000, 5, (64, 80)).astype(np.float32)
    frame[20:23, 30:33] += 300
    (root / "frames").mkdir()
    tifffile.imwrite(root / "frames" / "frame.tif", frame)
    mask = np.zeros((20, 20), np.uint8)
    mask[4:9, 4:9] = 1
    write_image(root / "pred" / "a.png", mask)
    write_image(root / "truth" / "a.png", mask)
    assert run_cli(["autoseg", "--images", str(root / "photos"), "--workdir", str(root / "wd")]) == 0
    return root


def test_the_users_folders_under_every_stage(capsys, tmp_path, folder_templates, monkeypatch):
    """Outputs on inputs, links and hidden files in output folders, emptied
    pool indexes, damaged descriptions, the current folder as the output:
    each case gives exit 0 or one line with exit 2, and every file of the
    user's is byte for byte as it was (links still links)."""
    from helpers import exact_tree

    rng = np.random.default_rng(SEED)
    counts = {"tried": 0, "refused": 0, "worked": 0, "tracebacks": 0, "files changed": 0}
    problems = []
    for i in range(FOLDER_CASES):
        root = tmp_path / f"case{i}"
        root.mkdir()
        monkeypatch.chdir(tmp_path)
        argv, users, what = _folder_case(rng, root, folder_templates)
        before_all, before = exact_tree(root), exact_tree(*users)
        counts["tried"] += 1
        try:
            status, error = _run(capsys, argv)
        except Exception as exc:  # noqa: BLE001 - a traceback: counted and reported
            counts["tracebacks"] += 1
            problems.append(f"{what}: {type(exc).__name__}: {exc}")
            continue
        if status not in (0, 2) or (status == 2 and len(error.splitlines()) != 1):
            counts["tracebacks"] += 1
            problems.append(f"{what}: exit {status}, {error!r}")
        counts["refused" if status == 2 else "worked"] += 1
        # Refused: nothing at all written. Done: every file of the user's as it
        # was (the stage's own results may sit beside them).
        after = exact_tree(root) if status == 2 else exact_tree(*users)
        expected = before_all if status == 2 else before
        changed = sorted(p for p in set(after) | set(expected)
                         if after.get(p) != expected.get(p) and (status == 2 or p in expected))
        if changed:
            counts["files changed"] += 1
            problems.append(f"{what}: exit {status}, changed: {changed[:3]}")
    print(", ".join(f"{k} {v}" for k, v in counts.items()))
    assert problems == [], problems
    assert counts["refused"] >= 40 and counts["worked"] >= 40


HOLDING = """
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from core.transaction import Transaction
tx = Transaction(Path({home!r})).__enter__()
tx.stage(Path({part!r}))
print("held", flush=True)
time.sleep(120)
"""


def test_concurrent_runs_on_one_folder_are_refused(capsys, tmp_path, folder_templates):
    """A second training on a model folder that is being trained, or that a
    self-training round is changing, and an auto-segmentation into a pool
    that another run is changing: each is refused in one line, and the
    folder is as it was."""
    import subprocess
    import sys

    from helpers import exact_tree

    wd = tmp_path / "wd"
    shutil.copytree(folder_templates / "wd", wd)
    (wd / "model").mkdir()
    (wd / "model" / "history.csv").write_text("epoch,loss\n1,0.5\n")
    data = tmp_path / "data"
    shutil.copytree(folder_templates / "pred", data / "images")
    shutil.copytree(folder_templates / "truth", data / "masks")
    cases = [("train on a model being trained", wd / "model", wd / "model",
              ["train", "--data", data, "--model", wd / "model", "--epochs", "1"]),
             ("train on a model a round is changing", wd, wd / "model",
              ["train", "--data", data, "--model", wd / "model", "--epochs", "1"]),
             ("auto-segment into a pool being changed", wd, wd / "objects",
              ["autoseg", "--images", folder_templates / "photos", "--workdir", wd])]
    for what, home, part, argv in cases:
        home = part.parent if home == part else home
        child = subprocess.Popen([sys.executable, "-c", HOLDING.format(root=str(ROOT), home=str(home),
                                                                       part=str(part))],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "held"
            before = exact_tree(wd)
            status, error = _run(capsys, argv)
            assert status == 2 and "is being changed by another run" in error, (what, status, error)
            assert len(error.splitlines()) == 1 and exact_tree(wd) == before, what
        finally:
            child.kill()
            child.wait()
    print(f"{len(cases)} concurrent runs: {len(cases)} refused, tracebacks 0, files changed 0")
