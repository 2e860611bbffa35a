"""Segmentation and detection metrics (numpy only).

Mask metrics take two boolean masks of the same shape (prediction, ground truth).
Conventions for empty masks, where a ratio would be 0/0:

* both masks empty: Dice = IoU = precision = recall = 1 (nothing to find, nothing found);
* prediction empty, ground truth not: precision = 0 (and Dice = IoU = recall = 0);
* ground truth empty, prediction not: recall = 0 (and Dice = IoU = precision = 0).

Data-set scores are the mean of per-image scores (``mean_scores``). ``pooled_dice`` is
the other convention, the "data-based" Dice of the FUSeg challenge: pixel counts summed
over every image first, so a large wound weighs more than a small one and an image with
nothing to find weighs nothing.

Detection: ``average_precision`` is the all-point interpolated area under the
precision/recall curve (PASCAL VOC 2010+ / COCO-style single IoU threshold),
with detections of all images ranked together by score and greedy matching of
each detection to the unmatched ground-truth box of highest IoU.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1), x1/y1 exclusive

MASK_METRICS = ("dice", "iou", "precision", "recall")


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape} vs ground truth {gt.shape}")
    return pred.astype(bool, copy=False), gt.astype(bool, copy=False)


def confusion(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) pixel counts."""
    pred, gt = _check_pair(pred, gt)
    tp = int(np.count_nonzero(pred & gt))
    return tp, int(np.count_nonzero(pred)) - tp, int(np.count_nonzero(gt)) - tp


def _ratio(num: int, den: int, both_empty: bool) -> float:
    if den == 0:
        return 1.0 if both_empty else 0.0
    return num / den


def mask_scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Dice, IoU, precision and recall of one prediction against its ground truth."""
    return scores_from_counts(*confusion(pred, gt))


def scores_from_counts(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Dice, IoU, precision and recall of (true positive, false positive, false negative) pixel counts."""
    empty = tp + fp + fn == 0
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn, empty),
        "iou": _ratio(tp, tp + fp + fn, empty),
        "precision": _ratio(tp, tp + fp, empty),
        "recall": _ratio(tp, tp + fn, empty),
    }


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    return mask_scores(pred, gt)["dice"]


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    return mask_scores(pred, gt)["iou"]


def precision(pred: np.ndarray, gt: np.ndarray) -> float:
    return mask_scores(pred, gt)["precision"]


def recall(pred: np.ndarray, gt: np.ndarray) -> float:
    return mask_scores(pred, gt)["recall"]


def mean_scores(rows: Iterable[Mapping[str, float]], keys: Sequence[str] = MASK_METRICS) -> dict[str, float]:
    """Per-key mean over images; NaN when there are no rows."""
    rows = list(rows)
    return {k: (float(np.mean([r[k] for r in rows])) if rows else float("nan")) for k in keys}


def pooled_dice(counts: Iterable[tuple[int, int, int]]) -> float:
    """Dice of the (true positive, false positive, false negative) pixel counts summed over images."""
    tp = fp = fn = 0
    for t, f, n in counts:
        tp, fp, fn = tp + t, fp + f, fn + n
    return scores_from_counts(tp, fp, fn)["dice"]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two (x0, y0, x1, y1) boxes with exclusive x1/y1."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def average_precision(
    detections: Sequence[Sequence[tuple[Sequence[float], float]]],
    ground_truths: Sequence[Sequence[Sequence[float]]],
    iou_threshold: float = 0.5,
) -> float:
    """Box AP at one IoU threshold over a data set.

    ``detections[i]`` is a list of ``(box, score)`` for image ``i``;
    ``ground_truths[i]`` the list of true boxes for image ``i``. Returns 1.0 when
    there is no ground truth and no detection, 0.0 when there is no ground truth
    but there are detections (every one is a false positive).
    """
    if len(detections) != len(ground_truths):
        raise ValueError("detections and ground_truths must have one entry per image")
    n_gt = sum(len(g) for g in ground_truths)
    flat = [(float(score), i, box) for i, dets in enumerate(detections) for box, score in dets]
    if n_gt == 0:
        return 1.0 if not flat else 0.0
    flat.sort(key=lambda t: -t[0])
    used = [np.zeros(len(g), bool) for g in ground_truths]
    tps = np.zeros(len(flat))
    for k, (_, i, box) in enumerate(flat):
        best, best_j = iou_threshold, -1
        for j, g in enumerate(ground_truths[i]):
            if used[i][j]:
                continue
            o = box_iou(box, g)
            if o >= best:
                best, best_j = o, j
        if best_j >= 0:
            used[i][best_j] = True
            tps[k] = 1
    if not flat:
        return 0.0
    ctp = np.cumsum(tps)
    rec = ctp / n_gt
    prec = ctp / np.arange(1, len(flat) + 1)
    # all-point interpolation: precision envelope, area under the step curve
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[1.0], prec, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))
