"""Pixel and object scores on tiny hand-made arrays, and the evaluate report."""

import json

import numpy as np
import pytest

from core.errors import UserInputError
from core.imageio import write_image
from evaluation import run_evaluate
from evaluation.metrics import (
    confusion_matrix,
    foreground_iou_dice,
    instance_matching,
    pixel_metrics,
    pool_matches,
    scores_from_confusion,
)

PRED = np.array([[0, 1, 1], [0, 1, 0], [2, 2, 0]])
TRUTH = np.array([[0, 1, 0], [0, 1, 1], [2, 0, 0]])


def test_confusion_and_per_class_scores_match_hand_computation():
    cm = confusion_matrix(PRED, TRUTH, 3)
    np.testing.assert_array_equal(cm, [[3, 1, 1], [1, 2, 0], [0, 0, 1]])
    s = pixel_metrics(PRED, TRUTH, 3)
    np.testing.assert_allclose(s.precision, [3 / 4, 2 / 3, 1 / 2])
    np.testing.assert_allclose(s.recall, [3 / 5, 2 / 3, 1.0])
    np.testing.assert_allclose(s.f1, [6 / 9, 2 / 3, 2 / 3])
    np.testing.assert_allclose(s.iou, [3 / 6, 2 / 4, 1 / 2])
    np.testing.assert_array_equal(s.support, [5, 3, 1])


def test_confusion_matrices_add_up_over_images_and_absent_class_is_nan():
    total = confusion_matrix(PRED, TRUTH, 4) + confusion_matrix(TRUTH, TRUTH, 4)
    s = scores_from_confusion(total)
    assert s.iou[1] == pytest.approx((2 + 3) / (4 + 3))
    assert np.isnan(s.iou[3]) and np.isnan(s.precision[3])
    with pytest.raises(ValueError):
        confusion_matrix(PRED, TRUTH, 2)  # class 2 does not fit


def test_instance_matching_counts_by_hand():
    truth = np.zeros((8, 8), int)
    truth[0:2, 0:2] = 1  # 4 px
    truth[4, 4:8] = 2  # 4 px
    pred = np.zeros((8, 8), np.uint8)
    pred[0:2, 0:3] = 1  # 6 px, IoU 4/6 with object 1
    pred[4, 6:8] = 1  # 2 px, IoU 2/4 with object 2
    pred[6, 0] = 1  # a false positive
    r = instance_matching(pred, truth, 0.5)
    assert (r.tp, r.fp, r.fn, r.n_true, r.n_pred) == (2, 1, 0, 2, 3)
    assert r.precision == pytest.approx(2 / 3) and r.recall == 1.0 and r.f1 == pytest.approx(0.8)
    assert r.mean_matched_iou == pytest.approx((4 / 6 + 0.5) / 2)
    strict = instance_matching(pred, truth, 0.6)
    assert (strict.tp, strict.fp, strict.fn) == (1, 2, 1) and strict.f1 == pytest.approx(0.4)
    pooled = pool_matches([r, strict])
    assert (pooled.tp, pooled.fp, pooled.fn) == (3, 3, 1)


def test_low_threshold_matching_maximises_the_number_of_matches():
    truth = np.zeros((1, 16), int)
    truth[0, 0:10], truth[0, 10:15] = 1, 2
    pred = np.zeros((1, 16), int)
    pred[0, 5:13], pred[0, 0:4] = 1, 2  # IoU: (T1,P1) 5/13, (T2,P1) 3/10, (T1,P2) 4/10
    r = instance_matching(pred, truth, 0.3, pred_are_labels=True)
    assert (r.tp, r.fp, r.fn) == (2, 0, 0)
    assert r.mean_matched_iou == pytest.approx((0.4 + 0.3) / 2)
    none = instance_matching(pred, truth, 0.5, pred_are_labels=True)
    assert (none.tp, none.fp, none.fn) == (0, 2, 2)
    empty = instance_matching(np.zeros((4, 4)), np.zeros((4, 4)))
    assert (empty.tp, empty.fp, empty.fn, empty.f1) == (0, 0, 0, 0.0)


