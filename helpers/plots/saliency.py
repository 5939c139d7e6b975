"""Figures of chapter 3: images beside their attribution maps, the randomisation test, deletion/insertion curves.

Signed maps use the book's diverging colour map centred on zero, magnitudes the sequential one; each map is divided
by its largest absolute value, so one colour bar per column reads "share of the map's maximum". Grey images are
shown in grey. Taught in chapter 3.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation

from helpers.plots.style import COLORS, DIVERGING, SEQUENTIAL, to_numpy_image


def _norm(m) -> np.ndarray:
    a = to_numpy_image(m).astype(float)
    peak = np.abs(a).max()
    return a / peak if peak > 0 else a


def _draw(ax: plt.Axes, m, signed: bool):
    a = _norm(m)
    im = ax.imshow(a, cmap=DIVERGING if signed else SEQUENTIAL, vmin=-1 if signed else 0, vmax=1,
                   interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    return im


def _contour(ax: plt.Axes, mask, color: str) -> None:
    if mask is not None:
        m = to_numpy_image(mask).astype(float)
        if m.any():
            ax.contour(m, levels=[0.5], colors=[color], linewidths=0.9)


def plot_attributions(images: torch.Tensor, maps: Mapping[str, torch.Tensor], *, signed: Sequence[str] = (),
                      masks: torch.Tensor | None = None, row_labels: Sequence[str] | None = None,
                      title: str = "", mask_color: str = "#00E5FF", panel: float = 1.55) -> plt.Figure:
    """A grid: one row per image, the image (grey) then one column per map in ``maps`` (``name -> [N, H, W]``).

    Names in ``signed`` are drawn with the diverging map on [−1, 1], the rest with the sequential map on [0, 1],
    each map divided by its own maximum |value|. ``masks`` (``[N, 1, H, W]`` bool, optional) are outlined on every
    panel, so the eye can judge localisation. Taught in chapter 3.
    """
    n, names = len(images), list(maps)
    fig, axes = plt.subplots(n, len(names) + 1, figsize=(panel * (len(names) + 1) + 0.6, panel * n + 0.9),
                             squeeze=False)
    handles = {}
    for i in range(n):
        ax = axes[i, 0]
        ax.imshow(to_numpy_image(images[i]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        _contour(ax, None if masks is None else masks[i], mask_color)
        ax.set_ylabel(row_labels[i] if row_labels is not None else f"image {i}", fontsize=8)
        for j, name in enumerate(names):
            handles[name] = _draw(axes[i, j + 1], maps[name][i], name in signed)
            _contour(axes[i, j + 1], None if masks is None else masks[i], mask_color)
    axes[0, 0].set_title("image", fontsize=9)
    for j, name in enumerate(names):
        axes[0, j + 1].set_title(name, fontsize=9)
        fig.colorbar(handles[name], ax=axes[:, j + 1], location="bottom", shrink=0.9, pad=0.02, aspect=12,
                     label="signed / max" if name in signed else "|map| / max")
    if title:
        fig.suptitle(title)
    return fig


def plot_randomization(results: Mapping[str, dict], *, metrics: Sequence[str] = ("spearman_abs", "spearman_signed",
                                                                                  "ssim"),
                       title: str = "Cascading parameter randomisation (Adebayo et al. 2018)") -> plt.Figure:
    """Similarity to the original map (mean ± one standard deviation over images) after randomising each layer,
    top layer first, one line per method (``results``: method name -> output of
    :func:`helpers.metrics.attribution.cascading_randomization`). Taught in chapter 3.
    """
    labels = {"spearman_abs": "Spearman (absolute maps)", "spearman_signed": "Spearman (signed maps)",
              "ssim": "SSIM (absolute maps)"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for k, (name, res) in enumerate(results.items()):
            vals = np.asarray(res[metric], dtype=float)
            mean, sd = np.nanmean(vals, 1), np.nanstd(vals, 1)
            xs = np.arange(len(mean))
            ax.plot(xs, mean, "o-", color=COLORS[k % len(COLORS)], label=name, ms=3)
            ax.fill_between(xs, mean - sd, mean + sd, color=COLORS[k % len(COLORS)], alpha=0.15)
        layer_names = next(iter(results.values()))["layers"]
        ax.set_xticks(np.arange(len(layer_names)), layer_names, rotation=60, ha="right", fontsize=7)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(labels.get(metric, metric))
        ax.set_xlabel("randomised down to layer")
    axes[0, 0].set_ylabel("similarity to the trained model's map")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(title)
    return fig


def plot_deletion_insertion(results: Mapping[str, dict], *, title: str = "Deletion and insertion "
                            "(Petsiuk et al. 2018)") -> plt.Figure:
    """Mean deletion and insertion curves per method with their mean areas in the legend (``results``: method ->
    output of :func:`helpers.metrics.attribution.deletion_insertion`). Lower deletion and higher insertion areas
    are better. Taught in chapter 3.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for k, (name, res) in enumerate(results.items()):
        c = COLORS[k % len(COLORS)]
        for ax, kind in zip(axes, ("deletion", "insertion")):
            ax.plot(res["fraction"], res[kind].mean(0), color=c,
                    label=f"{name} (AUC {np.mean(res[kind + '_auc']):.2f})")
    for ax, kind in zip(axes, ("deletion", "insertion")):
        ax.set_title(f"{kind}: {'lower' if kind == 'deletion' else 'higher'} is better")
        ax.set_xlabel(f"fraction of pixels {'removed' if kind == 'deletion' else 'inserted'}")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("probability of the class")
    fig.suptitle(title)
    return fig


