"""Segmentation metrics of chapter 4 against their definitions and scikit-learn / torchmetrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from helpers.metrics.segmentation import (binned_mean, dice, referral_curve, segmentation_scores,
                                          signed_distance_to_edge, uncertainty_error_overlap, vessel_width)


@pytest.fixture
def maps():
    rng = np.random.default_rng(0)
    target = rng.random((2, 40, 50)) < 0.2
    probs = np.clip(target * 0.4 + rng.random(target.shape) * 0.6, 0, 1)
    fov = np.zeros_like(target)
    fov[:, 5:35, 5:45] = True
    return probs, target, fov


def test_scores_agree_with_sklearn_inside_fov(maps):
    probs, target, fov = maps
    s = segmentation_scores(probs, target, fov)
    p, g = probs[fov] > 0.5, target[fov]
    assert s["dice"] == pytest.approx(f1_score(g, p))
    assert s["dice"] == pytest.approx(dice(probs > 0.5, target, fov))
    assert s["accuracy"] == pytest.approx(accuracy_score(g, p))
    assert s["sensitivity"] == pytest.approx(recall_score(g, p))
    assert s["specificity"] == pytest.approx(recall_score(~g, ~p))


def test_auc_is_the_mann_whitney_probability(maps):
    from scipy.stats import mannwhitneyu

    probs, target, fov = maps
    pos, neg = probs[fov & target], probs[fov & ~target]
    u = mannwhitneyu(pos, neg).statistic  # AUC = P(score of a vessel pixel > score of a background pixel)
    assert segmentation_scores(probs, target, fov)["auc"] == pytest.approx(u / (pos.size * neg.size))


def test_pixels_outside_fov_do_not_count(maps):
    probs, target, fov = maps
    wrecked = np.where(fov, probs, 1.0 - target)  # every pixel outside the FOV wrong
    assert segmentation_scores(wrecked, target, fov) == segmentation_scores(probs, target, fov)


def test_dice_axioms():
    a = np.zeros((10, 10), bool)
    a[2:5, 2:5] = True
    assert dice(a, a) == 1.0
    assert dice(a, ~a) == 0.0
    assert dice(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_uncertainty_error_overlap_perfect_and_brute_force(maps):
    probs, target, fov = maps
    error = (probs > 0.5) != target
    assert uncertainty_error_overlap(error.astype(float), error, fov)[0] == pytest.approx(1.0)
    unc = 0.5 - np.abs(probs - 0.5)
    best, t = uncertainty_error_overlap(unc, error, fov, thresholds=50)
    u = unc[fov]
    u = (u - u.min()) / (u.max() - u.min())
    brute = max(dice(u > s, error[fov]) for s in np.linspace(0, 1, 50, endpoint=False)[1:])
    assert best == pytest.approx(brute)
    assert uncertainty_error_overlap(unc, error, fov, thresholds=float(t))[0] <= 1.0


def test_referral_curve_oracle_reaches_one_and_random_stays_flat(maps):
    probs, target, fov = maps
    error = ((probs > 0.5) != target).astype(float)
    f, d = referral_curve(probs, target, error, fov, fractions=[0.0, error[fov].mean() + 0.01])
    assert d[0] == pytest.approx(segmentation_scores(probs, target, fov)["dice"])
    assert d[1] == pytest.approx(1.0)  # referring exactly the errors leaves a perfect segmentation
    _, d_rand = referral_curve(probs, target, np.random.default_rng(1).random(probs.shape), fov, [0.0, 0.3])
    assert abs(d_rand[1] - d_rand[0]) < 0.05


def test_vessel_width_of_bars():
    img = np.zeros((40, 60), bool)
    img[5:6, 5:55] = True     # 1 px wide
    img[20:25, 5:55] = True   # 5 px wide
    w = vessel_width(img)
    assert np.median(w[5, 10:50]) == pytest.approx(1, abs=0.5)
    assert np.median(w[20:25, 10:50]) == pytest.approx(5, abs=0.5)
    assert (w[~img] == 0).all()
    sd = signed_distance_to_edge(img)
    assert (sd[img] > 0).all() and (sd[~img] < 0).all() and sd[5, 10] == 0.5 and sd[4, 10] == -0.5


def test_binned_mean():
    centres, means, counts = binned_mean(np.array([1.0, 3.0, 10.0]), np.array([0.2, 0.4, 1.5]), [0, 1, 2, 3])
    assert means[0] == pytest.approx(2.0) and means[1] == pytest.approx(10.0) and np.isnan(means[2])
    assert counts.tolist() == [2, 1, 0] and centres.tolist() == [0.5, 1.5, 2.5]
