"""The review loop: filling closed contours, explaining clicks that are not
obeyed, picking objects, undo, and saving picked objects into the pool."""

import numpy as np
import pytest
import tifffile
from PyQt5.QtCore import Qt

from core.errors import UserInputError
from core.imageio import write_image
from core.workdir import WorkingDirectory
from gui.review import FILL, PICK, ReviewSession
from gui.review_panel import ReviewPanel


def scene():
    """A 16-bit photo (60 x 90) and what a model made of it: a filled disc
    (object 1, class 1), an unfilled outline (object 2, class 2) and a
    square with a hole (object 3, class 1)."""
    yy, xx = np.mgrid[:60, :90]
    classes = np.zeros((60, 90), np.uint8)
    labels = np.zeros((60, 90), np.int32)
    disc = (yy - 15) ** 2 + (xx - 20) ** 2 <= 36
    classes[disc], labels[disc] = 1, 1
    ring = np.zeros((60, 90), bool)
    ring[30:46, 50:71] = True
    ring[31:45, 51:70] = False
    classes[ring], labels[ring] = 2, 2
    square = np.zeros((60, 90), bool)
    square[40:56, 10:26] = True
    square[45:51, 15:21] = False
    classes[square], labels[square] = 1, 3
    photo = (3000 + 20000 * (classes > 0) + (xx * 7 % 50)).astype(np.uint16)
    return photo, classes, labels


@pytest.fixture
def segmented(tmp_path):
    photo, classes, labels = scene()
    write_image(tmp_path / "photos" / "grains.tif", photo)
    out = tmp_path / "segmented"
    write_image(out / "grains_mask.png", classes)
    tifffile.imwrite(out / "grains_labels.tif", labels)
    from conftest import ROOT
    from core.model_folder import read_meta, write_meta

    meta = read_meta(ROOT / "checkpoints")  # a real description, with three classes
    write_meta(tmp_path / "model", {**meta, "classes": ["background", "grain", "outline"], "num_classes": 3})
    return tmp_path


def load(segmented):
    return ReviewSession.from_segment_output(segmented / "photos" / "grains.tif", segmented / "segmented",
                                             model_dir=segmented / "model")


def test_loading_reads_photo_mask_labels_and_class_names(segmented):
    s = load(segmented)
    assert s.image.dtype == np.uint16 and s.shape == (60, 90)
    assert s.object_count == 3
    assert s.class_names == ["background", "grain", "outline"]
    with pytest.raises(UserInputError, match="No segmentation of other.png"):
        ReviewSession.from_segment_output(segmented / "other.png", segmented / "segmented")


def test_background_click_fills_outline_and_hole_with_their_class_and_id(segmented):
    s = load(segmented)
    outcome = s.click(2, 2, FILL)
    assert outcome.changed and "Filled 2 closed contours" in outcome.message
    assert (s.class_mask[31:45, 51:70] == 2).all() and (s.labels[31:45, 51:70] == 2).all()
    assert (s.class_mask[45:51, 15:21] == 1).all() and (s.labels[45:51, 15:21] == 3).all()
    assert s.class_mask[2, 2] == 0
    assert s.object_count == 3


def test_fill_click_inside_an_object_is_explained_not_obeyed(segmented):
    s = load(segmented)
    before = s.class_mask.copy()
    outcome = s.click(15, 20, FILL)
    assert not outcome.changed and outcome.explained
    assert "inside object 1 (grain)" in outcome.message and "Pick objects" in outcome.message
    np.testing.assert_array_equal(s.class_mask, before)


def test_fill_click_inside_a_hole_is_explained_not_obeyed(segmented):
    s = load(segmented)
    outcome = s.click(47, 17, FILL)
    assert not outcome.changed and outcome.explained and "hole" in outcome.message
    assert s.class_mask[47, 17] == 0


def test_pick_toggles_and_undo_restores_fills_and_picks(segmented):
    s = load(segmented)
    original = s.class_mask.copy()
    assert s.click(15, 20, PICK).changed
    assert s.selected_ids() == [1]
    s.click(2, 2, FILL)
    s.click(35, 60, PICK)  # inside the filled outline: now part of object 2
    assert s.selected_ids() == [1, 2]
    s.click(15, 21, PICK)
    assert s.selected_ids() == [2]
    assert not s.click(0, 89, PICK).changed  # background in pick mode: explained
    assert s.undo() == "Undid the last pick."
    assert s.selected_ids() == [1, 2]
    s.undo()
    assert s.undo() == "Undid the last fill."
    np.testing.assert_array_equal(s.class_mask, original)
    assert s.labels[35, 60] == 0
    assert s.undo() == "Undid the last pick."
    assert s.selected_ids() == [] and not s.can_undo and s.undo() is None


