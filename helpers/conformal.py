"""Split conformal prediction: intervals with a guaranteed coverage, calibrated on held-out data.

Taught in chapter 6 (an interval on every cell count). A model gives, for each image, a predicted value ``mean``
and a scale ``std`` (its own uncertainty). On ``n`` calibration images with known answers we compute the
normalised scores s_i = |y_i − mean_i| / std_i and take q, the ⌈(n + 1)(1 − α)⌉-th smallest. For a new image
exchangeable with them, ``mean ± q · std`` then covers the truth with probability at least 1 − α (Vovk et al.
2005; Lei et al. 2018, "Distribution-free predictive inference for regression", JASA; Angelopoulos & Bates 2023,
"Conformal prediction: a gentle introduction", section 2.3, "conformalized uncertainty scalars"). The guarantee
is marginal (on average over images), and it holds only for images like the calibration ones.
"""

from __future__ import annotations

import math

import numpy as np

from helpers.errors import BookError


def _np(a) -> np.ndarray:
    return np.asarray(a, dtype=float)


def scores(y, mean, std) -> np.ndarray:
    """Normalised non-conformity scores |y − mean| / std (std must be positive)."""
    y, mean, std = _np(y), _np(mean), _np(std)
    if not (y.shape == mean.shape == std.shape):
        raise BookError(f"conformal scores: shapes {y.shape}, {mean.shape}, {std.shape} must be equal")
    if (std <= 0).any() or not np.isfinite(std).all():
        raise BookError("conformal scores: every std must be positive and finite")
    return np.abs(y - mean) / std


def conformal_quantile(s, alpha: float) -> float:
    """The ⌈(n + 1)(1 − α)⌉-th smallest of the ``n`` calibration scores ``s`` (``inf`` when n is too small for
    coverage 1 − α: fewer than 1/α − 1 scores)."""
    s = np.sort(_np(s).ravel())
    if not 0 < alpha < 1:
        raise BookError(f"alpha={alpha}: the miscoverage must lie between 0 and 1")
    if s.size == 0:
        raise BookError("conformal_quantile: no calibration scores")
    k = math.ceil((s.size + 1) * (1 - alpha))
    return float("inf") if k > s.size else float(s[k - 1])


def gaussian_interval(mean, std, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` interval of N(mean, std²): the model's own, uncalibrated interval."""
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    mean, std = _np(mean), _np(std)
    return mean - z * std, mean + z * std


def conformal_interval(mean, std, cal_y, cal_mean, cal_std, level: float = 0.9
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Split-conformal ``level`` intervals ``mean ± q · std``, with q fitted on the calibration triples."""
    q = conformal_quantile(scores(cal_y, cal_mean, cal_std), 1 - level)
    mean, std = _np(mean), _np(std)
    return mean - q * std, mean + q * std


def coverage(y, low, high) -> float:
    """The fraction of ``y`` inside ``[low, high]``."""
    y, low, high = _np(y), _np(low), _np(high)
    return float(np.mean((y >= low) & (y <= high)))


def coverage_curve(y, mean, std, levels, *, cal: tuple | None = None) -> np.ndarray:
    """Observed coverage on (``y``, ``mean``, ``std``) at each nominal level: Gaussian intervals, or, with
    ``cal=(cal_y, cal_mean, cal_std)``, split-conformal ones."""
    out = []
    for level in levels:
        lo, hi = (conformal_interval(mean, std, *cal, level=level) if cal is not None
                  else gaussian_interval(mean, std, level))
        out.append(coverage(y, lo, hi))
    return np.array(out)


__all__ = ["conformal_interval", "conformal_quantile", "coverage", "coverage_curve", "gaussian_interval",
           "scores"]
