"""Figures of chapter 3: images beside their attribution maps, the randomisation test, deletion/insertion curves.

Readable at the book's page width: at most three images per row and at most 7.5 inches wide. Signed maps use the
book's diverging colour map with symmetric limits at the 99th percentile of |values| (:func:`map_limits`;
a few extreme pixels would otherwise wash out the rest), magnitudes the sequential one from 0 to the same
percentile; one colour bar per method, shared by the images in its row, in the map's own units. The lesion is
outlined in cyan (with a dark edge, visible on every colour map), a second region (e.g. a marker) in yellow.
Taught in chapter 3.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.patheffects as pe
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation

from helpers.errors import BookError
from helpers.plots.style import COLORS, DIVERGING, SEQUENTIAL, SIGNED_PERCENTILE, to_numpy_image

#: Outline colours: the lesion (cyan) and a second region such as a burned-in marker (yellow).
LESION_COLOR, OTHER_COLOR = "#00E5FF", "#FFD400"
#: How the book writes the methods' names in figures and prose.
METHOD_LABELS = {"gradient": "gradient", "guided_backprop": "guided backprop",
                 "integrated_gradients": "integrated gradients", "gradcam": "Grad-CAM", "occlusion": "occlusion"}


def method_label(name: str) -> str:
    """``"integrated_gradients + SG"`` -> ``"integrated gradients + SG"`` (other names unchanged)."""
    base, plus, rest = name.partition(" + ")
    return METHOD_LABELS.get(base, base) + (plus + rest if plus else "")


def map_limits(maps, signed: bool, percentile: float = SIGNED_PERCENTILE) -> tuple[float, float]:
    """Colour limits shared by ``maps``: ``(-L, L)`` for signed maps, ``(0, L)`` for magnitudes, with ``L`` the
    ``percentile`` of |values| (:func:`helpers.plots.style.signed_limit`); for a sparse map whose percentile is
    0, its largest |value| (1.0 if the map is 0 everywhere)."""
    arr = np.abs(maps.detach().cpu().double().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps))
    lim = float(np.nanpercentile(arr, percentile)) if arr.size else 0.0
    if lim <= 0:
        lim = float(np.nanmax(arr)) if arr.size and np.nanmax(arr) > 0 else 1.0
    return (-lim, lim) if signed else (0.0, lim)


def _bare(ax: plt.Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def outline(ax: plt.Axes, mask, color: str = LESION_COLOR, width: float = 1.1) -> None:
    """Draw the outline of a bool ``mask`` on ``ax`` (with a dark edge, so it shows on any colour map)."""
    if mask is None:
        return
    m = to_numpy_image(mask).astype(float)
    if m.any():
        cs = ax.contour(m, levels=[0.5], colors=[color], linewidths=width)
        cs.set(path_effects=[pe.Stroke(linewidth=width + 1.2, foreground="black"), pe.Normal()])


def plot_attributions(images: torch.Tensor, maps: Mapping[str, torch.Tensor], *, signed: Sequence[str] = (),
                      masks: torch.Tensor | None = None, other_masks: torch.Tensor | None = None,
                      col_labels: Sequence[str] | None = None, title: str = "",
                      percentile: float = SIGNED_PERCENTILE, panel: float = 1.75) -> plt.Figure:
    """A grid with one column per image (at most 3) and one row per map: the images first, then each map of
    ``maps`` (``name -> [N, H, W]``) with its own colour bar.

    Names in ``signed`` are drawn with the diverging map on ``(-L, L)``, the others with the sequential map on
    ``(0, L)``, ``L`` the ``percentile`` of |values| over the row (:func:`map_limits`), so the images of a row
    share one scale. ``masks`` (``[N, 1, H, W]`` bool, the lesion) are outlined in cyan on every panel,
    ``other_masks`` (e.g. a marker) in yellow. Taught in chapter 3.
    """
    n, names = len(images), list(maps)
    if not 1 <= n <= 3:
        raise BookError(f"plot_attributions shows 1 to 3 images side by side (readable at the page's "
                        f"width), got {n}: make several figures")
    width = min(7.4, panel * n + 1.9)
    fig, axes = plt.subplots(len(names) + 1, n, figsize=(width, panel * (len(names) + 1) + 0.5),
                             squeeze=False)
    for j in range(n):
        ax = axes[0, j]
        ax.imshow(to_numpy_image(images[j]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        _bare(ax)
        outline(ax, None if masks is None else masks[j])
        outline(ax, None if other_masks is None else other_masks[j], OTHER_COLOR)
        ax.set_title(col_labels[j] if col_labels is not None else f"image {j}")
    axes[0, 0].set_ylabel("image")
    for i, name in enumerate(names, start=1):
        is_signed = name in signed
        values = np.stack([to_numpy_image(maps[name][j]) for j in range(n)])
        vmin, vmax = map_limits(values, is_signed, percentile)
        for j in range(n):
            ax = axes[i, j]
            im = ax.imshow(values[j], cmap=DIVERGING if is_signed else SEQUENTIAL, vmin=vmin, vmax=vmax,
                           interpolation="nearest")
            _bare(ax)
            outline(ax, None if masks is None else masks[j])
            outline(ax, None if other_masks is None else other_masks[j], OTHER_COLOR)
        axes[i, 0].set_ylabel(method_label(name).replace(" + ", "\n+ ").replace("integrated ", "integrated\n"))
        cb = fig.colorbar(im, ax=axes[i, :], location="right", shrink=0.9, pad=0.02, aspect=10)
        cb.set_label("signed" if is_signed else "magnitude")
    if title:
        fig.suptitle(title)
    return fig


def plot_randomization(results: Mapping[str, dict], *, metrics: Sequence[str] = ("spearman_abs", "spearman_signed",
                                                                                  "ssim"),
                       title: str = "Cascading parameter randomisation (Adebayo et al. 2018)") -> plt.Figure:
    """Similarity to the original map (mean ± one standard deviation over images) after randomising each layer,
    top layer first, one line per method (``results``: method name -> output of
    :func:`helpers.metrics.attribution.cascading_randomization`), one panel per metric (at most 3), the legend
    below the panels. Taught in chapter 3.
    """
    labels = {"spearman_abs": "Spearman, |maps|", "spearman_signed": "Spearman, signed",
              "ssim": "SSIM, |maps|"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(7.4, 3.9), sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for k, (name, res) in enumerate(results.items()):
            vals = np.asarray(res[metric], dtype=float)
            mean, sd = np.nanmean(vals, 1), np.nanstd(vals, 1)
            xs = np.arange(len(mean))
            ax.plot(xs, mean, "o-", color=COLORS[k % len(COLORS)], label=method_label(name), ms=3)
            ax.fill_between(xs, mean - sd, mean + sd, color=COLORS[k % len(COLORS)], alpha=0.15)
        n_layers = len(next(iter(results.values()))["layers"])
        # At most about 7 labels fit a third of the page: a deep network (VGG16: 14 steps) gets every k-th.
        step = max(1, int(np.ceil(n_layers / 7)))
        ticks = np.arange(0, n_layers, step)
        ax.set_xticks(ticks, ["none" if t == 0 else str(t) for t in ticks])
        ax.set_xticks(np.arange(n_layers), minor=True)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(labels.get(metric, metric))
        ax.set_xlabel("layers randomised")
    axes[0, 0].set_ylabel("similarity to the\ntrained model's map")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(4, len(names)))
    fig.suptitle(title)
    return fig


def plot_deletion_insertion(results: Mapping[str, dict], *, title: str = "Deletion and insertion "
                            "(Petsiuk et al. 2018)") -> plt.Figure:
    """Mean deletion and insertion curves per method, their mean areas in the legend below the panels
    (``results``: method -> output of :func:`helpers.metrics.attribution.deletion_insertion`). Lower deletion
    and higher insertion areas are better. Taught in chapter 3.
    """
    fig, axes = plt.subplots(1, 2, figsize=(7.4, 4.6), sharey=True)
    for k, (name, res) in enumerate(results.items()):
        c = COLORS[k % len(COLORS)]
        for ax, kind in zip(axes, ("deletion", "insertion")):
            ax.plot(100 * res["fraction"], res[kind].mean(0), color=c, label=method_label(name))
    for ax, kind in zip(axes, ("deletion", "insertion")):
        ax.set_title(f"{kind}: {'lower' if kind == 'deletion' else 'higher'} is better")
        ax.set_xlabel(f"% of pixels {'removed' if kind == 'deletion' else 'inserted'}")
    axes[0].set_ylabel("probability of the class")
    handles, names = axes[0].get_legend_handles_labels()
    aucs = [f"{n} ({np.mean(r['deletion_auc']):.2f} / {np.mean(r['insertion_auc']):.2f})"
            for n, r in zip(names, results.values())]
    fig.legend(handles, aucs, loc="outside lower center", ncol=2,
               title="method (deletion / insertion area)")
    fig.suptitle(title)
    return fig


def animate_attributions(images: torch.Tensor, maps: Mapping[str, torch.Tensor], *, signed: Sequence[str] = (),
                         masks: torch.Tensor | None = None, mask_color: str = LESION_COLOR,
                         interval: int = 900, dpi: int = 72,
                         percentile: float = SIGNED_PERCENTILE) -> animation.FuncAnimation:
    """A kernel-free viewer: one frame per (image, map) pair, image on the left, the map on the right.

    Each method's colour limits are set from all its frames (:func:`map_limits`), so frames of one method
    compare. Render with ``helpers.plots.animation.animation_html(anim)``: the slider works on a static web
    page; ``dpi`` sets the frames' resolution (and the page's size). Taught in chapter 3.
    """
    frames = [(i, name) for i in range(len(images)) for name in maps]
    limits = {name: map_limits(np.stack([to_numpy_image(m) for m in maps[name]]), name in signed, percentile)
              for name in maps}
    fig, (ax_img, ax_map) = plt.subplots(1, 2, figsize=(6.4, 3.2), dpi=dpi)
    img_h = ax_img.imshow(to_numpy_image(images[0]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    first = frames[0][1]
    map_h = ax_map.imshow(to_numpy_image(maps[first][0]), cmap=DIVERGING if first in signed else SEQUENTIAL,
                          vmin=limits[first][0], vmax=limits[first][1], interpolation="nearest")
    cbar = fig.colorbar(map_h, ax=ax_map, fraction=0.046, pad=0.03)
    for ax in (ax_img, ax_map):
        _bare(ax)
    contours: list = []

    def update(k: int):
        i, name = frames[k]
        img_h.set_data(to_numpy_image(images[i]))
        is_signed = name in signed
        map_h.set_data(to_numpy_image(maps[name][i]))
        map_h.set_cmap(DIVERGING if is_signed else SEQUENTIAL)
        map_h.set_clim(*limits[name])
        cbar.set_label("signed" if is_signed else "magnitude")
        for c in contours:
            c.remove()
        contours.clear()
        if masks is not None and to_numpy_image(masks[i]).any():
            for ax in (ax_img, ax_map):
                contours.append(ax.contour(to_numpy_image(masks[i]).astype(float), levels=[0.5],
                                           colors=[mask_color], linewidths=0.9))
        ax_img.set_title(f"image {i}")
        ax_map.set_title(method_label(name))
        return img_h, map_h

    anim = animation.FuncAnimation(fig, update, frames=len(frames), interval=interval, blit=False)
    plt.close(fig)
    return anim


__all__ = ["LESION_COLOR", "METHOD_LABELS", "OTHER_COLOR", "animate_attributions", "map_limits", "method_label",
           "outline", "plot_attributions", "plot_deletion_insertion", "plot_randomization"]