def test_save_selected_writes_picked_objects_into_the_pool(segmented):
    s = load(segmented)
    with pytest.raises(UserInputError, match="No objects are picked"):
        s.save_selected(segmented / "wd")
    s.click(2, 2, FILL)
    s.click(15, 20, PICK)
    s.click(35, 60, PICK)
    saved = s.save_selected(segmented / "wd")
    names = saved.written
    assert len(names) == 2 and saved.already == {} and saved.ids == [1, 2]
    wd = WorkingDirectory(segmented / "wd")
    assert sorted(wd.pool_files()) == sorted(names)
    rows = {r["file"]: r for r in wd.read_index()}
    assert {rows[n]["origin"] for n in names} == {"picked"}
    assert {rows[n]["source_image"] for n in names} == {"grains.tif"}
    assert sorted(int(rows[n]["class"]) for n in names) == [1, 2]
    from segmentation import read_pool_object

    crop, mask = read_pool_object(wd.root, next(n for n in names if rows[n]["class"] == "2"))
    assert crop.dtype == np.uint16
    assert mask.sum() == 16 * 21  # the filled outline, not just its ring


@pytest.fixture
def panel(qtbot, segmented):
    p = ReviewPanel()
    p.resize(700, 500)
    qtbot.addWidget(p)
    p.show()
    qtbot.waitExposed(p)
    p.set_session(load(segmented))
    return p


def click(qtbot, panel, row, col):
    qtbot.mouseClick(panel.view.viewport(), Qt.LeftButton, pos=panel.view.viewport_pos_of(row, col))


def test_panel_clicks_fill_pick_explain_and_undo(qtbot, panel):
    said = []
    panel.message.connect(said.append)
    assert panel.tool == FILL and not panel.save_button.isEnabled()
    click(qtbot, panel, 15, 20)
    assert "inside object 1" in panel.status.text() and said[-1] == panel.status.text()
    click(qtbot, panel, 1, 1)
    assert "Filled 2 closed contours" in panel.status.text()
    assert panel.session.class_mask[40, 60] == 2
    assert panel.undo_button.isEnabled()

    panel.pick_button.click()
    assert panel.tool == PICK
    click(qtbot, panel, 40, 60)
    assert panel.view.picked_ids() == [2] and panel.save_button.isEnabled()
    click(qtbot, panel, 40, 60)
    assert panel.view.picked_ids() == []
    panel.undo()
    assert panel.view.picked_ids() == [2]
    panel.undo()
    assert panel.view.picked_ids() == []
    panel.undo()  # the fill
    assert panel.session.class_mask[40, 60] == 0 and not panel.undo_button.isEnabled()

    # A picked outline is redrawn with its new shape once the fill closes it.
    click(qtbot, panel, 40, 50)
    assert panel.view.picked_ids() == [2]
    inside = (10, 5)  # (x, y) in the patch: inside the outline
    assert panel.view._picked_items[2].pixmap().toImage().pixelColor(*inside).alpha() == 0
    panel.set_tool(FILL)
    click(qtbot, panel, 1, 1)
    assert panel.view._picked_items[2].pixmap().toImage().pixelColor(*inside).alpha() > 0


def test_panel_save_then_undo_keeps_the_pool_and_the_picks_as_saved(qtbot, panel, segmented):
    from core.progress import Progress
    from gui.stages import save_picked_job

    panel.pick_button.click()
    click(qtbot, panel, 15, 20)
    click(qtbot, panel, 47, 12)
    saved = save_picked_job(panel.session, str(segmented / "wd"), progress=Progress())
    panel.picked_saved(saved)
    assert "Saved 2 picked objects" in panel.status.text()
    assert panel.view.picked_ids() == [] and not panel.save_button.isEnabled()
    assert not panel.undo_button.isEnabled()
    panel.undo()
    assert panel.status.text() == "Nothing to undo."
    assert panel.view.picked_ids() == [] and not panel.save_button.isEnabled()
    assert len(WorkingDirectory(segmented / "wd").read_index()) == 2


