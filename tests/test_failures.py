"""Failure classes and object losses, on label images built by hand."""

import numpy as np

from evaluation.failures import analyse_photo, summarise


def _disc(shape, cy, cx, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_each_kind_of_loss_is_named():
    shape = (200, 300)
    truth = np.zeros(shape, np.int32)
    pred = np.zeros(shape, np.int32)
    # 1: found as it is
    truth[_disc(shape, 40, 40, 15)] = 1
    pred[_disc(shape, 40, 40, 15)] = 1
    # 2, 3 and 7: three touching particles found as one object
    for label, cx in ((2, 110), (3, 140), (7, 170)):
        truth[_disc(shape, 40, cx, 15) & (truth == 0)] = label
    pred[np.isin(truth, (2, 3, 7))] = 2
    # 4: one particle found in three pieces
    d = _disc(shape, 120, 40, 18)
    truth[d] = 4
    xx = np.mgrid[:shape[0], :shape[1]][1]
    pred[d & (xx < 34)] = 3
    pred[d & (xx >= 34) & (xx < 46)] = 4
    pred[d & (xx >= 46)] = 8
    # 5: not found at all
    truth[_disc(shape, 120, 120, 15)] = 5
    # 6: found with a wide halo
    truth[_disc(shape, 120, 220, 10)] = 6
    pred[_disc(shape, 120, 220, 20)] = 5
    # a speck and an object on the background
    pred[180:182, 10:12] = 6
    pred[_disc(shape, 170, 270, 12)] = 7
    r = analyse_photo(pred, truth)
    assert (r.tp, r.true_objects, r.predicted_objects) == (1, 7, 8)
    assert r.lost == {"merged": 3, "split": 1, "missed": 1, "misshapen": 1}
    assert r.extra == {"speck": 1, "false": 1, "fragment": 5}
    assert r.fn == 6 and r.fp == 7


def test_photo_classes():
    shape = (100, 100)
    truth = np.zeros(shape, np.int32)
    for k, (cy, cx) in enumerate(((25, 25), (25, 75), (75, 25), (75, 75)), start=1):
        truth[_disc(shape, cy, cx, 12)] = k
    assert analyse_photo(truth, truth).photo_class == "ok"
    assert analyse_photo(truth == 0, truth, pred_are_labels=False).photo_class == "polarity"
    assert analyse_photo(np.zeros(shape, np.int32), truth).photo_class == "nothing"
    grown = np.zeros(shape, np.int32)
    for k, (cy, cx) in enumerate(((25, 25), (25, 75), (75, 25), (75, 75)), start=1):
        grown[_disc(shape, cy, cx, 17)] = k
    assert analyse_photo(grown, truth).photo_class == "too much"
    merged = (truth > 0).astype(np.int32)
    merged[25, 25:76] = 1
    merged[75, 25:76] = 1
    row = analyse_photo(merged, truth, pred_are_labels=False)
    assert row.photo_class == "merged" and row.lost["merged"] == 4
    summary = summarise({"a": row, "b": analyse_photo(truth, truth)})
    assert summary["classes"] == {"ok": 1, "merged": 1}
    assert summary["lost"]["merged"] == 4 and summary["true_objects"] == 8
