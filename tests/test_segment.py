"""The segment stage and the pipeline, with a real (tiny) trained model."""

import csv
import json

import numpy as np
import pytest

from core.errors import UserInputError
from core.imageio import read_image, write_image
from helpers import run_app, tiny_training
from inference import SegmentSettings, run_segment
from loop import PipelineSettings, run_pipeline
from synthetic.scenes import render_particle_scene

pytestmark = pytest.mark.slow  # trains and loads a model


@pytest.fixture(scope="module")
def trained(tiny_project):
    """Two photos and a tiny model trained on them (conftest.tiny_project)."""
    return tiny_project


def test_segment_writes_every_output(trained, tmp_path):
    result = run_segment(trained / "model", trained / "photos", tmp_path / "out")
    out = tmp_path / "out"
    assert result.photos == 2 and result.objects > 0
    for stem in ("p0", "p1"):
        for suffix in ("_mask.png", "_labels.tif", "_overlay.png", "_objects.csv"):
            assert (out / f"{stem}{suffix}").exists(), stem + suffix
        mask = read_image(out / f"{stem}_mask.png")
        assert mask.dtype == np.uint8 and mask.shape == (96, 128)
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == 2
    with open(out / "objects.csv", newline="", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == result.objects
    assert (out / "size_histogram.png").exists()
    info = json.loads((out / "segment.json").read_text())
    assert set(info["scales"]) == {"p0.png", "p1.png"}
    # the model saw objects about 16 px across and is shown them at 2 times that; these photos'
    # are about 17 px, so they are enlarged (a tiny model measures them a little small, and the
    # check a step either side may enlarge them once more), never shrunk, never beyond the limit
    assert all(1.0 < s <= 4.0 for s in info["scales"].values())


def test_photos_with_one_stem_and_two_extensions_keep_their_own_results(trained, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_image(photos / "a.png", read_image(trained / "photos" / "p0.png"))
    write_image(photos / "a.tif", read_image(trained / "photos" / "p1.png"))
    run_segment(trained / "model", photos, tmp_path / "out", settings=SegmentSettings(scale=1.0))
    out = tmp_path / "out"
    for stem, source in (("a_png", "p0.png"), ("a_tif", "p1.png")):
        alone = run_segment(trained / "model", trained / "photos" / source, tmp_path / f"alone_{stem}",
                            settings=SegmentSettings(scale=1.0))
        assert alone.photos == 1
        assert np.array_equal(read_image(out / f"{stem}_mask.png"),
                              read_image(tmp_path / f"alone_{stem}" / f"{source[:-4]}_mask.png"))
    assert not (out / "a_mask.png").exists()
    with open(out / "summary.csv", newline="", encoding="utf-8") as fh:
        assert sorted(r["image"] for r in csv.DictReader(fh)) == ["a.png", "a.tif"]


def test_a_blank_photo_has_no_objects(trained, tmp_path):
    write_image(tmp_path / "grey.png", np.full((96, 128), 128, np.uint8))
    write_image(tmp_path / "nan.tif", np.full((96, 128), np.nan, np.float32))
    result = run_segment(trained / "model", tmp_path, tmp_path / "out")
    assert result.photos == 2 and result.objects == 0
    assert read_image(tmp_path / "out" / "grey_mask.png").max() == 0


def test_segment_finds_the_particles(trained, tmp_path):
    image, truth = render_particle_scene((192, 256), count=14, radius=(6, 11), seed=77)
    write_image(tmp_path / "new.png", image)
    run_segment(trained / "model", tmp_path / "new.png", tmp_path / "out")
    mask = read_image(tmp_path / "out" / "new_mask.png") > 0
    iou = (mask & (truth > 0)).sum() / (mask | (truth > 0)).sum()
    assert iou > 0.6


def test_fixed_scale_is_obeyed(trained, tmp_path):
    result = run_segment(trained / "model", trained / "photos" / "p0.png", tmp_path / "out",
                         settings=SegmentSettings(scale=0.5))
    assert result.scales == {"p0.png": 0.5}


def test_bad_model_folder_and_photos(trained, tmp_path):
    (tmp_path / "empty_model").mkdir()
    with pytest.raises(UserInputError, match="model.json"):
        run_segment(tmp_path / "empty_model", trained / "photos", tmp_path / "out")
    with pytest.raises(UserInputError, match="does not exist"):
        run_segment(trained / "model", tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(UserInputError, match="is the photos .* itself"):
        run_segment(trained / "model", trained / "photos", trained / "photos")


def test_segment_cli(trained, tmp_path, monkeypatch):
    ok = run_app("segment", "--model", trained / "model", "--images", trained / "photos", "--out", tmp_path / "o")
    assert ok.returncode == 0, ok.stderr
    assert "Segmented 2 photo(s)" in ok.stdout
    assert "The network runs on ONNX Runtime" in ok.stderr  # a computer without a graphics card
    assert "oneDNN" not in ok.stderr and "Traceback" not in ok.stderr
    assert json.loads((tmp_path / "o" / "segment.json").read_text())["settings"]["flips"] == "auto"
    always = run_app("segment", "--model", trained / "model", "--images", trained / "photos", "--out",
                     tmp_path / "o", "--mirrors", "always")
    assert always.returncode == 0, always.stderr
    assert json.loads((tmp_path / "o" / "segment.json").read_text())["settings"]["flips"] is True
    wrong = run_app("segment", "--model", trained / "model", "--images", trained / "photos", "--out",
                    tmp_path / "o", "--mirrors", "sometimes")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr and "--mirrors" in wrong.stderr
    quick = run_app("segment", "--model", trained / "model", "--images", trained / "photos", "--out", tmp_path / "o",
                    "--no-mirrors")
    assert quick.returncode == 0, quick.stderr
    assert json.loads((tmp_path / "o" / "segment.json").read_text())["settings"]["flips"] is False
    assert "2 of 2 photo(s) done before" not in quick.stderr  # another setting: both photos segmented again
    plain = run_app("segment", "--model", trained / "model", "--images", trained / "photos", "--out", tmp_path / "o",
                    "--no-mirrors", "--model-only")
    assert plain.returncode == 0, plain.stderr
    assert json.loads((tmp_path / "o" / "segment.json").read_text())["settings"]["fallback"] is False
    monkeypatch.setenv("SEGLOOP_RUNTIME", "tensorflow")
    kept = run_app("segment", "--model", trained / "model", "--images", trained / "photos", "--out", tmp_path / "tf")
    assert kept.returncode == 0 and "The network runs on TensorFlow" in kept.stderr, kept.stderr
    monkeypatch.delenv("SEGLOOP_RUNTIME")
    bad = run_app("segment", "--model", tmp_path, "--images", trained / "photos", "--out", tmp_path / "o2")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_segment_cli_reports_sizes_in_the_given_unit(trained, tmp_path):
    import csv

    from measurement import calibration_from_pixel_size, save_calibration

    typed = run_app("segment", "--model", trained / "model", "--images", trained / "photos",
                    "--out", tmp_path / "typed", "--pixel-size", "0.5", "--unit", "nm")
    assert typed.returncode == 0, typed.stderr
    with open(tmp_path / "typed" / "objects.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(abs(float(r["equivalent_diameter_nm"]) - 0.5 * float(r["equivalent_diameter_px"])) < 1e-3
                        for r in rows)
    workdir = tmp_path / "wd"
    workdir.mkdir()
    save_calibration(workdir, calibration_from_pixel_size(2.0, "µm"))
    stored = run_app("segment", "--model", trained / "model", "--images", trained / "photos",
                     "--out", tmp_path / "stored", "--workdir", workdir)
    assert stored.returncode == 0, stored.stderr
    with open(tmp_path / "stored" / "objects.csv", encoding="utf-8") as fh:
        assert "area_um2" in next(csv.reader(fh))
    bad = run_app("segment", "--model", trained / "model", "--images", trained / "photos",
                  "--out", tmp_path / "bad", "--pixel-size", "-3")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
    fixed = run_app("segment", "--model", trained / "model", "--images", trained / "photos" / "p0.png",
                    "--out", tmp_path / "fixed", "--scale", "0.5")
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads((tmp_path / "fixed" / "segment.json").read_text())["scales"] == {"p0.png": 0.5}
    absurd = run_app("segment", "--model", trained / "model", "--images", trained / "photos",
                     "--out", tmp_path / "absurd", "--scale", "100")
    assert absurd.returncode == 2 and "--scale" in absurd.stderr and not (tmp_path / "absurd").exists()


def test_pipeline_runs_every_stage(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    image, _ = render_particle_scene((160, 200), count=10, radius=(6, 10), seed=5)
    write_image(photos / "a.png", image)
    settings = PipelineSettings(synthetic_count=12, synthetic_size=64, train=tiny_training(epochs=2))
    result = run_pipeline(photos, tmp_path / "wd", tmp_path / "model", settings=settings)
    assert list(result.steps) == ["auto-segmentation", "synthesis", "training", "segmentation"]
    assert (tmp_path / "wd" / "segmented" / "a_mask.png").exists()
    assert (tmp_path / "model" / "model.keras").exists()
    assert "segmentation:" in result.summary()


def test_object_size_is_not_dragged_down_by_specks():
    from inference.scale import median_diameter

    mask = np.zeros((400, 400), bool)
    yy, xx = np.mgrid[:400, :400]
    for cy, cx in ((80, 80), (80, 250), (250, 120), (260, 300)):
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= 40 ** 2
    for k in range(30):  # specks, more of them than particles
        mask[370 + (k // 15) * 10, 10 + (k % 15) * 12] = True
    assert abs(median_diameter(mask) - 80) < 3
    assert median_diameter(np.zeros((10, 10), bool)) == 0.0


def test_scale_bar_and_letters_are_not_objects():
    from inference.marks import find_marks, without_marks
    from synthetic.scenes import draw_panel_letter, draw_scale_bar

    image = np.full((300, 400), 180, np.uint8)
    yy, xx = np.mgrid[:300, :400]
    particle = (yy - 150) ** 2 + (xx - 200) ** 2 <= 40 ** 2
    image[particle] = 90
    bar = draw_scale_bar(image)
    letter = draw_panel_letter(image)
    marks = find_marks(image)
    assert marks is not None
    # a model that marks the particle, the bar and the letter as objects
    mask = particle.astype(np.uint8)
    for r0, c0, r1, c1 in (bar, letter):
        mask[r0:r1, c0:c1] |= (image[r0:r1, c0:c1] == 0)
    cleaned = without_marks(mask, marks)
    assert np.array_equal(cleaned > 0, particle)
    assert without_marks(particle.astype(np.uint8), None).sum() == particle.sum()


def test_object_certainty():
    from inference.scale import object_certainty

    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 1
    sure = np.where(mask > 0, 0.99, 0.01).astype(np.float32)
    hesitant = np.where(mask > 0, 0.6, 0.01).astype(np.float32)
    assert object_certainty(mask, sure) == pytest.approx(0.98)
    assert object_certainty(mask, hesitant) == pytest.approx(0.2)
    assert object_certainty(np.zeros_like(mask), sure) == 0.0


def test_automatic_scale_is_where_the_model_is_surest(trained):
    from inference import segment_photo
    from inference.predict import load_model, predict_mask
    from inference.scale import (
        CLEARLY_SURER,
        FIRST_LOOK,
        SCALE_STEP,
        SIZE_MARGIN,
        clip_scale,
        estimate_scale,
        median_diameter,
        object_certainty,
        smallest_scale,
    )

    model, meta = load_model(trained / "model")
    image, _ = render_particle_scene((192, 256), count=10, radius=(12, 20), seed=7)
    _, chosen = segment_photo(model, meta, image)
    first = clip_scale(FIRST_LOOK / 256, image.shape)
    seen = median_diameter(predict_mask(model, meta, image, scale=first))  # the photo's pixels
    start = clip_scale(meta["object_diameter"] * SIZE_MARGIN / seen, image.shape)
    steps = (1 / SCALE_STEP, 1.0, SCALE_STEP)
    candidates = [clip_scale(start * f, image.shape) for f in steps]
    candidates.append(smallest_scale(image.shape))
    classical = estimate_scale(image, meta)
    if abs(np.log(classical / start)) > np.log(SCALE_STEP) * 1.01:
        candidates += [clip_scale(classical * f, image.shape) for f in steps]
    assert min(abs(chosen - c) for c in candidates) < 1e-9
    certainty = [object_certainty(*predict_mask(model, meta, image, scale=c, return_foreground=True))
                 for c in candidates]
    best = int(np.argmax(certainty))
    expected = candidates[best] if certainty[best] > certainty[1] + CLEARLY_SURER else candidates[1]
    assert chosen == pytest.approx(expected)


def test_the_chosen_scale_is_not_predicted_twice(trained, monkeypatch):
    """The scale check predicted the photo at the scale it chose: the
    photo's own prediction there reuses it, with the same mask."""
    import inference.predict as predict
    from inference import segment_photo

    model, meta = predict.load_model(trained / "model")
    image, _ = render_particle_scene((192, 256), count=10, radius=(12, 20), seed=7)
    real, calls = predict.predict_mask, []

    def recording(model, meta, image, **kwargs):
        calls.append((kwargs.get("scale"), kwargs.get("known") is not None, kwargs.get("flips", False)))
        return real(model, meta, image, **kwargs)
    monkeypatch.setattr(predict, "predict_mask", recording)
    mask, chosen, foreground = segment_photo(model, meta, image, flips=True, threshold=0.5, return_foreground=True)
    assert len(calls) > 2 and calls[-1] == (chosen, True, True)
    assert [c for c in calls[:-1] if c[0] == chosen] == [(chosen, False, False)]  # predicted there once
    expected_mask, expected = real(model, meta, image, scale=chosen, flips=True, threshold=0.5,
                                   return_foreground=True)
    np.testing.assert_allclose(foreground, expected, atol=1e-5)
    assert (mask != expected_mask).sum() <= (np.abs(expected - 0.5) < 1e-5).sum()


def test_a_particle_filling_half_the_photo_is_found_whole(trained):
    """Started at a scale where the particle is far larger than any the
    model was trained on (as when a first look measured specks of its
    texture), the check still finds it: the photo at its smallest scale
    is a candidate too."""
    from inference import segment_photo
    from inference.predict import load_model
    from inference.scale import SCALE_STEP, clip_scale, smallest_scale

    model, meta = load_model(trained / "model")
    image, truth = render_particle_scene((256, 256), count=1, radius=(90, 100), seed=3)
    mask, chosen = segment_photo(model, meta, image, start=2.0)
    candidates = [clip_scale(2.0 * f, image.shape) for f in (1 / SCALE_STEP, 1.0, SCALE_STEP)]
    assert min(abs(chosen - c) for c in candidates + [smallest_scale(image.shape)]) < 1e-9
    found, truth = mask > 0, truth > 0
    assert (found & truth).sum() / (found | truth).sum() > 0.7


def test_auto_segmentation_scale_is_a_candidate_when_the_first_look_sees_texture(monkeypatch):
    """Large particles whose texture the model's first look takes for small
    objects: the first look asks for the photo enlarged four times, where
    the model finds nothing. Auto-segmentation saw the particles, so its
    scale is tried too, and the model is surest there."""
    import inference.predict as predict
    from inference import segment_photo
    from inference.scale import FIRST_LOOK, SCALE_STEP, SIZE_MARGIN, clip_scale, estimate_scale

    image, truth = render_particle_scene((256, 256), count=3, radius=(40, 50), seed=5)
    meta = {"classes": ["background", "object"], "object_diameter": 16.0,
            "normalization": {"mode": "percentile", "low": 0.5, "high": 99.5}}
    monkeypatch.setattr("inference.scale.CHECK_SIDE", 0)  # judged on the whole photo (parts: test_scale_check)
    first = clip_scale(FIRST_LOOK / 256, image.shape)
    classical = estimate_scale(image, meta)
    assert classical < 0.5  # auto-segmentation saw particles of about 90 pixels
    asked = []

    def fake_predict(model, meta, image, *, scale=1.0, return_foreground=False, **kwargs):
        asked.append(round(scale, 4))
        if scale == first:  # the first look: specks of texture, 2 pixels across
            mask = np.zeros(image.shape[:2], np.uint8)
            mask[::8, ::8] = 1
        else:
            mask = (truth > 0).astype(np.uint8)
        # Sure of its objects only near the scale the particles call for.
        sure = 0.99 if abs(np.log(scale / classical)) < 0.2 else 0.6
        foreground = np.where(mask > 0, sure, 0.01).astype(np.float32)
        return (mask, foreground) if return_foreground else mask
    monkeypatch.setattr(predict, "predict_mask", fake_predict)
    _, chosen = segment_photo(None, meta, image, flips=False)
    start = clip_scale(16.0 * SIZE_MARGIN / np.sqrt(4 / np.pi), image.shape)
    assert start == pytest.approx(clip_scale(4.0, image.shape))  # the first look's mistake
    assert chosen == pytest.approx(clip_scale(classical, image.shape))
    assert any(abs(a - round(classical * SCALE_STEP, 4)) < 1e-3 for a in asked)


def test_the_first_look_measures_objects_in_the_photos_pixels(monkeypatch):
    """The first look's mask is the photo's size, so the objects it sees are
    measured in the photo's pixels: on a photo the first look reduces (a
    1024-pixel photo seen at 448), the check starts at the scale that
    brings them to SIZE_MARGIN times the training size and, auto-
    segmentation agreeing, tries only its neighbours and the smallest scale."""
    import inference.predict as predict
    from inference import segment_photo
    from inference.scale import SCALE_STEP, SIZE_MARGIN, clip_scale, median_diameter, smallest_scale

    image, truth = render_particle_scene((768, 1024), count=40, radius=(20, 22), seed=2)
    meta = {"classes": ["background", "object"], "object_diameter": 16.0,
            "normalization": {"mode": "percentile", "low": 0.5, "high": 99.5}}
    monkeypatch.setattr("inference.scale.CHECK_SIDE", 0)
    right = clip_scale(16.0 * SIZE_MARGIN / median_diameter(truth), image.shape)
    asked = []

    def fake_predict(model, meta, image, *, scale=1.0, return_foreground=False, **kwargs):
        asked.append(scale)
        mask = (truth > 0).astype(np.uint8)
        foreground = np.where(mask > 0, 0.99 if abs(np.log(scale / right)) < 0.1 else 0.7, 0.01)
        return (mask, foreground.astype(np.float32)) if return_foreground else mask
    monkeypatch.setattr(predict, "predict_mask", fake_predict)
    _, chosen = segment_photo(None, meta, image)
    assert chosen == pytest.approx(right, rel=0.02)  # measured on the mask at about the first look's size
    checked = sorted(asked[1:-1])  # after the first look, before the final prediction
    expected = sorted({smallest_scale(image.shape), chosen / SCALE_STEP, chosen, chosen * SCALE_STEP})
    assert checked == pytest.approx(expected)


def test_a_start_scale_is_checked_against_the_first_look(monkeypatch):
    """A photo last segmented at a wrong scale (enlarged four times, where
    the model drew specks) is not held there: the check starts at the
    earlier scale and tries the first look's reading too, and the model is
    surest there. Where it is surest at the earlier scale, that stays."""
    import inference.predict as predict
    from inference import segment_photo
    from inference.scale import SIZE_MARGIN, median_diameter

    image, truth = render_particle_scene((256, 256), count=4, radius=(16, 18), seed=5)
    meta = {"classes": ["background", "object"], "object_diameter": 16.0,
            "normalization": {"mode": "percentile", "low": 0.5, "high": 99.5}}
    monkeypatch.setattr("inference.scale.CHECK_SIDE", 0)  # judged on the whole photo (parts: test_scale_check)
    read = 16.0 * SIZE_MARGIN / median_diameter(truth)  # the first look's reading
    assert read < 4.0 / 2
    surest = {}

    def fake_predict(model, meta, image, *, scale=1.0, return_foreground=False, **kwargs):
        mask = (truth > 0).astype(np.uint8)
        sure = 0.99 if abs(np.log(scale / surest["at"])) < 0.2 else 0.6
        foreground = np.where(mask > 0, sure, 0.01).astype(np.float32)
        return (mask, foreground) if return_foreground else mask
    monkeypatch.setattr(predict, "predict_mask", fake_predict)
    surest["at"] = read
    _, chosen = segment_photo(None, meta, image, start=4.0)
    assert chosen == pytest.approx(read, rel=1e-3)
    surest["at"] = 4.0
    _, chosen = segment_photo(None, meta, image, start=4.0)
    assert chosen == pytest.approx(4.0)


def test_the_scales_of_the_last_segmentation_are_read_back(trained, tmp_path, monkeypatch):
    import inference.worker as segment
    from inference import previous_scales

    starts, real = [], segment.segment_photo

    def spy(model, meta, image, **kwargs):
        starts.append(kwargs.get("start", 0.0))
        return real(model, meta, image, **kwargs)

    monkeypatch.setattr(segment, "segment_photo", spy)
    result = run_segment(trained / "model", trained / "photos", tmp_path / "out", start_scales={"p1.png": 0.5})
    assert sorted(starts) == [0.0, 0.5]  # the start scale reaches the photo it names, and no other
    assert previous_scales(tmp_path / "out") == pytest.approx(result.scales, abs=1e-3)
    assert previous_scales(tmp_path / "nowhere") == {}
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "segment.json").write_text("{not json", encoding="utf-8")
    assert previous_scales(tmp_path / "broken") == {}


def test_auto_segmentation_stands_in_where_the_model_sees_nothing():
    from inference.fallback import classical_if_model_blind

    image, truth = render_particle_scene((192, 256), count=4, radius=(30, 40), seed=5)
    found = classical_if_model_blind(image, np.zeros(truth.shape, np.uint8))
    assert found is not None and found.dtype == np.uint8 and set(np.unique(found)) <= {0, 1}
    iou = ((found > 0) & (truth > 0)).sum() / ((found > 0) | (truth > 0)).sum()
    assert iou > 0.8
    # a model that sees the particles keeps its own mask, and so does one that
    # sees a fair share of them
    assert classical_if_model_blind(image, (truth > 0).astype(np.uint8)) is None
    part = np.zeros_like(truth, np.uint8)
    part[truth > 0] = 1
    part[:, : truth.shape[1] * 3 // 4] = 0
    assert 0 < part.sum() < 0.1 * part.size and part.sum() >= 0.1 * (found > 0).sum()
    assert classical_if_model_blind(image, part) is None
    # a photo that had auto-segmentation's objects last time keeps them while
    # the model sees less than half of them
    from inference.fallback import HOLD_SHARE

    assert part.sum() < HOLD_SHARE * (found > 0).sum()
    held = classical_if_model_blind(image, part, HOLD_SHARE)
    assert held is not None and np.array_equal(held, found)
    assert classical_if_model_blind(image, (truth > 0).astype(np.uint8), HOLD_SHARE) is None
    # nothing to read on a blank photo, nor a sure side on pure noise
    assert classical_if_model_blind(np.full((96, 128), 128, np.uint8), np.zeros((96, 128), np.uint8)) is None
    noise = np.random.default_rng(0).normal(128, 20, (192, 256)).clip(0, 255).astype(np.uint8)
    assert classical_if_model_blind(noise, np.zeros(noise.shape, np.uint8)) is None


def test_segment_falls_back_to_auto_segmentation_and_says_so(trained, tmp_path):
    """A photo whose objects the model does not see (its threshold set near
    1): the folder gets auto-segmentation's objects, the record and the log
    say so, and the fallback can be turned off."""
    from core.progress import Progress

    image, truth = render_particle_scene((192, 256), count=4, radius=(30, 40), seed=5)
    write_image(tmp_path / "large.png", image)
    lines = []

    class Log(Progress):
        def log(self, text):
            lines.append(text)

    blind = SegmentSettings(threshold=0.999999, flips=False)
    result = run_segment(trained / "model", tmp_path / "large.png", tmp_path / "out", settings=blind,
                         progress=Log())
    mask = read_image(tmp_path / "out" / "large_mask.png") > 0
    iou = (mask & (truth > 0)).sum() / (mask | (truth > 0)).sum()
    assert result.objects >= 3 and iou > 0.8
    assert any("auto-segmentation" in line for line in lines), lines
    assert result.auto_segmented == ["large.png"] and "auto-segmentation" in result.summary()
    assert json.loads((tmp_path / "out" / "segment.json").read_text())["auto_segmented"] == ["large.png"]
    # the next segmentation into the folder (a self-training round's, or the
    # user's again) knows it: the photo is held, and a held photo is a
    # different task from one that is not
    from inference import previous_auto_segmented

    assert previous_auto_segmented(tmp_path / "out") == {"large.png"}
    assert previous_auto_segmented(tmp_path / "nowhere") == set()
    lines.clear()
    again = run_segment(trained / "model", tmp_path / "large.png", tmp_path / "out", settings=blind,
                        progress=Log())
    assert again.auto_segmented == ["large.png"]
    assert not any("done before" in line for line in lines), lines  # segmented again, not kept
    assert any("as when last segmented" in line for line in lines), lines
    assert json.loads((tmp_path / "out" / "segment.json").read_text())["auto_segmented"] == ["large.png"]
    off = SegmentSettings(threshold=0.999999, flips=False, fallback=False)
    kept = run_segment(trained / "model", tmp_path / "large.png", tmp_path / "off", settings=off)
    assert kept.auto_segmented == []
    assert (read_image(tmp_path / "off" / "large_mask.png") > 0).sum() < 0.1 * mask.sum()


def test_auto_segmentation_runs_once_for_the_scale_check_and_the_fallback(trained, tmp_path, monkeypatch):
    """The scale check's reading of the photo by auto-segmentation is the
    one the fallback judges: the photo is auto-segmented once, and the
    fallback still stands in."""
    import segmentation.autoseg as autoseg

    calls = []
    real = autoseg.find_objects
    monkeypatch.setattr(autoseg, "find_objects", lambda image, **kw: calls.append(image.shape) or real(image, **kw))
    image, _ = render_particle_scene((192, 256), count=4, radius=(30, 40), seed=5)
    write_image(tmp_path / "large.png", image)
    result = run_segment(trained / "model", tmp_path / "large.png", tmp_path / "out",
                         settings=SegmentSettings(threshold=0.999999, flips=False))
    assert result.auto_segmented == ["large.png"]
    assert calls == [(192, 256)]


def _particles_on_a_film(seed: int = 1):
    """Dark particles on a grey film inside a brighter frame: auto-
    segmentation takes the film (darker than the frame around it) for one
    large object, and the particles lie in it."""
    scene, truth = render_particle_scene((144, 200), count=8, radius=(6, 9), seed=seed, gradient=0.0)
    photo = np.full((192, 256), 240, np.uint8)
    photo[24:168, 28:228] = np.clip(scene.astype(np.int16) + 25, 0, 255).astype(np.uint8)
    labels = np.zeros(photo.shape, np.int32)
    labels[24:168, 28:228] = truth
    return photo, labels


def test_auto_segmentation_does_not_stand_in_with_the_photo_inside_out():
    """Where one of auto-segmentation's objects holds several objects the
    model is sure of, that object is background (a film, the lit half of a
    photo) and the model's mask stays; one sure object in each of its
    objects, or none, and auto-segmentation stands in as before."""
    from inference.fallback import SEVERAL_SURE, classical_if_model_blind, holds_several
    from segmentation import find_objects

    photo, particles = _particles_on_a_film()
    film = find_objects(photo).foreground > 0
    assert film.mean() > 0.5 and (particles > 0).mean() < 0.05  # auto-segmentation reads it inside out
    model = (particles > 0).astype(np.uint8)
    assert SEVERAL_SURE == 2 and particles.max() >= SEVERAL_SURE
    assert holds_several(film, particles)
    assert classical_if_model_blind(photo, model, sure_objects=lambda: particles) is None
    one = np.where(particles == 1, 1, 0)
    assert not holds_several(film, one)
    assert classical_if_model_blind(photo, model, sure_objects=lambda: one) is not None
    assert classical_if_model_blind(photo, model) is not None  # nothing asked: as before
    # large particles, each holding one sure object (texture the model is sure of), or none
    image, truth = render_particle_scene((192, 256), count=4, radius=(30, 40), seed=5)
    assert not holds_several(find_objects(image).foreground, truth)
    found = classical_if_model_blind(image, np.zeros(truth.shape, np.uint8), sure_objects=lambda: truth)
    assert found is not None and ((found > 0) & (truth > 0)).sum() > 0.8 * (truth > 0).sum()
    # the model's sure objects are asked for only where auto-segmentation would stand in
    asked = []
    assert classical_if_model_blind(image, (truth > 0).astype(np.uint8),
                                    sure_objects=lambda: asked.append(1) or truth) is None
    assert asked == []


def test_segment_keeps_the_models_mask_where_auto_segmentation_has_the_photo_inside_out(trained, tmp_path,
                                                                                        monkeypatch):
    """``segment`` on the film photo: the model covers only a few hundredths
    of auto-segmentation's object. Where it is sure of the particles on it
    (the model's sure objects here are the particles themselves), the folder
    gets the model's mask and the record does not call the photo
    auto-segmented, so a self-training round does not hold it; where it is
    sure of none, auto-segmentation stands in as before."""
    import inference.confident as confident

    photo, particles = _particles_on_a_film()
    write_image(tmp_path / "film.png", photo)
    calls, sure, real = [], {}, confident.confident_objects

    def the_particles(probability, mirrored, rules=confident.Sureness(), taken=None):
        calls.append(probability.shape)
        found = real(probability, mirrored, rules, taken)
        return confident.ConfidentObjects(particles, sure["labels"], found.foreground)

    monkeypatch.setattr(confident, "confident_objects", the_particles)
    sure["labels"] = list(range(1, int(particles.max()) + 1))
    result = run_segment(trained / "model", tmp_path / "film.png", tmp_path / "out",
                         settings=SegmentSettings(flips=False))
    assert calls == [photo.shape]
    assert result.objects >= 1 and result.auto_segmented == []
    assert json.loads((tmp_path / "out" / "segment.json").read_text())["auto_segmented"] == []
    mask = read_image(tmp_path / "out" / "film_mask.png") > 0
    assert mask.mean() < 0.1 and (mask & (particles > 0)).sum() > 0.5 * (particles > 0).sum()
    sure["labels"] = []
    inside_out = run_segment(trained / "model", tmp_path / "film.png", tmp_path / "none",
                             settings=SegmentSettings(flips=False))
    assert inside_out.auto_segmented == ["film.png"]
    assert (read_image(tmp_path / "none" / "film_mask.png") > 0).mean() > 0.5


def _grainy_photo_with_specks(seed: int = 3):
    """A grainy grey photo with six small dark particles, and a model's mask
    of them plus specks of grain: small clumps of the grain itself, no
    darker than the grain around them."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    grain = ndi.gaussian_filter(rng.normal(0, 1, (200, 240)), 1.5)
    photo = 150 + 12 * grain / grain.std()
    yy, xx = np.mgrid[:200, :240]
    particles = np.zeros(photo.shape, bool)
    for y, x in ((30, 40), (40, 180), (100, 120), (160, 50), (170, 200), (110, 30)):
        particles |= (yy - y) ** 2 + (xx - x) ** 2 <= 9
    photo[particles] = 60
    specks = np.zeros(photo.shape, bool)
    for y, x in ((20, 110), (70, 70), (80, 200), (130, 170), (150, 120), (185, 140)):
        specks[y - 1:y + 2, x - 1:x + 2] = True
    return photo.clip(0, 255).astype(np.uint8), particles, specks


def test_faint_specks_of_grain_are_dropped_and_particles_kept():
    """A model that enlarged a grainy photo drew clumps of its grain as small
    objects: they go, the small dark particles of the same size stay."""
    from inference.marks import without_faint_specks

    photo, particles, specks = _grainy_photo_with_specks()
    mask = (particles | specks).astype(np.uint8)
    kept = without_faint_specks(photo, mask, diameter=10.0) > 0
    assert np.array_equal(kept, particles)
    # objects larger than the speck size are never judged, however faint
    assert without_faint_specks(photo, mask, diameter=2.0) is mask
    # a faint piece beside a larger object belongs to its outline
    large = np.zeros(mask.shape, bool)
    large[60:100, 70:110] = True
    piece = np.zeros(mask.shape, bool)
    piece[101:104, 100:103] = True  # one pixel below it
    beside = (large | piece | particles).astype(np.uint8)
    assert without_faint_specks(photo, beside, diameter=10.0) is beside
    # a photo whose objects are mostly faint has faint particles, not grain
    only_faint = specks.astype(np.uint8)
    assert without_faint_specks(photo, only_faint, diameter=10.0) is only_faint


def test_segment_drops_faint_specks_where_the_model_draws_them(monkeypatch):
    """Through segment_photo: the specks the model draws are taken out of the
    mask and out of its object probability; the particles are kept."""
    import inference.predict as predict
    from inference import segment_photo
    from inference.marks import SPECK_SIZE

    photo, particles, specks = _grainy_photo_with_specks()

    def fake_predict(model, meta, image, *, scale=1.0, return_foreground=False, **kwargs):
        mask = (particles | specks).astype(np.uint8)
        foreground = np.where(mask > 0, 0.9, 0.05).astype(np.float32)
        return (mask, foreground) if return_foreground else mask
    monkeypatch.setattr(predict, "predict_mask", fake_predict)
    meta = {"classes": ["background", "object"], "object_diameter": 10.0 / SPECK_SIZE}
    mask, scale, foreground = segment_photo(None, meta, photo, scale=1.0, return_foreground=True)
    assert scale == 1.0 and np.array_equal(mask > 0, particles)
    assert foreground[specks].max() == 0.0 and foreground[particles].min() == pytest.approx(0.9)
    # at four times the size the same objects are large enough to be judged by the model alone
    mask, _ = segment_photo(None, meta, photo, scale=4.0)
    assert np.array_equal(mask > 0, particles | specks)
    # a photo predicted shrunk keeps the speck size it has at full size: a
    # faint object twice the specks' size stays, the specks still go
    faint = np.zeros(photo.shape, bool)
    faint[60:72, 60:72] = True
    particles = particles | faint
    mask, _ = segment_photo(None, meta, photo, scale=0.25)
    assert np.array_equal(mask > 0, particles)


_SEGMENT_AND_SAY = """
import sys
sys.path.insert(0, {root!r})
from app import run_cli
code = run_cli(["segment", "--model", {model!r}, "--images", {photos!r}, "--out", {out!r}])
print("exit", code, "tensorflow loaded:", "tensorflow" in sys.modules)
"""


def _segment_in_a_new_process(trained, out, cache):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    script = _SEGMENT_AND_SAY.format(root=str(ROOT), model=str(trained / "model"), photos=str(trained / "photos"),
                                     out=str(out))
    env = {**os.environ, "SEGLOOP_CACHE_DIR": str(cache), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0 and "exit 0" in done.stdout, done.stderr[-2000:]
    return done


def test_a_second_segment_starts_from_the_checked_conversion_without_tensorflow(trained, tmp_path):
    """The first run converts the model for ONNX Runtime, checks it against
    TensorFlow and keeps it; the next run in a new process takes it from the
    cache without loading TensorFlow, and writes the same masks."""
    from inference.runtime import _may_have_gpu

    if _may_have_gpu():
        pytest.skip("TensorFlow decides on a computer with a graphics card; the cache is used only without one")
    cache = tmp_path / "cache"
    first = _segment_in_a_new_process(trained, tmp_path / "first", cache)
    assert "tensorflow loaded: True" in first.stdout and len(list((cache / "onnx").glob("*.onnx"))) == 1
    second = _segment_in_a_new_process(trained, tmp_path / "second", cache)
    assert "tensorflow loaded: False" in second.stdout
    assert "The network runs on ONNX Runtime" in second.stderr
    for name in ("p0_mask.png", "p1_mask.png", "p0_labels.tif"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()


def test_a_damaged_or_foreign_cached_conversion_is_never_used(trained, tmp_path):
    """A cache file that is not an ONNX model is passed over, and one that
    answers differently from the model (another model's) is removed when
    the model is next loaded and checked: the model is converted again."""
    import keras

    from core.model_folder import load_model
    from inference import batch, run_segment
    from inference.runtime import OnnxNetwork, _convert, cached_network, cached_path, prediction_network

    key = batch.model_fingerprint(trained / "model")
    cached = cached_path(key)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"not a model")
    assert cached_network(key) is None
    batch._MODELS.clear()
    result = run_segment(trained / "model", trained / "photos", tmp_path / "out", settings=SegmentSettings(flips=False))
    assert result.photos == 2 and (tmp_path / "out" / "p0_mask.png").is_file()
    model, _ = load_model(trained / "model")
    foreign = _convert(keras.models.clone_model(model))  # the same layers with other weights
    unchecked = cached.parent / f"{key}.onnx"  # where earlier versions kept a conversion before checking it
    unchecked.write_bytes(foreign)
    cached.unlink()
    assert cached_network(key) is None
    cached.write_bytes(foreign)
    network = prediction_network(model, key=key)
    assert isinstance(network, OnnxNetwork) and cached.read_bytes() != foreign
    batch._MODELS.clear()