def test_foreground_iou_and_dice():
    iou, dice = foreground_iou_dice(PRED, TRUTH)
    assert iou == pytest.approx(3 / 6) and dice == pytest.approx(6 / 9)
    assert np.isnan(foreground_iou_dice(np.zeros((2, 2)), np.zeros((2, 2)))[0])


def _binary_folders(tmp_path):
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    a = np.zeros((10, 10), np.uint8)
    a[2:6, 2:6] = 1
    write_image(pred / "a_mask.png", a)
    write_image(pred / "a_overlay.png", np.zeros((10, 10, 3), np.uint8))  # must be ignored
    write_image(truth / "a.png", a * 255)
    b = np.zeros((10, 10), np.uint8)
    b[0:4, 0:4] = 1
    write_image(pred / "b_mask.png", b)
    bt = np.zeros((10, 10), np.uint8)
    bt[0:4, 0:2] = 255
    write_image(truth / "b.png", bt)
    write_image(pred / "c_mask.png", b)  # no expert mask
    write_image(truth / "d.png", bt)  # no prediction
    return pred, truth


def test_evaluate_binary_folders_writes_report(tmp_path):
    pred, truth = _binary_folders(tmp_path)
    result = run_evaluate(pred, truth, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["images"] == 2 and report["truth_kind"] == "binary"
    assert report["skipped_predictions"] == ["c"] and report["skipped_truths"] == ["d"]
    assert report["mean_foreground_iou"] == pytest.approx((1.0 + 0.5) / 2)
    assert report["pixel"]["per_class"]["foreground"]["precision"] == pytest.approx(24 / 32)
    obj = report["objects"]["foreground"]
    assert (obj["tp"], obj["fp"], obj["fn"]) == (2, 0, 0)  # IoU 1.0 and 0.5
    assert "Skipped 1 predictions" in result.text and "foreground" in result.text
    assert (tmp_path / "out" / "report.txt").read_text().startswith("Evaluated 2")
    assert (tmp_path / "out" / "confusion.png").stat().st_size > 1000


def test_evaluate_instance_truth_uses_predicted_labels(tmp_path):
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    inst = np.zeros((12, 12), np.uint16)
    inst[1:5, 1:4], inst[1:5, 4:7], inst[1:5, 7:10] = 1, 2, 3  # three touching particles
    mask = (inst > 0).astype(np.uint8)
    write_image(pred / "p_mask.png", mask)
    write_image(truth / "p.png", inst)
    merged = run_evaluate(pred, truth, tmp_path / "o1").report["objects"]["foreground"]
    assert (merged["tp"], merged["fp"], merged["fn"]) == (0, 1, 3)  # one component covers all three
    write_image(pred / "p_labels.tif", inst.astype(np.uint16))
    split = run_evaluate(pred, truth, tmp_path / "o2").report
    assert split["truth_kind"] == "instances" and split["objects"]["foreground"]["f1"] == 1.0


def test_evaluate_multiclass_scores_each_class(tmp_path):
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    write_image(pred / "x.png", PRED.astype(np.uint8))
    write_image(truth / "x.png", TRUTH.astype(np.uint8))
    two = np.zeros((6, 6), np.uint8)
    two[0:2, 0:2], two[4:6, 4:6] = 1, 1  # two separate objects of class 1
    write_image(pred / "y.png", two)
    write_image(truth / "y.png", two)
    report = run_evaluate(pred, truth).report
    assert report["truth_kind"] == "classes" and report["classes"][0] == "background"
    assert report["pixel"]["per_class"][report["classes"][1]]["iou"] == pytest.approx((2 + 8) / (4 + 8))
    assert set(report["objects"]) == set(report["classes"][1:])
    ones = report["objects"][report["classes"][1]]
    assert (ones["tp"], ones["fp"], ones["fn"]) == (3, 0, 0)  # one object in x (IoU 0.5), two in y
    assert (tmp_path / "pred_evaluation" / "report.json").is_file()  # default: beside the predictions
    assert not (pred / "report.json").exists()


@pytest.mark.parametrize("case, words", [
    ("missing", "does not exist"),
    ("no_common", "No predicted mask has the name"),
    ("size", "is 10 x 10 pixels but expert mask"),
])
def test_evaluate_bad_input(tmp_path, case, words):
    pred, truth = _binary_folders(tmp_path)
    if case == "missing":
        truth = tmp_path / "nowhere"
    elif case == "no_common":
        for f in truth.iterdir():
            f.rename(truth / ("z" + f.name))
    else:
        write_image(truth / "a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(UserInputError, match=words):
        run_evaluate(pred, truth, tmp_path / "out")


def test_expert_instance_masks_scored_against_themselves_are_perfect(tmp_path):
    from conftest import SHARED_DATA

    masks = SHARED_DATA / "emps-dev" / "masks"
    if not masks.is_dir():
        pytest.skip(f"real expert masks not available in {masks}")
    report = run_evaluate(masks, masks, tmp_path).report
    assert report["truth_kind"] == "instances" and report["images"] == 60
    assert report["mean_foreground_iou"] == 1.0 and report["objects"]["foreground"]["f1"] == 1.0
    assert report["objects"]["foreground"]["tp"] > 1000


def _discs(shape, discs):
    """Instance labels of discs (cy, cx, r), numbered 1.. in order."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    out = np.zeros(shape, np.uint16)
    for k, (cy, cx, r) in enumerate(discs, start=1):
        out[(yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2] = k
    return out


def test_count_d50_and_matched_diameter_errors_by_hand():
    from evaluation.sizes import photo_sizes, summarise

    truth = _discs((100, 160), [(30, 30, 10), (30, 70, 10), (70, 120, 10), (0, 150, 8)])  # one on the border
    # the first two particles merged into one object, the third drawn larger, the border one found
    pred = _discs((100, 160), [(30, 50, 10), (70, 120, 12), (0, 150, 8)])
    pred[30, 30:70] = 1
    pred[(pred == 0) & (truth > 0) & (truth <= 2)] = 1
    photo = photo_sizes("p", pred, truth)
    assert (photo.count, photo.expert_count) == (3, 4) and photo.count_error == pytest.approx(0.25)
    expert_d = np.sqrt(4 * np.count_nonzero(truth == 1) / np.pi)  # the three inner particles are equal
    assert photo.expert_d50 == pytest.approx(expert_d)
    merged_d = np.sqrt(4 * np.count_nonzero(pred == 1) / np.pi)
    larger_d = np.sqrt(4 * np.count_nonzero(pred == 2) / np.pi)
    assert photo.d50 == pytest.approx((merged_d + larger_d) / 2)  # median of two inner objects
    # matched at IoU >= 0.5: the larger one and the border one (the merged pair matches neither particle)
    sizes = summarise([photo])
    assert sizes["matched_particles"] == 2
    assert sizes["mean_diameter_error"] == pytest.approx((larger_d / expert_d - 1 + 0.0) / 2)
    assert sizes["median_count_error"] == pytest.approx(0.25) and sizes["count_within_10_percent"] == 0.0


def test_evaluate_from_the_command_line_prints_counts_and_sizes(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    pred, truth = tmp_path / "pred", tmp_path / "truth"
    discs = [(30, 30, 10), (30, 80, 10), (70, 120, 10)]
    write_image(truth / "a.png", _discs((100, 160), discs))
    write_image(pred / "a_mask.png", (_discs((100, 160), discs[:2]) > 0).astype(np.uint8) * 255)  # one missed
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "evaluate", "--pred", str(pred),
                           "--truth", str(truth)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "median count error 33.3 %" in done.stdout and "median D50 error 0.0 %" in done.stdout
    assert "2 particles matched at IoU >= 0.5: mean diameter error 0.0 %" in done.stdout
    report = json.loads((tmp_path / "pred_evaluation" / "report.json").read_text())
    assert report["per_image"][0]["count"] == 2 and report["per_image"][0]["expert_count"] == 3
    assert report["sizes"]["median_count_error"] == pytest.approx(1 / 3)
