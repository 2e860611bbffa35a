from __future__ import annotations

import numpy as np
import pytest

from perception.metrics import (
    average_precision,
    box_iou,
    confusion,
    dice,
    iou,
    mask_scores,
    mean_scores,
    pooled_dice,
    precision,
    recall,
)


def masks_2_of_4():
    """pred and gt each 4 pixels, 2 shared: Dice 0.5, IoU 1/3, precision 0.5, recall 0.5."""
    pred = np.zeros((4, 4), bool)
    gt = np.zeros((4, 4), bool)
    pred[0, 0:4] = True
    gt[0, 2:4] = True
    gt[1, 2:4] = True
    return pred, gt


def test_known_scores():
    pred, gt = masks_2_of_4()
    assert confusion(pred, gt) == (2, 2, 2)
    assert dice(pred, gt) == pytest.approx(0.5)
    assert iou(pred, gt) == pytest.approx(1 / 3)
    assert precision(pred, gt) == pytest.approx(0.5)
    assert recall(pred, gt) == pytest.approx(0.5)


def test_asymmetric_precision_recall():
    gt = np.zeros((10, 10), bool)
    gt[:, :5] = True  # 50 px
    pred = np.zeros((10, 10), bool)
    pred[:, :2] = True  # 20 px, all inside
    s = mask_scores(pred, gt)
    assert s["precision"] == 1.0
    assert s["recall"] == pytest.approx(0.4)
    assert s["dice"] == pytest.approx(2 * 20 / 70)
    assert s["iou"] == pytest.approx(20 / 50)


def test_perfect_and_disjoint():
    m = np.eye(5, dtype=bool)
    assert mask_scores(m, m) == {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0}
    assert mask_scores(m, ~m) == {"dice": 0.0, "iou": 0.0, "precision": 0.0, "recall": 0.0}


def test_empty_conventions():
    e = np.zeros((3, 3), bool)
    f = np.zeros((3, 3), bool)
    f[1, 1] = True
    assert mask_scores(e, e) == {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0}
    missed = mask_scores(e, f)  # nothing predicted, something there
    assert missed == {"dice": 0.0, "iou": 0.0, "precision": 0.0, "recall": 0.0}
    false_alarm = mask_scores(f, e)  # something predicted, nothing there
    assert false_alarm == {"dice": 0.0, "iou": 0.0, "precision": 0.0, "recall": 0.0}


def test_uint8_masks_and_shape_mismatch():
    pred, gt = masks_2_of_4()
    assert dice(pred.astype(np.uint8) * 255, gt.astype(np.uint8)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shapes differ"):
        dice(np.zeros((2, 2)), np.zeros((3, 3)))


def test_mean_scores():
    rows = [
        {"dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0},
        {"dice": 0.5, "iou": 0.0, "precision": 0.25, "recall": 1.0},
    ]
    assert mean_scores(rows) == {"dice": 0.75, "iou": 0.5, "precision": 0.625, "recall": 1.0}


def test_pooled_dice_weighs_images_by_their_pixels_not_one_each():
    big_gt = np.zeros((10, 10), bool)
    big_gt[:, :5] = True  # 50 px, found exactly
    small_gt = np.zeros((10, 10), bool)
    small_gt[0, 0] = True  # 1 px, missed
    empty = np.zeros((10, 10), bool)
    counts = [confusion(big_gt, big_gt), confusion(empty, small_gt)]
    # per image: (1 + 0) / 2; pooled: 2*50 / (2*50 + 0 + 1)
    assert pooled_dice(counts) == pytest.approx(100 / 101)
    assert pooled_dice([confusion(empty, empty)]) == 1.0
    assert pooled_dice([confusion(big_gt, empty)]) == 0.0


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (10, 10, 20, 20)) == 0.0


def test_average_precision():
    gt = [[(0, 0, 10, 10)], [(20, 20, 40, 40)]]
    perfect = [[((0, 0, 10, 10), 0.9)], [((21, 21, 40, 40), 0.8)]]
    assert average_precision(perfect, gt) == pytest.approx(1.0)
    # a confident false positive ranked first, then both hits: precision 1/2 then 2/3 at recall 0.5, 1;
    # the interpolated (envelope) precision is 2/3 at both recall levels
    fp_first = [[((50, 50, 60, 60), 0.95), ((0, 0, 10, 10), 0.9)], [((20, 20, 40, 40), 0.8)]]
    assert average_precision(fp_first, gt) == pytest.approx(2 / 3)
    # one hit, one miss: AP = 0.5
    half = [[((0, 0, 10, 10), 0.9)], []]
    assert average_precision(half, gt) == pytest.approx(0.5)
    # a box below IoU 0.5 does not count; duplicates of one object are false positives
    assert average_precision([[((0, 0, 10, 30), 0.9)], []], gt) == 0.0
    dup = [[((0, 0, 10, 10), 0.9), ((0, 0, 10, 10), 0.8)], [((20, 20, 40, 40), 0.7)]]
    assert average_precision(dup, gt) == pytest.approx(0.5 * 1.0 + 0.5 * (2 / 3))
    assert average_precision([[], []], [[], []]) == 1.0
    assert average_precision([[((0, 0, 1, 1), 0.5)]], [[]]) == 0.0
    with pytest.raises(ValueError):
        average_precision([[]], [[], []])
