"""Regression metrics against direct computations and libraries (helpers.metrics.regression)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.metrics import mean_squared_error

from helpers.metrics.regression import (calibration_curve, gaussian_log_likelihood, picp, predictive_interval,
                                        predictive_moments, rmse)

rng = np.random.default_rng(0)


def test_rmse_matches_scikit_learn_and_accepts_tensors():
    y, y_hat = rng.normal(size=50), rng.normal(size=50)
    assert rmse(y, y_hat) == pytest.approx(np.sqrt(mean_squared_error(y, y_hat)))
    assert rmse(torch.tensor(y), torch.tensor(y_hat)) == pytest.approx(rmse(y, y_hat))


def test_log_likelihood_with_one_sample_is_the_gaussian_log_density():
    y, mu, tau = rng.normal(size=30), rng.normal(size=30), 2.5
    expected = norm.logpdf(y, loc=mu, scale=1 / np.sqrt(tau)).mean()
    assert gaussian_log_likelihood(y, mu[None], tau) == pytest.approx(expected)


def test_log_likelihood_is_the_log_of_the_mixture_density():
    y, samples, tau = rng.normal(size=20), rng.normal(size=(200, 20)) * 0.3, 4.0
    direct = np.log(norm.pdf(y[None], loc=samples, scale=1 / np.sqrt(tau)).mean(0))
    assert np.allclose(gaussian_log_likelihood(y, samples, tau, reduce=False), direct)
    # stable far in the tail, where the direct computation underflows to log(0)
    far = gaussian_log_likelihood(y + 100, samples, tau)
    assert np.isfinite(far) and far < -1e4


def test_log_likelihood_does_not_change_when_samples_are_repeated():
    y, samples = rng.normal(size=10), rng.normal(size=(7, 10))
    assert gaussian_log_likelihood(y, np.concatenate([samples] * 3), 1.0) == \
        pytest.approx(gaussian_log_likelihood(y, samples, 1.0))


def test_picp_counts_the_fraction_inside():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    assert picp(y, np.full(4, 0.5), np.full(4, 2.0)) == 0.5  # 1 and 2 inside, bounds included


def test_gaussian_intervals_cover_their_level_on_gaussian_data():
    mean, std = rng.normal(size=20000), rng.uniform(0.5, 2, size=20000)
    y = mean + std * rng.standard_normal(20000)
    for level in (0.9, 0.95):
        lo, hi = predictive_interval(mean, std, level)
        assert picp(y, lo, hi) == pytest.approx(level, abs=0.01)


def test_calibration_curve_is_diagonal_when_calibrated_and_not_when_overconfident():
    mean, std = rng.normal(size=20000), np.ones(20000)
    y = mean + rng.standard_normal(20000)
    expected, observed = calibration_curve(y, mean, std)
    assert observed[0] == 0.0 and observed[-1] == 1.0 and np.all(np.diff(observed) >= 0)
    assert np.max(np.abs(observed - expected)) < 0.02
    _, over = calibration_curve(y, mean, std * 0.3)  # too narrow: the curve leaves the diagonal
    assert np.max(np.abs(over - expected)) > 0.2


def test_predictive_moments_add_the_noise_variance():
    samples = rng.normal(size=(500, 3))
    m, s = predictive_moments(samples, tau=4.0)
    assert np.allclose(m, samples.mean(0)) and np.allclose(s ** 2, samples.var(0) + 0.25)


def test_coverage_verdict_says_wide_or_narrow_only_when_the_interval_excludes_the_level():
    from helpers.metrics.regression import coverage_verdict

    assert coverage_verdict(0.96, 0.99) == "too wide"
    assert coverage_verdict(0.85, 0.93) == "too narrow"
    assert coverage_verdict(0.93, 0.97) == "consistent with 95 %"
    assert coverage_verdict(0.86, 0.92, level=0.9) == "consistent with 90 %"


def test_loglog_slope_recovers_the_monte_carlo_rate_and_a_steeper_one():
    from helpers.metrics.regression import loglog_slope

    g = np.random.default_rng(1)
    T = np.array([1, 3, 10, 30, 100, 300, 1000])
    # squared error of a mean of T standard normals, 200 repeats: E = 1/T, so the RMS slope is -1/2
    sq = np.stack([[g.normal(size=t).mean() ** 2 for _ in range(200)] for t in T])
    slope, se = loglog_slope(T, sq, n_boot=300)
    assert abs(slope + 0.5) < 3 * se and 0 < se < 0.05
    slope_fast, _ = loglog_slope(T, sq / T[:, None], n_boot=50)     # 1/T^2 in the squares: slope -1
    assert slope_fast == pytest.approx(slope - 0.5, abs=1e-9)
    with pytest.raises(ValueError, match="repeats"):
        loglog_slope(T, sq[:, :1])
