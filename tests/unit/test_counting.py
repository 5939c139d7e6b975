"""Counting metrics and the dual-output counting network of chapter 6."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.errors import BookError
from helpers.metrics.counting import (count_errors, dsb_average_precision, instance_f1, iou_matrix,
                                      match_instances, mean_average_precision)


def squares():
    true = np.zeros((30, 30), int)
    true[0:10, 0:10] = 1
    true[0:10, 20:30] = 2
    pred = np.zeros((30, 30), int)
    pred[0:10, 0:8] = 7          # IoU 0.8 with nucleus 1
    pred[20:30, 20:30] = 9       # a false positive; nucleus 2 missed
    return true, pred


def test_iou_and_matching():
    true, pred = squares()
    iou = iou_matrix(true, pred)
    assert iou.shape == (2, 2) and np.isclose(iou[0, 0], 0.8) and iou[1].sum() == 0
    assert match_instances(true, pred) == (1, 1, 1)
    assert instance_f1(true, pred) == 0.5
    assert instance_f1(true, true) == 1.0 and instance_f1(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0
    with pytest.raises(BookError, match="one-to-one"):
        match_instances(true, pred, 0.3)


def test_dsb_score_follows_the_competition_definition():
    true, pred = squares()
    # IoU 0.8 is a hit at thresholds 0.5 .. 0.75 (6 of 10): 1/3 there, 0/4 above
    assert np.isclose(dsb_average_precision(true, pred), 6 / 10 * 1 / 3)
    assert dsb_average_precision(true, true) == 1.0
    assert dsb_average_precision(true, np.zeros_like(true)) == 0.0
    assert np.isclose(mean_average_precision([true, true], [true, pred]), (1 + 0.2) / 2)


def test_merged_nuclei_cost_a_match():
    true = np.zeros((10, 20), int)
    true[:, :10], true[:, 10:] = 1, 2
    merged = (true > 0).astype(int)        # one blob over two touching nuclei: IoU 0.5 with each, no match
    assert match_instances(true, merged) == (0, 1, 2)


def test_count_errors():
    e = count_errors([10, 0, 30], [12, 1, 27])
    assert np.isclose(e["mae"], 2.0) and np.isclose(e["relative_error"], 6 / 40) and np.isclose(e["bias"], 0)
    with pytest.raises(BookError):
        count_errors([1, 2], [1])
