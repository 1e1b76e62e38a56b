import numpy as np
import pytest
import tifffile

from core.errors import UserInputError
from core.imageio import read_image, write_image
from core.progress import Progress
from core.workdir import WorkingDirectory
from helpers import match_count, run_app
from segmentation import AutosegSettings, find_objects, run_autoseg
from synthetic.scenes import draw_panel_letter, draw_scale_bar, render_particle_scene


@pytest.mark.parametrize("polarity", ["dark", "bright"])
def test_finds_known_objects_on_both_polarities(polarity):
    image, truth = render_particle_scene((384, 512), count=30, polarity=polarity, seed=3,
                                         gradient=0.15, touching=0.15)
    found = find_objects(image)
    assert found.polarity == polarity
    n_true = int(truth.max())
    hits = match_count(found.labels, truth)
    recall = hits / n_true
    precision = hits / max(1, found.count)
    assert recall >= 0.85, (recall, found.count, n_true)
    assert precision >= 0.85, (precision, found.count, n_true)
    # the pool holds only objects that really are particles
    pooled_hits = match_count(found.labels, truth, ids=found.pooled)
    assert len(found.pooled) >= 0.5 * n_true
    assert pooled_hits == len(found.pooled)


def test_a_reading_of_sizes_only_finds_the_same_objects_unscored():
    image, _ = render_particle_scene((384, 512), count=30, seed=3, touching=0.3)
    scored, sizes = find_objects(image), find_objects(image, scored=False)
    assert np.array_equal(scored.labels, sizes.labels) and np.array_equal(scored.foreground, sizes.foreground)
    assert scored.polarity_margin == sizes.polarity_margin and sizes.count == scored.count > 10
    assert sizes.median_diameter() == pytest.approx(scored.median_diameter())
    assert [s.area for s in sizes.scores] == [s.area for s in scored.scores]
    assert [s.touches_border for s in sizes.scores] == [s.touches_border for s in scored.scores]
    assert scored.pooled and not sizes.pooled and all(s.confidence == 0 for s in sizes.scores)


def test_polarity_override_is_obeyed():
    image, truth = render_particle_scene(polarity="dark", seed=4)
    particles = truth > 0

    def iou(mask):
        return (mask & particles).sum() / max((mask | particles).sum(), 1)

    detected = find_objects(image)
    forced = find_objects(image, polarity="bright")
    assert detected.polarity == "dark" and forced.polarity == "bright"
    assert iou(detected.foreground) > 0.7
    # told the objects are bright, it does not return the dark particles
    assert iou(forced.foreground) < 0.2
    assert not forced.foreground.any() or image[forced.foreground].mean() > image[particles].mean()


@pytest.mark.parametrize("polarity", ["dark", "bright"])
def test_scale_bar_and_panel_letter_are_not_objects(polarity):
    image, truth = render_particle_scene((400, 520), count=20, polarity=polarity, seed=5)
    r0, c0, r1, c1 = draw_scale_bar(image)
    l0, lc0, l1, lc1 = draw_panel_letter(image)
    found = find_objects(image)
    assert not found.foreground[r0:r1, c0:c1].any()
    assert not found.foreground[l0:l1, lc0:lc1].any()
    pooled_mask = np.isin(found.labels, found.pooled)
    assert not pooled_mask[r0:r1, c0:c1].any()
    assert not pooled_mask[l0:l1, lc0:lc1].any()


def test_grey_label_box_with_text_is_ignored():
    image, _ = render_particle_scene((400, 520), count=15, polarity="bright", seed=8)
    # a light grey box with dark text, not the photo's extreme value
    image[360:390, 400:510] = 190
    image[368:382, 410:413] = 20
    image[368:382, 420:423] = 20
    image[368:371, 420:430] = 20
    image[375:377, 440:500] = 20
    found = find_objects(image)
    assert not found.foreground[360:390, 400:510].any()


def test_objects_cut_by_the_border_are_not_pooled():
    image, truth = render_particle_scene((256, 256), count=12, polarity="dark", seed=6)
    image = image[40:, 40:]  # cuts particles at the top and left edges
    found = find_objects(image)
    h, w = found.labels.shape
    for label in found.pooled:
        rows, cols = np.nonzero(found.labels == label)
        assert rows.min() > 0 and cols.min() > 0 and rows.max() < h - 1 and cols.max() < w - 1


