"""Regression metrics for MC-dropout predictions, with their published definitions.

Taught in chapter 1 (sections "Real data" and "Uncertainty quality"); reused in chapter 2.
All functions take NumPy arrays or torch tensors and return Python floats or NumPy arrays, in the target's
original units.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import logsumexp
from scipy.stats import norm


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


def rmse(y, y_hat) -> float:
    """Root mean squared error sqrt(mean((y − ŷ)²)); for MC dropout ŷ is the MC mean (Gal & Ghahramani 2016)."""
    y, y_hat = _np(y), _np(y_hat)
    return float(np.sqrt(np.mean((y - y_hat) ** 2)))


def gaussian_log_likelihood(y, samples, tau: float, *, reduce: bool = True):
    """Test log-likelihood of MC-dropout samples under Gaussian noise of precision ``tau``.

    ``samples[T, N]`` are T stochastic predictions for N targets ``y[N]``. Following Gal & Ghahramani (2016,
    section 5.1 and their code), the predictive density is the mixture (1/T) Σ_t N(y; ŷ_t, τ⁻¹), so per point

        log p(y | x) = logsumexp_t(−½ τ (y − ŷ_t)²) − log T − ½ log 2π + ½ log τ,

    averaged over the test points when ``reduce`` (else returned per point).
    """
    y, s = _np(y), _np(samples)
    if s.ndim == y.ndim:
        s = s[None]
    T = s.shape[0]
    ll = logsumexp(-0.5 * tau * (y[None] - s) ** 2, axis=0) - math.log(T) - 0.5 * math.log(2 * math.pi) \
        + 0.5 * math.log(tau)
    return float(ll.mean()) if reduce else ll


def predictive_moments(samples, tau: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the MC predictive distribution: var = Var_t[ŷ_t] + 1/τ (Gal 2016, eq. 3.30).

    Without ``tau`` only the epistemic (model) part is returned.
    """
    s = _np(samples)
    var = s.var(0) + (1.0 / tau if tau else 0.0)
    return s.mean(0), np.sqrt(var)


def predictive_interval(mean, std, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Central ``level`` interval mean ± z σ of the moment-matched Gaussian predictive distribution."""
    z = norm.ppf(0.5 + level / 2)
    mean, std = _np(mean), _np(std)
    return mean - z * std, mean + z * std


def picp(y, lower, upper) -> float:
    """Prediction interval coverage probability: the fraction of targets inside [lower, upper]
    (Khosravi et al. 2011). A well-calibrated 95 % interval has PICP ≈ 0.95."""
    y, lower, upper = _np(y), _np(lower), _np(upper)
    return float(np.mean((y >= lower) & (y <= upper)))


def calibration_curve(y, mean, std, levels=None) -> tuple[np.ndarray, np.ndarray]:
    """Regression calibration curve of Kuleshov et al. (2018): for each expected level p, the observed fraction
    of targets with predictive CDF F(y) ≤ p, under the Gaussian predictive N(mean, std²).

    A calibrated model lies on the diagonal. Returns ``(expected, observed)``.
    """
    levels = np.linspace(0.0, 1.0, 21) if levels is None else np.asarray(levels, dtype=float)
    cdf = norm.cdf(_np(y), loc=_np(mean), scale=_np(std))
    observed = np.array([np.mean(cdf <= p) for p in levels])
    return levels, observed


def coverage_verdict(low: float, high: float, level: float = 0.95) -> str:
    """Word the coverage of a ``level`` prediction interval from a confidence interval ``[low, high]`` of its
    PICP: "too wide" only when the whole interval lies above ``level``, "too narrow" when it lies below, else
    "consistent with {level}". Taught in chapter 1 (section "Uncertainty quality")."""
    if low > level:
        return "too wide"
    if high < level:
        return "too narrow"
    return f"consistent with {level:.0%}".replace("%", " %")


def loglog_slope(x, squared_errors, *, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Slope of log RMS error against log ``x``, and its bootstrap standard error.

    ``squared_errors[i, r]``: repeat ``r`` of a mean squared error measured at ``x[i]`` (e.g. the error of an MC
    mean of ``x[i]`` samples). The RMS error at ``x[i]`` is ``sqrt(mean_r squared_errors[i, r])``; the slope is the
    least-squares fit on log–log axes (−½ for the 1/√T law of a Monte Carlo mean). The standard error resamples
    the repeats at every ``x`` with replacement. Taught in chapter 1 (section "How many samples?").
    """
    lx = np.log(_np(x))
    se = _np(squared_errors)
    if se.ndim != 2 or se.shape[0] != len(lx) or se.shape[1] < 2:
        raise ValueError(f"squared_errors must be [len(x), repeats >= 2], got {se.shape}")

    def slope(errs: np.ndarray) -> float:
        return float(np.polyfit(lx, 0.5 * np.log(errs.mean(1)), 1)[0])

    rng = np.random.default_rng(seed)
    reps = se.shape[1]
    boot = [slope(np.take_along_axis(se, rng.integers(0, reps, se.shape), 1)) for _ in range(n_boot)]
    return slope(se), float(np.std(boot, ddof=1))


__all__ = ["calibration_curve", "coverage_verdict", "gaussian_log_likelihood", "loglog_slope", "picp",
           "predictive_interval", "predictive_moments", "rmse"]
