"""Confidence intervals for any metric by the bootstrap, resampling cases or whole groups (patients, images).

Taught in the tour and used for every headline number of the book: a test set of a few dozen patients gives a
metric that could easily have come out a few points higher or lower, and the reader must see how many.

The percentile bootstrap (Efron & Tibshirani 1993, ch. 13): draw ``n_boot`` resamples of the test cases with
replacement, compute the metric on each, and report the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles.
With ``groups`` (a patient id per case) whole groups are drawn, because images of one patient are not independent.
"""

from __future__ import annotations

from dataclasses import dataclass
import warnings
from typing import Callable, Sequence

import numpy as np
import torch

from helpers.errors import BookError


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    level: float = 0.95

    def __str__(self) -> str:
        return self.format()

    def format(self, spec: str = ".3f") -> str:
        """``0.912 (95 % CI 0.871–0.946)``."""
        return (f"{self.estimate:{spec}} ({self.level:.0%} CI {self.low:{spec}}–{self.high:{spec}})"
                .replace("% CI", " % CI"))


def bootstrap_ci(metric: Callable[..., float], *arrays: Sequence, groups: Sequence | None = None,
                 n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    """Percentile-bootstrap interval of ``metric(*arrays)``; the arrays are paired case by case.

    ``groups``: one label per case (e.g. patient id); resamples draw whole groups. Resamples on which the metric
    is undefined (it raises ``ValueError`` or returns NaN, e.g. an AUC with one class only) are skipped; if more
    than a tenth are, the interval is refused rather than biased.

    >>> bootstrap_ci(roc_auc_score, y_test, p_test, groups=patient_ids)
    """
    if not arrays:
        raise BookError("bootstrap_ci: give the arrays the metric is computed from")
    data = [_np(a) for a in arrays]
    n = len(data[0])
    if any(len(a) != n for a in data):
        raise BookError(f"bootstrap_ci: arrays of lengths {[len(a) for a in data]} must be paired one to one")
    if n < 2:
        raise BookError(f"bootstrap_ci: {n} case(s) are too few for an interval")
    if not 0 < level < 1:
        raise BookError(f"bootstrap_ci: level={level} must lie between 0 and 1")
    rng = np.random.default_rng(seed)
    if groups is None:
        members = [np.array([i]) for i in range(n)]
    else:
        g = _np(groups)
        if len(g) != n:
            raise BookError(f"bootstrap_ci: {len(g)} group labels for {n} cases")
        _, inverse = np.unique(g, return_inverse=True)
        members = [np.flatnonzero(inverse == k) for k in range(inverse.max() + 1)]
    estimate = float(metric(*data))
    values = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(members), len(members))
        idx = np.concatenate([members[k] for k in pick])
        try:
            # A resample where the metric is undefined is counted below, not warned about.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                v = float(metric(*[a[idx] for a in data]))
        except ValueError:
            continue
        if np.isfinite(v):
            values.append(v)
    if len(values) < 0.9 * n_boot:
        raise BookError(f"bootstrap_ci: the metric was undefined on {n_boot - len(values)} of {n_boot} resamples; "
                        "the test set is too small or too unbalanced for an interval")
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return Interval(estimate, float(lo), float(hi), level)


__all__ = ["Interval", "bootstrap_ci"]
