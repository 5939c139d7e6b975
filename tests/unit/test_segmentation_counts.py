"""Per-image counts of chapter 4's bootstrap: pooled from counts, every metric equals the metric of the pooled
pixels (so a confidence interval is computed for the number the chapter prints, not an approximation of it)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.errors import BookError
from helpers.metrics.bootstrap import bootstrap_ci
from helpers.metrics.segmentation import (class_histograms, fit_overlap_threshold, overlap_counts,
                                          overlap_from_counts, referral_counts, referral_curve,
                                          referral_dice_from_counts, scores_from_histograms,
                                          segmentation_scores, uncertainty_error_overlap)


@pytest.fixture
def images():
    """Four 'images' of different sizes: probabilities, labels, an uncertainty map and a field of view."""
    rng = np.random.default_rng(3)
    out = []
    for shape in [(30, 40), (25, 50), (40, 40), (20, 30)]:
        g = rng.random(shape) < 0.15
        p = np.clip(0.35 * g + 0.65 * rng.random(shape), 0, 1)
        u = 0.5 - np.abs(p - 0.5) + 0.05 * rng.random(shape)
        fov = np.ones(shape, bool)
        fov[:3] = False
        out.append((p, g, u, fov))
    return out


def pooled(images, k):
    return np.concatenate([im[k][im[3]] for im in images])


def test_scores_from_histograms_equal_pooled_scores(images):
    hist = np.stack([class_histograms(p, g, fov) for p, g, _, fov in images])
    got = scores_from_histograms(hist)
    want = segmentation_scores(pooled(images, 0), pooled(images, 1))
    for k in ("dice", "accuracy", "sensitivity", "specificity"):
        assert got[k] == pytest.approx(want[k], abs=1e-12), k
    assert got["auc"] == pytest.approx(want["auc"], abs=2e-4)   # ties only within one bin of 1e-4
    assert scores_from_histograms(hist, threshold=0.3)["dice"] == pytest.approx(
        segmentation_scores(pooled(images, 0), pooled(images, 1), threshold=0.3)["dice"])


def test_histogram_auc_of_a_perfect_and_a_useless_ranking():
    g = np.arange(1000) % 2 == 0
    assert scores_from_histograms(class_histograms(g * 0.9 + 0.05, g))["auc"] == 1.0
    assert scores_from_histograms(class_histograms(np.full(1000, 0.3), g))["auc"] == 0.5
    with pytest.raises(BookError):
        scores_from_histograms(np.zeros((3, 10)))


def test_overlap_from_counts_equals_pooled_overlap(images):
    errors = [((p > 0.5) != g) for p, g, _, _ in images]
    t = 0.3
    counts = np.stack([overlap_counts(u, e, t, fov) for (_, _, u, fov), e in zip(images, errors)])
    e_pooled = np.concatenate([e[im[3]] for e, im in zip(errors, images)])
    assert overlap_from_counts(counts) == pytest.approx(
        uncertainty_error_overlap(pooled(images, 2), e_pooled, thresholds=t)[0])


def test_fitted_overlap_threshold_is_in_the_maps_units_and_attains_the_best_overlap(images):
    p, g, u, fov = images[0]
    e = (p > 0.5) != g
    best, _ = uncertainty_error_overlap(3.0 * u + 1.0, e, fov)
    t = fit_overlap_threshold(3.0 * u + 1.0, e, fov)
    assert 1.0 <= t <= 3.0 * u.max() + 1.0
    assert overlap_from_counts(overlap_counts(3.0 * u + 1.0, e, t, fov)) == pytest.approx(best)


def test_referral_dice_from_counts_matches_referral_curve(images):
    u_all = pooled(images, 2)
    edges = np.quantile(u_all, np.linspace(0, 1, 2001))
    counts = np.stack([referral_counts(p, g, u, edges, fov) for p, g, u, fov in images])
    assert counts.sum() == u_all.size
    for f in (0.0, 0.1, 0.25):
        _, want = referral_curve(pooled(images, 0), pooled(images, 1), u_all, fractions=[f])
        assert referral_dice_from_counts(counts, f) == pytest.approx(want[0], abs=2e-3), f


def test_bootstrap_over_images_of_pooled_counts(images):
    hist = np.stack([class_histograms(p, g, fov) for p, g, _, fov in images])
    ci = bootstrap_ci(lambda h: scores_from_histograms(h)["dice"], hist, n_boot=200)
    assert ci.low <= ci.estimate <= ci.high and ci.high - ci.low > 0
