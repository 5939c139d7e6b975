"""Figures of chapter 4: segmentation with its uncertainty maps, learning curves, referral curves.

Taught in chapter 4. Maps are H×W NumPy arrays (or tensors); grey images are shown in grey, uncertainty in the
book's sequential map with a colour bar, errors in two categorical colours.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch, Rectangle

from helpers.plots.style import COLORS, SEQUENTIAL, show_image, to_numpy_image

#: Error map colours: background (black), correct vessel (white), false positive, false negative.
ERROR_CMAP = ListedColormap(["black", "white", COLORS[1], COLORS[5]])


def error_map(probs, target, fov, threshold: float = 0.5) -> np.ndarray:
    """0 = correct background or outside the FOV, 1 = correct vessel, 2 = false positive, 3 = false negative."""
    p, g, f = (to_numpy_image(a) for a in (probs, target, fov))
    b, g, f = p > threshold, g.astype(bool), f.astype(bool)
    out = np.zeros(b.shape, dtype=np.uint8)
    out[b & g] = 1
    out[b & ~g & f] = 2
    out[~b & g & f] = 3
    return out


def _crop(a, box):
    a = to_numpy_image(a)
    if box is None:
        return a
    r0, r1, c0, c1 = box
    return a[r0:r1, c0:c1]


def plot_segmentation_uncertainty(image, target, probs, epistemic, aleatoric, fov, *, crop=None, mark=None,
                                  title: str = "", epistemic_label: str = "MI (nats)",
                                  aleatoric_label: str = "Var[p]", width: float = 6.8) -> plt.Figure:
    """The chapter's headline figure, two rows of three panels: image, ground truth and vessel probability;
    epistemic map, aleatoric map and errors (false positives and negatives in two colours).

    ``crop=(r0, r1, c0, c1)`` shows only that box, ``mark=(r0, r1, c0, c1)`` outlines a box on every panel (call
    once with ``mark=box`` for the whole image, once with ``crop=box`` for the zoom). The colour scales come from
    the 99.5th percentile of each map inside the whole field of view, so a crop and the whole image share them.
    At most three panels per row and ``width`` inches wide (6.8 in leaves room for the legend below and still
    shows the book's 10-pt text at 9 pt or more in the page's 720-px column)."""
    fov_np = to_numpy_image(fov) > 0
    emax = float(np.nanpercentile(to_numpy_image(epistemic)[fov_np], 99.5)) or 1e-6
    amax = float(np.nanpercentile(to_numpy_image(aleatoric)[fov_np], 99.5)) or 1e-6
    errors = error_map(probs, target, fov)
    fig, axes = plt.subplots(2, 3, figsize=(width, 0.7 * width))
    show_image(axes[0, 0], _crop(image, crop), "fundus image")
    show_image(axes[0, 1], _crop(target, crop), "ground truth (1st observer)")
    show_image(axes[0, 2], _crop(probs, crop), "vessel probability", cmap="gray", vmin=0, vmax=1,
               colorbar="p(vessel)")
    show_image(axes[1, 0], _crop(epistemic, crop), "epistemic (MC dropout)", cmap=SEQUENTIAL, vmin=0,
               vmax=emax, colorbar=epistemic_label)
    show_image(axes[1, 1], _crop(aleatoric, crop), "aleatoric (variance head)", cmap=SEQUENTIAL, vmin=0,
               vmax=amax, colorbar=aleatoric_label)
    show_image(axes[1, 2], _crop(errors, crop), "errors at p > 0.5", cmap=ERROR_CMAP, vmin=-0.5, vmax=3.5)
    axes[1, 2].legend(handles=[Patch(color=COLORS[1], label="false positive"),
                               Patch(color=COLORS[5], label="false negative")],
                      loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=1, frameon=False)
    if mark is not None:
        r0, r1, c0, c1 = mark
        for ax in axes.flat:
            ax.add_patch(Rectangle((c0, r0), c1 - c0, r1 - r0, fill=False, ec=COLORS[2], lw=1.5))
    if title:
        fig.suptitle(title)
    return fig


def plot_learning_curves(ax: plt.Axes, curves: dict, reference: tuple[float, float] | None = (0.22, 0.26),
                         title: str = "Soft Dice loss during training") -> None:
    """Training and validation soft Dice loss against the step, with the original work's final losses
    (training 0.22, validation 0.26) as dashed lines."""
    ax.plot(curves["step"], curves["train_dice_loss"], marker="o", ms=3, label="training (patches)")
    if curves.get("val_dice_loss"):
        ax.plot(curves["step"], curves["val_dice_loss"], marker="s", ms=3, label="validation (full images)")
    if reference is not None:
        ax.axhline(reference[0], color=COLORS[0], ls="--", lw=1, label=f"original work, training {reference[0]}")
        ax.axhline(reference[1], color=COLORS[1], ls="--", lw=1, label=f"original work, validation {reference[1]}")
    ax.set_xlabel("training step")
    ax.set_ylabel("soft Dice loss (1 − Dice)")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend()


def plot_referral_curves(ax: plt.Axes, curves: dict[str, tuple], title: str = "Referral curves") -> None:
    """Dice of the kept pixels against the fraction referred, one line per uncertainty measure:
    ``{name: (fractions, dice)}``."""
    for i, (name, (f, d)) in enumerate(curves.items()):
        ax.plot(100 * np.asarray(f), d, marker="o", ms=3, color=COLORS[i % len(COLORS)], label=name)
    ax.set_xlabel("pixels referred to a human (% of the field of view, most uncertain first)")
    ax.set_ylabel("Dice of the pixels kept")
    ax.set_title(title)
    ax.legend()


def plot_binned(ax: plt.Axes, centres, series: dict[str, np.ndarray], xlabel: str, ylabel: str,
                title: str = "", legend: bool = True) -> None:
    """Mean of one or more quantities per bin (e.g. uncertainty against vessel width): ``{name: means}``;
    ``legend=False`` leaves the legend to another panel of the same figure."""
    for i, (name, means) in enumerate(series.items()):
        ax.plot(centres, means, marker="o", ms=4, color=COLORS[i % len(COLORS)], label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend and len(series) > 1:
        ax.legend()


__all__ = ["ERROR_CMAP", "error_map", "plot_binned", "plot_learning_curves", "plot_referral_curves",
           "plot_segmentation_uncertainty"]
