"""Figures of chapter 2: uncertainty bands, reliability diagrams, regression calibration and risk-coverage curves.

Computation lives in :mod:`helpers.metrics.calibration`; these functions only draw, on an ``ax`` you pass.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch
import torch

from helpers.metrics.calibration import aurc, expected_calibration_error, reliability_diagram_data, \
    risk_coverage_curve
from helpers.plots.style import COLORS


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=float)


def plot_uncertainty_bands(ax: plt.Axes, x, mean, epistemic, aleatoric, *, x_train=None, y_train=None,
                           truth=None, k: float = 2.0, title: str = "") -> None:
    """Mean ± k·std bands of a 1-D regression: aleatoric alone (blue), widened to the total (orange edges).

    ``epistemic`` and ``aleatoric`` are *variances* (as returned by :func:`helpers.uncertainty.regression_summary`);
    the gap between the two bands is what the model does not know. ``truth = (mean, std)`` draws the true ±k·σ.
    Taught in chapter 2.
    """
    x, m = _np(x).ravel(), _np(mean).ravel()
    ep, al = _np(epistemic).ravel(), _np(aleatoric).ravel()
    tot = np.sqrt(ep + al)
    if x_train is not None:
        ax.scatter(_np(x_train).ravel(), _np(y_train).ravel(), s=4, color="0.55", alpha=0.6, label="training data")
    al_sd = np.sqrt(al)
    ax.fill_between(x, m - k * al_sd, m + k * al_sd, color=COLORS[0], alpha=0.35, lw=0,
                    label=f"±{k:g} std, aleatoric")
    ax.fill_between(x, m + k * al_sd, m + k * tot, color=COLORS[1], alpha=0.6, lw=0,
                    label=f"widened to ±{k:g} std, total")
    ax.fill_between(x, m - k * tot, m - k * al_sd, color=COLORS[1], alpha=0.6, lw=0)
    ax.plot(x, m, color=COLORS[0], lw=1.5, label="predictive mean")
    if truth is not None:
        tm, ts = _np(truth[0]).ravel(), _np(truth[1]).ravel()
        ax.plot(x, tm, color="k", lw=1, ls="--", label="true mean")
        ax.plot(x, tm + k * ts, color="k", lw=0.8, ls=":", label=f"true ±{k:g}σ")
        ax.plot(x, tm - k * ts, color="k", lw=0.8, ls=":")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)


def plot_reliability_diagram(ax: plt.Axes, probs, labels, n_bins: int = 15, title: str = "",
                             color: str = COLORS[0], legend: bool = True) -> float:
    """Reliability diagram (Guo et al. 2017): accuracy per confidence bin against the diagonal; returns the ECE.

    Bars show each bin's accuracy, red boxes the gap to its mean confidence (empty bins are left out), and a grey
    step line the share of cases in each bin (on the same 0–1 axis). Taught in chapter 2.
    """
    d = reliability_diagram_data(probs, labels, n_bins)
    ece = expected_calibration_error(probs, labels, n_bins)
    left, width = d["edges"][:-1], np.diff(d["edges"])
    full = d["count"] > 0
    share = d["count"] / d["count"].sum()
    ax.bar(left[full], d["accuracy"][full], width=width[full], align="edge", color=color, edgecolor="white",
           label="accuracy")
    ax.bar(left[full], (d["confidence"] - d["accuracy"])[full], bottom=d["accuracy"][full], width=width[full],
           align="edge", color="#D55E00", alpha=0.25, edgecolor="#D55E00", lw=0.8, label="gap to mean confidence")
    ax.step(np.r_[left, 1.0], np.r_[share, share[-1]], where="post", color="0.3", lw=1,
            label="share of cases in the bin")
    handles = [Patch(color=color, label="accuracy"),
               Patch(facecolor="#D55E0040", edgecolor="#D55E00", label="gap to mean confidence"),
               plt.Line2D([], [], color="0.3", lw=1, label="share of cases in the bin"),
               plt.Line2D([], [], color="k", ls="--", lw=1, label="perfect calibration")]
    ax.plot([0, 1], [0, 1], color="k", ls="--", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy (bars), share of cases (line)")
    ax.set_title(f"{title} ECE = {ece:.3f}".strip())
    if legend:  # for a legend outside the axes: ``fig.legend(*ax.get_legend_handles_labels())``
        ax.legend(handles=handles, loc="upper left")
    return ece


def plot_regression_calibration(ax: plt.Axes, curves: dict[str, tuple], title: str = "") -> None:
    """Observed against nominal coverage of central intervals, one line per model: ``{name: (levels, observed)}``
    from :func:`helpers.metrics.calibration.regression_calibration_curve`. Taught in chapter 2."""
    ax.plot([0, 1], [0, 1], color="k", ls="--", lw=1, label="perfect calibration")
    for i, (name, (levels, observed)) in enumerate(curves.items()):
        ax.plot(levels, observed, marker="o", ms=3, color=COLORS[i % len(COLORS)], label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("observed coverage")
    ax.set_title(title)
    ax.legend(loc="upper left")


def plot_risk_coverage(ax: plt.Axes, curves: dict[str, tuple], error=None, title: str = "",
                       risk_label: str = "error of the cases kept") -> None:
    """Risk-coverage curves ``{name: (uncertainty, error)}`` with their AURC in the legend (Geifman & El-Yaniv 2017).

    With ``error`` given, the best possible ranking (mistakes referred first) is drawn as a dotted reference.
    Reading from the right: coverage 1 keeps every case; moving left refers the most uncertain to a human.
    Taught in chapter 2.
    """
    for i, (name, (unc, err)) in enumerate(curves.items()):
        cov, risk = risk_coverage_curve(unc, err)
        ax.plot(cov, risk, color=COLORS[i % len(COLORS)], lw=1.5, label=f"{name} (AURC {aurc(unc, err):.3f})")
    if error is not None:
        e = _np(error)
        ranked = e + 0.5 * np.arange(len(e)) / len(e)      # mistakes last; ties broken so each case is a step
        cov, risk = risk_coverage_curve(ranked, e)
        ax.plot(cov, risk, color="k", ls=":", lw=1, label=f"oracle (AURC {aurc(ranked, e):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("coverage (fraction of cases kept)")
    ax.set_ylabel(risk_label)
    ax.set_title(title)
    ax.legend()


__all__ = ["plot_regression_calibration", "plot_reliability_diagram", "plot_risk_coverage",
           "plot_uncertainty_bands"]
