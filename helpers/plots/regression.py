"""Figures for regression with uncertainty: predictive bands and calibration curves. Taught in chapter 1."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from helpers.plots.style import COLORS


def _np(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def plot_predictive_bands(ax: plt.Axes, x, mean, std, *, x_train=None, y_train=None, truth=None,
                          title: str = "", color: str = COLORS[0], label: str = "predictive mean",
                          gap: tuple[float, float] | None = None) -> plt.Axes:
    """Predictive mean with ±1σ and ±2σ bands over a 1-D input ``x``; training points and the true curve if given.

    ``gap`` shades an input interval that had no training data.
    """
    x, mean, std = _np(x).ravel(), _np(mean).ravel(), _np(std).ravel()
    if gap is not None:
        ax.axvspan(*gap, color="0.92", zorder=0, label="no training data")
    ax.fill_between(x, mean - 2 * std, mean + 2 * std, color=color, alpha=0.18, lw=0, label="±2σ")
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.35, lw=0, label="±1σ")
    ax.plot(x, mean, color=color, lw=2, label=label)
    if truth is not None:
        ax.plot(x, _np(truth).ravel(), color="k", lw=1, ls="--", label="true function")
    if x_train is not None:
        ax.scatter(_np(x_train).ravel(), _np(y_train).ravel(), s=10, color=COLORS[3], zorder=3,
                   label="training data")
    ax.set_xlabel("input x")
    ax.set_ylabel("output y")
    ax.set_title(title)
    return ax


def plot_calibration(ax: plt.Axes, expected, observed, *, label: str = "model", color: str | None = None,
                     title: str = "Calibration of the predictive distribution") -> plt.Axes:
    """Observed vs expected cumulative frequency (Kuleshov et al. 2018): the diagonal is perfect calibration;
    an S-shape steeper than the diagonal means too-wide predictive distributions (under-confident), a flatter
    one too narrow (over-confident). Call it once per model on the same axes: the diagonal is drawn once."""
    if not any(line.get_label() == "perfect calibration" for line in ax.get_lines()):  # once per axes
        ax.plot([0, 1], [0, 1], color="0.5", ls="--", lw=1, label="perfect calibration")
    ax.plot(_np(expected), _np(observed), marker="o", ms=3, color=color, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("expected fraction (predicted CDF level)")
    ax.set_ylabel("observed fraction of test targets")
    ax.set_title(title)
    ax.legend(loc="upper left")
    return ax


__all__ = ["plot_calibration", "plot_predictive_bands"]
