"""Self-training rounds."""

import numpy as np
import pytest

from core.errors import UserInputError
from core.workdir import WorkingDirectory
from inference import Sureness, confident_objects, previous_scales
from inference.scale import SCALE_STEP
from loop import RefineSettings, run_refine

pytestmark = pytest.mark.slow  # trains models


def _disc_map(shape, centres, radius, value):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    out = np.zeros(shape, np.float32)
    for cy, cx in centres:
        out[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = value
    return out


def test_only_sure_stable_plausible_objects_are_chosen():
    shape = (120, 160)
    sure = _disc_map(shape, [(30, 30), (30, 80)], 10, 0.97)
    unsure = _disc_map(shape, [(80, 30)], 10, 0.6)          # weak margin
    unstable = _disc_map(shape, [(80, 80)], 10, 0.97)        # missing in the mirrored result
    cut = _disc_map(shape, [(5, 140)], 10, 0.97)             # cut by the border
    probability = np.maximum.reduce([sure, unsure, unstable, cut])
    mirrored = np.maximum.reduce([sure, unsure, cut])
    found = confident_objects(probability, mirrored)
    centres = sorted((int(np.mean(np.nonzero(found.labels == k)[0])), int(np.mean(np.nonzero(found.labels == k)[1])))
                     for k in found.chosen)
    assert centres == [(30, 30), (30, 80)]


def test_at_most_max_per_photo():
    shape = (200, 200)
    centres = [(20 + 40 * i, 20 + 40 * j) for i in range(5) for j in range(5)]
    probability = _disc_map(shape, centres, 8, 0.95)
    found = confident_objects(probability, probability, Sureness(max_per_photo=5))
    assert len(found.chosen) == 5


def test_two_touching_particles_the_splitter_leaves_whole_are_not_harvested():
    shape = (120, 160)
    # two discs of radius 12 whose centres are 14 apart: a neck too wide to cut, a bay either side
    pair = _disc_map(shape, [(40, 40), (40, 54)], 12, 0.97)
    single = _disc_map(shape, [(80, 110)], 12, 0.97)
    probability = np.maximum(pair, single)
    found = confident_objects(probability, probability)
    assert found.labels.max() == 2  # the pair is one object to the splitter...
    chosen = [found.labels == k for k in found.chosen]
    assert len(chosen) == 1 and chosen[0][80, 110]  # ...and only the single particle is pooled


def test_an_object_the_pool_holds_already_is_not_harvested_again():
    shape = (120, 160)
    probability = _disc_map(shape, [(30, 30), (30, 80), (80, 120)], 10, 0.97)
    taken = np.zeros(shape, np.int32)
    taken[_disc_map(shape, [(31, 29)], 9, 1.0) > 0] = 1      # auto-segmentation's outline, a little off
    taken[_disc_map(shape, [(80, 120)], 13, 1.0) > 0] = 2    # a picked object drawn a little larger
    found = confident_objects(probability, probability, taken=taken)
    centres = [tuple(int(v) for v in np.mean(np.nonzero(found.labels == k), axis=1)) for k in found.chosen]
    assert centres == [(30, 80)]


@pytest.fixture(scope="module")
def project(tiny_project, tmp_path_factory):
    """A copy of the shared tiny project (the rounds below change it), with
    the model as trained kept beside it for the tests that need it so.
    Auto-segmentation's objects of p0 are taken out of its pool but one:
    a round pools only objects the pool does not hold, and these are the
    ones the model finds there."""
    import shutil

    from segmentation.pool import delete_objects

    root = tmp_path_factory.mktemp("refine")
    for name in ("photos", "wd", "model"):
        shutil.copytree(tiny_project / name, root / name)
    shutil.copytree(tiny_project / "model", root / "model as trained")
    p0 = [r["file"] for r in WorkingDirectory(root / "wd").read_index() if r["source_image"] == "p0.png"]
    delete_objects(root / "wd", p0[1:])
    return root


def test_a_round_adds_refined_objects_retrains_and_segments(project):
    settings = RefineSettings(epochs=1, synthetic_count=8, synthetic_size=64)
    result = run_refine(project / "photos", project / "wd", project / "model", settings=settings)
    wd = WorkingDirectory(project / "wd")
    refined = [r for r in wd.read_index() if r["origin"] == "refined"]
    assert result.rounds == 1 and result.added == [len(refined)] and len(refined) > 0
    assert (project / "wd" / "segmented" / "p0_mask.png").exists()
    assert (project / "wd" / "refine" / "p0_mask.png").exists()
    # none of them is an object the pool held already (the same particle twice)
    from core.imageio import read_image

    def in_photo(row, shape):
        mask = read_image(wd.objects_masks / row["file"]) > 0
        frame = np.zeros(shape[:2], bool)
        y0, x0 = int(row["y0"]), int(row["x0"])
        frame[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]] = mask
        return frame

    for row in refined:
        shape = read_image(project / "photos" / row["source_image"]).shape
        mine = in_photo(row, shape)
        for other in wd.read_index():
            if other["source_image"] == row["source_image"] and other["origin"] != "refined":
                theirs = in_photo(other, shape)
                shared = np.count_nonzero(mine & theirs)
                assert shared < np.count_nonzero(mine) / 2 and shared < np.count_nonzero(theirs) / 2
    stats = wd.load_project()["stages"]["refine"]["photos"]
    assert stats["p0.png"]["mask"] == "refine/p0_mask.png"
    # a second round replaces the first round's objects instead of piling them up
    first_scales = previous_scales(project / "wd" / "segmented")
    again = run_refine(project / "photos", project / "wd", project / "model", settings=settings)
    refined_again = [r for r in wd.read_index() if r["origin"] == "refined"]
    assert len(refined_again) == again.added[0]
    assert len(wd.pool_files()) == len(wd.read_index())
    # ... and starts each photo's scale where the round before left it: at most a step away
    second_scales = previous_scales(project / "wd" / "segmented")
    assert set(first_scales) == set(second_scales) == {"p0.png", "p1.png"}
    for name, scale in second_scales.items():
        assert first_scales[name] / SCALE_STEP - 1e-3 <= scale <= first_scales[name] * SCALE_STEP + 1e-3