def test_panel_legend_names_classes_and_overlay_controls(panel):
    texts = [panel.legend.itemAt(i).widget().text() for i in range(panel.legend.count())
             if panel.legend.itemAt(i).widget() is not None and panel.legend.itemAt(i).widget().text()]
    assert texts == ["grain", "outline", "picked"]
    panel.opacity.setValue(25)
    assert panel.view.overlay_opacity() == pytest.approx(0.25)
    panel.outline.setChecked(True)
    image = panel.view._overlay.pixmap().toImage()
    assert image.pixelColor(20, 15).alpha() == 0  # disc centre: outline mode leaves it clear
    panel.outline.setChecked(False)
    assert panel.view._overlay.pixmap().toImage().pixelColor(20, 15).alpha() > 0


def test_undo_after_a_save_does_not_bring_the_saved_picks_back(segmented):
    s = load(segmented)
    s.click(2, 2, FILL)
    s.click(15, 20, PICK)
    s.click(47, 12, PICK)
    saved = s.save_selected(segmented / "wd")
    s.mark_saved(saved.ids)
    assert s.selected_ids() == []
    # Ctrl+Z now undoes the fill before the save, never the save's picks.
    assert s.undo() == "Undid the last fill."
    assert s.selected_ids() == [] and s.undo() is None
    # A saved object cannot be picked (and so saved) a second time.
    outcome = s.click(15, 20, PICK)
    assert not outcome.changed and outcome.explained and "already saved" in outcome.message
    assert s.selected_ids() == []


def test_a_pick_the_pool_already_holds_is_not_added_again(segmented):
    from segmentation import add_objects

    s = load(segmented)
    wd = WorkingDirectory(segmented / "wd")
    # Auto-segmentation pooled the disc before, with a slightly different outline.
    auto = s.labels.copy()
    auto[15, 26] = 1  # one pixel more
    add_objects(wd.root, s.image, auto, [1], source_image="grains.tif", origin="auto")
    add_objects(wd.root, s.image, auto, [1], source_image="other photo.tif", origin="auto")
    s.click(15, 20, PICK)
    s.click(47, 12, PICK)
    saved = s.save_selected(wd.root)
    assert len(saved.written) == 1 and list(saved.already) == [1]
    assert saved.already[1].startswith("grains_auto_")
    assert "1 was already in the pool from this photo (object 1" in saved.summary()
    assert "Saved 1 picked object to the pool." in saved.summary()
    origins = sorted(r["origin"] for r in wd.read_index() if r["source_image"] == "grains.tif")
    assert origins == ["auto", "picked"]


def test_a_longer_message_does_not_resize_the_photo(qtbot, panel):
    panel.view.fit_to_window()
    qtbot.wait(50)
    height, zoom = panel.view.height(), panel.view.zoom()
    panel._say("Short.")
    qtbot.wait(50)
    assert (panel.view.height(), panel.view.zoom()) == (height, zoom)
    panel._say("That pixel is inside object 1 (grain), not on the background. A fill starts from the "
               "background: click the empty area around the objects. To pick this object for the pool, "
               "switch to Pick objects.")
    qtbot.wait(50)
    assert (panel.view.height(), panel.view.zoom()) == (height, zoom)


def test_detector_frames_are_shown_stretched_around_their_pedestal(qtbot, tmp_path, monkeypatch):
    """A FITS frame, or a frame segmented by a detector model, is shown with
    the detector stretch; a photo by percentiles."""
    from astropy.io import fits

    frame = np.random.default_rng(0).normal(1000, 5, (40, 60)).astype(np.float32)
    fits.PrimaryHDU(frame).writeto(tmp_path / "run.fits")
    mask = np.zeros(frame.shape, np.uint8)
    detector = ["background", "glowing", "hot pixel", "cluster"]
    cases = [(ReviewSession(frame, mask, photo_path=tmp_path / "run.fits[0]"), "detector"),
             (ReviewSession(frame, mask, photo_path=tmp_path / "f.tif", class_names=detector), "detector"),
             (ReviewSession(frame, mask, photo_path=tmp_path / "p.tif", class_names=["background", "object"]),
              "percentile")]
    p = ReviewPanel()
    qtbot.addWidget(p)
    seen = []
    original = p.view.set_image
    monkeypatch.setattr(p.view, "set_image", lambda image, stretch="percentile": (seen.append(stretch),
                                                                                   original(image, stretch=stretch)))
    for session, expected in cases:
        p.set_session(session)
        assert seen[-1] == expected
