"""The book's figure style: one look, one diverging and one sequential colour map, grey images in grey."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch

#: Signed quantities (attributions that can be negative): zero is white, positive red, negative blue.
DIVERGING = "RdBu_r"
#: Magnitudes and uncertainty (absolute attributions, entropy, variance): dark = low, bright = high.
SEQUENTIAL = "magma"
#: Categorical colours used for methods / models across the book (colour-blind safe, Okabe & Ito 2008).
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

STYLE = {
    "figure.dpi": 110, "savefig.dpi": 150, "figure.figsize": (6.4, 4.0), "figure.constrained_layout.use": True,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
    # No text below 10 pt: a figure at most 7.5 in wide (825 px at 110 dpi) then reads at 9 pt or more in the
    # website's content column (tests/site checks the shown size).
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 10, "ytick.labelsize": 10,
    "legend.fontsize": 10, "legend.title_fontsize": 10, "figure.titlesize": 12, "legend.frameon": False,
    "image.cmap": SEQUENTIAL, "axes.prop_cycle": mpl.cycler(color=COLORS),
}


def use_book_style() -> None:
    """Apply the book's matplotlib style (call once at the top of a chapter)."""
    mpl.rcParams.update(STYLE)


def to_numpy_image(img) -> np.ndarray:
    """An image as ``H×W`` (grey) or ``H×W×3`` (RGB) NumPy array, from ``[C,H,W]`` / ``[H,W]`` tensors or arrays."""
    if isinstance(img, torch.Tensor):
        img = img.detach().cpu().float().numpy()
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    return img


#: Percentile of |values| that sets the symmetric limits of a signed map: a few extreme pixels would otherwise
#: wash out everything else to white.
SIGNED_PERCENTILE = 99.0


def signed_limit(values, percentile: float = SIGNED_PERCENTILE) -> float:
    """Symmetric colour limit of a signed map: the ``percentile`` of ``|values|`` (1.0 if that is 0)."""
    arr = np.abs(to_numpy_image(values))
    return float(np.nanpercentile(arr, percentile)) or 1.0


def show_image(ax: plt.Axes, img, title: str = "", *, cmap: str | None = None, signed: bool = False,
               vmin: float | None = None, vmax: float | None = None, colorbar: str | None = None,
               percentile: float = SIGNED_PERCENTILE) -> mpl.image.AxesImage:
    """Show an image or a map on ``ax`` without axes ticks.

    Grey images are shown in grey; ``signed=True`` uses the diverging map centred on zero, with symmetric limits
    at the ``percentile`` of ``|values|`` (:func:`signed_limit`; values beyond are shown at full colour); any map
    with values that matter gets a colour bar labelled ``colorbar``.
    """
    arr = to_numpy_image(img)
    if signed:
        lim = vmax if vmax is not None else signed_limit(arr, percentile)
        cmap, vmin, vmax = DIVERGING, -lim, lim
    elif cmap is None and arr.ndim == 2 and colorbar is None:
        cmap = "gray"
    elif cmap is None and arr.ndim == 2:
        cmap = SEQUENTIAL
    im = ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if colorbar is not None:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=colorbar)
    return im