def test_refine_needs_a_pool_and_a_model(project, tmp_path):
    with pytest.raises(UserInputError, match="empty"):
        run_refine(project / "photos", tmp_path / "wd", project / "model")
    with pytest.raises(UserInputError, match="model"):
        run_refine(project / "photos", project / "wd", tmp_path / "nomodel")
    with pytest.raises(UserInputError, match="at least 1"):
        run_refine(project / "photos", project / "wd", project / "model", rounds=0)


def test_photo_whose_polarity_the_model_reverses_is_left_out(project, tmp_path):
    import json
    import shutil

    from core.progress import Progress
    from loop.refine import refine_pool

    wd_dir = tmp_path / "wd"
    shutil.copytree(project / "wd", wd_dir)
    project_file = wd_dir / "project.json"
    info = json.loads(project_file.read_text())
    info["stages"].pop("refine", None)
    info["stages"]["autoseg"]["photos"]["p1.png"]["polarity"] = "bright"  # the particles are dark
    project_file.write_text(json.dumps(info))
    wd = WorkingDirectory(wd_dir)
    messages = []

    class Log(Progress):
        def log(self, message):
            messages.append(message)

    refine_pool(project / "photos", wd, project / "model as trained", RefineSettings(), Log())
    sources = {r["source_image"] for r in wd.read_index() if r["origin"] == "refined"}
    assert sources == {"p0.png"}
    assert any("p1.png" in m and "left out" in m for m in messages)
    assert set(wd.load_project()["stages"]["refine"]["photos"]) == {"p0.png"}


def test_photo_size_and_density_come_from_objects_not_specks():
    from loop.refine import _photo_stats

    labels = np.zeros((300, 300), np.int32)
    yy, xx = np.mgrid[:300, :300]
    for k, (cy, cx) in enumerate(((60, 60), (60, 200), (200, 80), (210, 220)), start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 25 ** 2] = k
    for k in range(40):  # specks of texture the model also marked
        labels[285, 5 + 7 * k] = 5 + k
    gray = np.where(labels > 0, 0.2, 0.8).astype(np.float32)
    stats = _photo_stats((gray * 255).astype(np.uint8), gray, labels, [1, 2, 3], "m.png", 3)
    assert stats["objects"] == 4 and abs(stats["median_diameter_px"] - 50) < 2
    assert stats["polarity"] == "dark"


