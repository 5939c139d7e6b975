"""Is the uncertainty any good? Calibration and referral metrics, each with its published definition.

Taught in chapter 2, section "Is the uncertainty any good?"; used by every chapter that reports probabilities.
All functions accept torch tensors or NumPy arrays and return floats or NumPy arrays.

Class probabilities are ``probs[N, C]``, or ``probs[N]`` for a binary problem: the probability of class 1. Labels
are class indices ``[N]``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import optimize, special, stats

from helpers.errors import BookError


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=float)


def _as_two_class(probs: np.ndarray) -> np.ndarray:
    """``[N]`` probabilities of class 1 -> ``[N, 2]``; ``[N, C]`` is returned as is."""
    if probs.ndim == 1:
        return np.stack([1.0 - probs, probs], axis=1)
    if probs.ndim == 2:
        return probs
    raise BookError(f"probs of shape {probs.shape}: expected [N, C] class probabilities or [N] for class 1")


def _checked(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    p = _as_two_class(_np(probs))
    y = _np(labels).astype(int).ravel()
    if len(y) != len(p):
        raise BookError(f"{len(p)} predictions but {len(y)} labels: they must be paired one to one")
    if y.min(initial=0) < 0 or y.max(initial=0) >= p.shape[1]:
        raise BookError(f"labels must be class indices in 0..{p.shape[1] - 1}; got {y.min()}..{y.max()}")
    return p, y


def confidence_and_correct(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    """Confidence (largest class probability; max(p, 1 − p) when binary) and whether the top class is right."""
    p, y = _checked(probs, labels)
    return p.max(1), (p.argmax(1) == y).astype(float)


def reliability_diagram_data(probs, labels, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Per-bin data of a reliability diagram with ``n_bins`` equal-width confidence bins (Guo et al. 2017).

    Bin ``m`` holds the cases with confidence in ((m−1)/M, m/M]. Returns ``edges`` [M+1], ``count`` [M],
    ``confidence`` and ``accuracy`` [M] (mean confidence and accuracy in each bin; NaN where a bin is empty).
    Taught in chapter 2.
    """
    conf, correct = confidence_and_correct(probs, labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
        acc = np.bincount(idx, weights=correct, minlength=n_bins) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": acc}


def expected_calibration_error(probs, labels, n_bins: int = 15) -> float:
    """ECE = Σ_m (|B_m| / n) |acc(B_m) − conf(B_m)| over ``n_bins`` equal-width confidence bins (Guo et al. 2017).

    Confidence is the top-class probability (max(p, 1 − p) for ``probs[N]``). 0 for a perfectly calibrated model;
    it is a binned estimate, biased upward for small ``n`` (about 0.01–0.03 for a few hundred cases).
    Taught in chapter 2.
    """
    d = reliability_diagram_data(probs, labels, n_bins)
    full = d["count"] > 0
    gap = np.abs(d["accuracy"][full] - d["confidence"][full])
    return float((d["count"][full] / d["count"].sum() * gap).sum())


def negative_log_likelihood(probs, labels, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood −(1/n) Σ log p(y_i | x_i) in nats (the log loss, as
    reported by Guo et al. 2017); probabilities are clipped at ``eps``. Taught in chapter 2."""
    p, y = _checked(probs, labels)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], eps, 1.0))))


def brier_score(probs, labels) -> float:
    """Brier score (Brier 1950): mean over cases of Σ_c (p_c − 1[y = c])².

    For ``probs[N]`` (binary) it is the usual binary form mean (p − y)², i.e. half the two-class sum (the value of
    ``sklearn.metrics.brier_score_loss``); for ``probs[N, C]`` the sum runs over all ``C`` classes. 0 is perfect.
    Taught in chapter 2.
    """
    raw = _np(probs)
    if raw.ndim == 1:
        y = _np(labels).ravel()
        return float(np.mean((raw - y) ** 2))
    p, y = _checked(probs, labels)
    onehot = np.eye(p.shape[1])[y]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def temperature_scale(logits, temperature: float) -> np.ndarray:
    """Probabilities softmax(logits / T) for ``logits[N, C]``, or sigmoid(logits / T) for ``logits[N]``."""
    z = _np(logits) / temperature
    return special.expit(z) if z.ndim == 1 else special.softmax(z, axis=1)


def fit_temperature(logits, labels, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 minimising the NLL of softmax(logits / T).

    Fit it on a *validation* split, never on the test cases. ``logits[N, C]`` (or ``[N]`` for a sigmoid model).
    One parameter, so it changes confidence but never the predicted class (accuracy is unchanged).
    Taught in chapter 2.
    """
    z = _np(logits)
    y = _np(labels).astype(int).ravel()
    if z.ndim == 1:
        z = np.stack([np.zeros_like(z), z], axis=1)   # sigmoid(z) = softmax([0, z])_1

    def nll(log_t: float) -> float:
        return float(-np.mean(special.log_softmax(z / np.exp(log_t), axis=1)[np.arange(len(y)), y]))

    res = optimize.minimize_scalar(nll, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded",
                                   options={"xatol": 1e-6})
    return float(np.exp(res.x))


def risk_coverage_curve(uncertainty, error) -> tuple[np.ndarray, np.ndarray]:
    """Risk-coverage curve of selective prediction (Geifman & El-Yaniv 2017): refer the most uncertain cases.

    Cases are kept from the least to the most uncertain; at each distinct uncertainty threshold, ``coverage`` is
    the fraction kept and ``risk`` the mean ``error`` (0/1 mistakes, or any per-case loss) of the kept cases.
    Tied uncertainties are kept or referred together. Returns ``(coverage, risk)``, coverage increasing to 1.
    Taught in chapter 2.
    """
    u, e = _np(uncertainty).ravel(), _np(error).ravel()
    if len(u) != len(e) or len(u) == 0:
        raise BookError(f"uncertainty ({len(u)}) and error ({len(e)}) must be non-empty and paired one to one")
    order = np.argsort(u, kind="stable")
    u, e = u[order], e[order]
    last = np.r_[np.nonzero(np.diff(u))[0], len(u) - 1]      # last index of each group of tied values
    kept = last + 1
    return kept / len(u), np.cumsum(e)[last] / kept


def aurc(uncertainty, error) -> float:
    """Area under the risk-coverage curve, Σ risk × Δcoverage (Geifman et al. 2019); lower is better.

    Without ties it is (1/n) Σ_k risk(k). A random ranking gives about the mean error r; the best possible
    ranking of 0/1 errors gives about r + (1 − r) ln(1 − r). Taught in chapter 2.
    """
    coverage, risk = risk_coverage_curve(uncertainty, error)
    return float(np.sum(risk * np.diff(np.r_[0.0, coverage])))


def regression_calibration_curve(mean, std, y, levels=None) -> tuple[np.ndarray, np.ndarray]:
    """Calibration curve of Gaussian predictive intervals (Kuleshov et al. 2018, central intervals).

    For each nominal level ``p`` (default 0.05, 0.10, ..., 0.95), the observed fraction of targets ``y`` inside
    the central interval mean ± z_{(1+p)/2}·std. A calibrated model lies on the diagonal; below it the intervals are
    too narrow (over-confident). Returns ``(levels, observed)``. Taught in chapter 2.
    """
    m, s, t = _np(mean).ravel(), _np(std).ravel(), _np(y).ravel()
    levels = np.arange(0.05, 0.96, 0.05) if levels is None else np.asarray(levels, dtype=float)
    z = np.abs(t - m) / np.maximum(s, 1e-12)
    half_width = stats.norm.ppf(0.5 + levels / 2)
    return levels, (z[None, :] <= half_width[:, None]).mean(1)


__all__ = ["aurc", "brier_score", "confidence_and_correct", "expected_calibration_error", "fit_temperature",
           "negative_log_likelihood", "regression_calibration_curve", "reliability_diagram_data",
           "risk_coverage_curve", "temperature_scale"]
