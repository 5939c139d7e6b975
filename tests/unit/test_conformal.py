"""Split conformal intervals (chapter 6): the finite-sample quantile, coverage, and refusal of bad input."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.conformal import (conformal_interval, conformal_quantile, coverage, coverage_curve,
                               gaussian_interval, scores)
from helpers.errors import BookError


def test_quantile_is_the_ceil_rank():
    s = np.arange(1, 20, dtype=float)                # n = 19: ceil(20 * 0.9) = 18th smallest
    assert conformal_quantile(s, 0.1) == 18.0
    assert conformal_quantile(np.arange(1, 9.0), 0.1) == float("inf")   # n = 8 < 1/alpha - 1
    with pytest.raises(BookError, match="alpha"):
        conformal_quantile(s, 1.5)


def test_coverage_guarantee_holds_for_a_miscalibrated_model():
    """A model whose std is 3 times too small covers far too little; conformal calibration restores ≥ 90 %."""
    rng = np.random.default_rng(0)
    covs, naive = [], []
    for _ in range(200):
        n = 40
        std = rng.uniform(0.5, 2.0, 2 * n)
        y = rng.normal(0, std)
        model_std = std / 3
        lo, hi = conformal_interval(np.zeros(n), model_std[n:], y[:n], np.zeros(n), model_std[:n], 0.9)
        covs.append(coverage(y[n:], lo, hi))
        naive.append(coverage(y[n:], *gaussian_interval(np.zeros(n), model_std[n:], 0.9)))
    assert np.mean(covs) >= 0.89 and np.mean(naive) < 0.5
    assert np.mean(covs) <= 0.9 + 1 / 41 + 0.02      # and not much more (exchangeable scores)


def test_gaussian_interval_and_curve():
    lo, hi = gaussian_interval([0.0], [1.0], 0.9)
    assert np.isclose(hi[0], 1.6448536, atol=1e-6) and np.isclose(lo[0], -hi[0])
    rng = np.random.default_rng(1)
    y = rng.normal(size=20000)
    curve = coverage_curve(y, np.zeros_like(y), np.ones_like(y), [0.5, 0.9])
    assert np.allclose(curve, [0.5, 0.9], atol=0.01)


def test_bad_scales_are_refused():
    with pytest.raises(BookError, match="positive"):
        scores([1.0], [0.0], [0.0])
    with pytest.raises(BookError, match="shapes"):
        scores([1.0, 2.0], [0.0], [1.0])