def animate_attributions(images: torch.Tensor, maps: Mapping[str, torch.Tensor], *, signed: Sequence[str] = (),
                         masks: torch.Tensor | None = None, mask_color: str = "#00E5FF",
                         interval: int = 900, dpi: int = 72) -> animation.FuncAnimation:
    """A kernel-free viewer: one frame per (image, map) pair, image on the left, the map on the right.

    Render with ``helpers.plots.animation.animation_html(anim)``: the slider works on a static web page; ``dpi`` sets
    the frames' resolution (and the page's size). Taught in chapter 3.
    """
    frames = [(i, name) for i in range(len(images)) for name in maps]
    fig, (ax_img, ax_map) = plt.subplots(1, 2, figsize=(6.2, 3.0), dpi=dpi)
    img_h = ax_img.imshow(to_numpy_image(images[0]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    first = frames[0][1]
    map_h = _draw(ax_map, maps[first][0], first in signed)
    cbar = fig.colorbar(map_h, ax=ax_map, fraction=0.046, pad=0.03)
    for ax in (ax_img, ax_map):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    contours: list = []

    def update(k: int):
        i, name = frames[k]
        img_h.set_data(to_numpy_image(images[i]))
        is_signed = name in signed
        map_h.set_data(_norm(maps[name][i]))
        map_h.set_cmap(DIVERGING if is_signed else SEQUENTIAL)
        map_h.set_clim(-1 if is_signed else 0, 1)
        cbar.set_label("signed / max" if is_signed else "|map| / max")
        for c in contours:
            c.remove()
        contours.clear()
        if masks is not None and to_numpy_image(masks[i]).any():
            for ax in (ax_img, ax_map):
                contours.append(ax.contour(to_numpy_image(masks[i]).astype(float), levels=[0.5],
                                           colors=[mask_color], linewidths=0.9))
        ax_img.set_title(f"image {i}")
        ax_map.set_title(name)
        return img_h, map_h

    anim = animation.FuncAnimation(fig, update, frames=len(frames), interval=interval, blit=False)
    plt.close(fig)
    return anim


__all__ = ["animate_attributions", "plot_attributions", "plot_deletion_insertion", "plot_randomization"]