def _copies(project, tmp_path):
    import shutil

    shutil.copytree(project / "wd", tmp_path / "wd")
    shutil.copytree(project / "model", tmp_path / "model")
    return tmp_path / "wd", tmp_path / "model"


def test_a_round_that_is_cancelled_or_fails_changes_nothing(project, tmp_path, monkeypatch):
    from core.progress import Progress
    from helpers import tree_digest

    wd, model = _copies(project, tmp_path)
    before = tree_digest(tmp_path)
    settings = RefineSettings(epochs=3, synthetic_count=8, synthetic_size=64)

    class CancelWhenTraining(Progress):
        def on_update(self, done, total, message):
            if "training" in message and "epoch" in message:
                self.cancel()  # mid-round: pool changed, synthetic set made, model training

    result = run_refine(project / "photos", wd, model, settings=settings, progress=CancelWhenTraining())
    assert result.cancelled and result.rounds == 0
    assert "as they were before" in result.summary()
    assert tree_digest(tmp_path) == before

    def broken_segment(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("inference.stage.run_segment", broken_segment)
    with pytest.raises(RuntimeError, match="disk full"):
        run_refine(project / "photos", wd, model, settings=RefineSettings(epochs=1, synthetic_count=8,
                                                                          synthetic_size=64))
    assert tree_digest(tmp_path) == before


def test_a_round_can_start_from_a_model_it_never_changes(project, tmp_path):
    from helpers import tree_digest

    wd, _ = _copies(project, tmp_path)
    before = tree_digest(project / "model")
    settings = RefineSettings(epochs=1, synthetic_count=8, synthetic_size=64)
    result = run_refine(project / "photos", wd, wd / "model", settings=settings, start_from=project / "model")
    assert result.rounds == 1
    assert tree_digest(project / "model") == before
    assert (wd / "model" / "model.keras").is_file()
    # Paths saved during the round name the real places, not the staging copy.
    import json

    meta = json.loads((wd / "model" / "model.json").read_text())
    assert meta["training"]["data"] == str(wd.resolve() / "synthetic")
    segment = json.loads((wd / "segmented" / "segment.json").read_text())
    assert segment["model"] == str((wd / "model").resolve())
    assert not [p for p in wd.iterdir() if p.name.startswith(".")]


def test_photos_that_had_auto_segmentation_are_held_through_a_round(project, tmp_path, monkeypatch):
    """A photo given auto-segmentation's objects when last segmented (the
    model saw next to none of them) is held by the round's own
    segmentation: it is judged by HOLD_SHARE (it keeps those objects unless
    the retrained model covers half their area), not by BLIND_SHARE, and
    keeps them where the retrained model still sees none."""
    import json

    import inference.fallback as fallback
    import inference.worker as segment
    from core.imageio import read_image
    from inference import SegmentSettings, run_segment
    from segmentation import find_objects

    wd, model = _copies(project, tmp_path)
    blind = SegmentSettings(threshold=0.999999, flips=False)
    first = run_segment(model, project / "photos", wd / "segmented", settings=blind)
    assert first.auto_segmented == ["p0.png", "p1.png"]
    asked, real = [], segment.classical_if_model_blind

    def judged(image, mask, share=fallback.BLIND_SHARE, **kwargs):
        asked.append(share)
        return real(image, np.zeros_like(mask), share)  # the retrained model sees none of them either

    monkeypatch.setattr(segment, "classical_if_model_blind", judged)
    result = run_refine(project / "photos", wd, model, settings=RefineSettings(epochs=1, synthetic_count=8,
                                                                                synthetic_size=64))
    assert result.rounds == 1 and asked == [fallback.HOLD_SHARE] * 2
    record = json.loads((wd / "segmented" / "segment.json").read_text())
    assert record["auto_segmented"] == ["p0.png", "p1.png"]
    kept = read_image(wd / "segmented" / "p0_mask.png") > 0
    assert np.array_equal(kept, find_objects(read_image(project / "photos" / "p0.png")).foreground > 0)