def test_sixteen_bit_and_rgb_input_give_the_same_objects(tmp_path):
    image, truth = render_particle_scene((256, 320), count=15, polarity="dark", seed=7)
    reference = find_objects(image)
    sixteen = (image.astype(np.uint16) * 16 + 100)  # a 12-bit camera in a 16-bit file
    tifffile.imwrite(tmp_path / "frame16.tif", sixteen)
    rgb = np.stack([image] * 3, axis=-1)
    write_image(tmp_path / "frame_rgb.png", rgb)
    for name in ("frame16.tif", "frame_rgb.png"):
        loaded = read_image(tmp_path / name)
        found = find_objects(loaded)
        assert found.count == reference.count
        overlap = (found.foreground & reference.foreground).sum() / max(1, (found.foreground | reference.foreground).sum())
        assert overlap > 0.97


def test_large_photo_is_analysed_at_reduced_scale_and_returned_full_size():
    image, truth = render_particle_scene((1200, 1600), count=30, radius=(20, 45), seed=9)
    found = find_objects(image, work_size=800)
    assert found.labels.shape == image.shape
    assert found.scale == pytest.approx(0.5)
    assert match_count(found.labels, truth) >= 0.85 * truth.max()


def _photos(folder, n=2, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, _ = render_particle_scene((200, 240), count=10, seed=seed + i)
        write_image(folder / f"photo{i}.png", image)
    return folder


def test_stage_writes_masks_pool_and_index(tmp_path):
    photos = _photos(tmp_path / "photos")
    progress = Progress()
    result = run_autoseg(photos, tmp_path / "wd", settings=AutosegSettings(variants=1), progress=progress)
    wd = WorkingDirectory(tmp_path / "wd")
    assert result.photos == 2 and result.objects_pooled > 0
    assert (wd.autoseg / "photo0_mask.png").exists()
    mask = read_image(wd.autoseg / "photo0_mask.png")
    assert set(np.unique(mask)) <= {0, 255}
    files = wd.pool_files()
    rows = wd.read_index()
    assert len(files) == len(rows) == 2 * result.objects_pooled  # originals and one variant each
    for row in rows:
        crop = read_image(wd.objects_images / row["file"])
        m = read_image(wd.objects_masks / row["file"])
        assert crop.shape[:2] == m.shape[:2]
        assert row["origin"] == "auto" and row["source_image"] in ("photo0.png", "photo1.png")
        assert m.max() == 255
    assert progress.done == progress.total == 2
    project = wd.load_project()
    assert project["stages"]["autoseg"]["photos"]["photo0.png"]["median_diameter_px"] > 0


def test_rerun_never_overwrites_pool_files(tmp_path):
    photos = _photos(tmp_path / "photos", n=1)
    run_autoseg(photos, tmp_path / "wd")
    wd = WorkingDirectory(tmp_path / "wd")
    before = {p.name: p.read_bytes() for p in wd.objects_images.iterdir()}
    again = run_autoseg(photos, tmp_path / "wd")
    assert again.skipped == 1 and again.objects_pooled == 0
    redo = run_autoseg(photos, tmp_path / "wd", settings=AutosegSettings(redo=True))
    after = {p.name: p.read_bytes() for p in wd.objects_images.iterdir()}
    assert redo.objects_pooled == len(before)
    assert len(after) == 2 * len(before)
    for name, data in before.items():
        assert after[name] == data
    assert len({r["file"] for r in wd.read_index()}) == len(after)


def test_corrupt_photo_is_skipped_with_a_message(tmp_path):
    photos = _photos(tmp_path / "photos", n=1)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    progress = Progress()
    result = run_autoseg(photos, tmp_path / "wd", progress=progress)
    assert result.photos == 1 and result.failed == ["broken.jpg"]
    assert any("broken.jpg" in line for line in progress.lines)


def test_only_corrupt_photos_is_a_user_error(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "broken.png").write_bytes(b"nope")
    with pytest.raises(UserInputError, match="could be read"):
        run_autoseg(photos, tmp_path / "wd")


def test_cancel_stops_between_photos(tmp_path):
    photos = _photos(tmp_path / "photos", n=3)

    class CancelAfterFirst(Progress):
        def on_log(self, text):
            self.cancel()

    result = run_autoseg(photos, tmp_path / "wd", progress=CancelAfterFirst())
    assert result.cancelled and result.photos == 1


def test_bad_settings_are_refused():
    with pytest.raises(UserInputError, match="Polarity"):
        AutosegSettings(polarity="grey").check()
    with pytest.raises(UserInputError, match="confidence"):
        AutosegSettings(min_confidence=3).check()


def test_cli_missing_folder_exits_2_with_one_line(tmp_path):
    result = run_app("autoseg", "--images", tmp_path / "nowhere", "--workdir", tmp_path / "wd")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "nowhere" in result.stderr
    assert not (tmp_path / "wd").exists()


def test_cli_empty_folder_exits_2(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_app("autoseg", "--images", tmp_path / "empty", "--workdir", tmp_path / "wd")
    assert result.returncode == 2
    assert "holds no images" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_runs_and_reports(tmp_path):
    photos = _photos(tmp_path / "photos", n=1)
    result = run_app("autoseg", "--images", photos, "--workdir", tmp_path / "wd", "--polarity", "dark")
    assert result.returncode == 0, result.stderr
    assert "saved to the pool" in result.stdout
    assert (tmp_path / "wd" / "autoseg" / "photo0_mask.png").exists()


def test_a_touching_pair_the_splitter_keeps_whole_stays_out_of_the_pool():
    """Two particles joined by a wide neck are one object to the splitter;
    pooled, they would be pasted as a doublet into every training image."""
    from segmentation import find_objects

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:200, :300]

    def disc(cy, cx, r):
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r

    pair = disc(100, 100, 14) | disc(100, 120, 9)
    singles = [disc(50, 220, 12), disc(150, 220, 13), disc(50, 50, 12), disc(160, 60, 11), disc(100, 260, 12)]
    image = np.full((200, 300), 200.0)
    for m in [pair, *singles]:
        image[m] = 60
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    found = find_objects(image)
    whole_pair = [s for s in found.scores if (found.labels == s.label)[pair].sum() > 0.9 * pair.sum()]
    assert len(whole_pair) == 1 and whole_pair[0].label not in found.pooled  # found, not pooled
    assert whole_pair[0].second_bay > 0.2
    assert len(found.pooled) == 5  # every single particle is


def test_specks_of_texture_are_not_objects():
    """Bright specks of 100 pixels beside particles of 5000 to 6400: the
    specks are above the photo-size floor but far below the particles' size."""
    image, truth = render_particle_scene((384, 512), count=8, radius=(40, 45), polarity="bright", seed=8)
    rng = np.random.default_rng(1)
    specks = np.zeros(truth.shape, bool)
    for _ in range(40):
        y, x = int(rng.integers(5, 378)), int(rng.integers(5, 506))
        if not (truth > 0)[max(0, y - 8):y + 18, max(0, x - 8):x + 18].any() | specks[max(0, y - 8):y + 18, max(0, x - 8):x + 18].any():
            specks[y:y + 10, x:x + 10] = True
    assert specks.sum() >= 15 * 100
    image = image.copy()
    image[specks] = image.max()
    found = find_objects(image)
    on_particles = [np.mean(truth[found.labels == k] > 0) for k in range(1, found.labels.max() + 1)]
    assert min(on_particles) > 0.5  # no object is a speck
    assert match_count(found.labels, truth) >= 0.85 * truth.max()


def test_drop_specks_keeps_objects_above_the_share_of_the_typical_area():
    from segmentation.instances import drop_specks

    labels = np.zeros((60, 60), np.int32)
    labels[5:25, 5:25] = 1    # 400 px
    labels[5:25, 35:55] = 2   # 400 px
    labels[40:44, 40:45] = 3  # 20 px: 5 % of 400 is the limit, kept
    labels[50:53, 5:9] = 4    # 12 px: dropped
    kept = drop_specks(labels, 0.05)
    assert sorted(np.unique(kept))[1:] == [1, 2, 3]
    assert (kept[50:53, 5:9] == 0).all() and kept.dtype == np.int32
    assert drop_specks(np.zeros((4, 4), np.int32), 0.05).max() == 0
