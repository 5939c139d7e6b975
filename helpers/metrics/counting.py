"""Instance segmentation and counting metrics for nuclei, with their published definitions. Taught in chapter 6.

- :func:`match_instances`  IoU of every predicted nucleus with every true one, and the one-to-one matches above an
  IoU threshold. Above 0.5 a match is unique: two objects cannot both overlap a third by more than half.
- :func:`instance_f1`      F1 = 2 TP / (2 TP + FP + FN) at IoU 0.5, per image (the usual object-level F1 of
  nucleus segmentation, e.g. Caicedo et al. 2019, Fig. 3).
- :func:`dsb_average_precision`  the 2018 Data Science Bowl score of one image: at each IoU threshold
  t ∈ {0.5, 0.55, ..., 0.95}, TP(t) / (TP(t) + FP(t) + FN(t)), averaged over the ten thresholds (Caicedo et al.
  2019, *Nature Methods* 16:1247, "Evaluation"; Kaggle's "mean average precision"); :func:`mean_average_precision`
  averages it over images. An image with no true and no predicted nucleus scores 1.
- :func:`count_errors`     mean absolute error of counts (MAE, the measure of Lempitsky & Zisserman 2010 and the
  cell-counting literature) and the relative error Σ|ŷ − y| / Σ y (MAE divided by the mean true count, defined
  also when some images have no cells).
"""

from __future__ import annotations

import numpy as np

from helpers.errors import BookError

#: The IoU thresholds of the Data Science Bowl 2018 score.
DSB_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    values = np.unique(labels)
    values = values[values > 0]
    out = np.zeros(labels.shape, np.int64)
    out[labels > 0] = np.searchsorted(values, labels[labels > 0]) + 1
    return out, len(values)


def iou_matrix(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU ``[n_true, n_pred]`` between the instances of two label images (0 = background) of equal shape."""
    true, pred = np.asarray(true), np.asarray(pred)
    if true.shape != pred.shape:
        raise BookError(f"label images of shapes {true.shape} and {pred.shape}: they must be equal")
    t, nt = _relabel(true)
    p, npred = _relabel(pred)
    inter = np.bincount((t * (npred + 1) + p).ravel(), minlength=(nt + 1) * (npred + 1)).reshape(nt + 1, npred + 1)
    area_t, area_p = inter.sum(1), inter.sum(0)
    union = area_t[:, None] + area_p[None, :] - inter
    iou = inter / np.maximum(union, 1)
    return iou[1:, 1:]


def match_instances(true: np.ndarray, pred: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int]:
    """``(TP, FP, FN)``: predicted nuclei whose IoU with a true one exceeds ``threshold`` (≥ 0.5, so the match is
    one to one) are true positives; unmatched predictions false positives, unmatched true nuclei false negatives."""
    if threshold < 0.5:
        raise BookError(f"threshold={threshold}: matching by IoU is one-to-one only from 0.5 up")
    iou = iou_matrix(true, pred)
    tp = int((iou > threshold).sum())
    return tp, iou.shape[1] - tp, iou.shape[0] - tp


def instance_f1(true: np.ndarray, pred: np.ndarray, threshold: float = 0.5) -> float:
    """Object-level F1 = 2 TP / (2 TP + FP + FN) at IoU ``threshold`` (1 when both images are empty)."""
    tp, fp, fn = match_instances(true, pred, threshold)
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def dsb_average_precision(true: np.ndarray, pred: np.ndarray) -> float:
    """The Data Science Bowl 2018 score of one image: TP/(TP+FP+FN) averaged over IoU thresholds 0.5–0.95."""
    iou = iou_matrix(true, pred)
    nt, npred = iou.shape
    if nt == 0 and npred == 0:
        return 1.0
    scores = []
    for t in DSB_THRESHOLDS:
        tp = int((iou > t).sum())
        scores.append(tp / (nt + npred - tp))
    return float(np.mean(scores))


def mean_average_precision(trues, preds) -> float:
    """:func:`dsb_average_precision` averaged over images (the competition's leaderboard score)."""
    return float(np.mean([dsb_average_precision(t, p) for t, p in zip(trues, preds, strict=True)]))


def count_errors(true_counts, pred_counts) -> dict[str, float]:
    """``mae`` (mean |ŷ − y|), ``relative_error`` (Σ|ŷ − y| / Σ y) and ``bias`` (mean ŷ − y) of counts."""
    y, y_hat = np.asarray(true_counts, float), np.asarray(pred_counts, float)
    if y.shape != y_hat.shape or y.size == 0:
        raise BookError(f"count_errors: {y.size} true and {y_hat.size} predicted counts; give one per image")
    if (y < 0).any():
        raise BookError("count_errors: true counts must be ≥ 0")
    err = np.abs(y_hat - y)
    return {"mae": float(err.mean()), "relative_error": float(err.sum() / max(y.sum(), 1e-12)),
            "bias": float((y_hat - y).mean())}


__all__ = ["DSB_THRESHOLDS", "count_errors", "dsb_average_precision", "instance_f1", "iou_matrix",
           "match_instances", "mean_average_precision"]
