"""Does a saliency map mean something? Sanity checks and localisation scores for attribution maps.

Taught in chapter 3. Maps are ``[N, H, W]`` (use :func:`helpers.saliency.evidence` to collapse channels).

- :func:`cascading_randomization`  model-parameter randomisation test (Adebayo et al. 2018);
- :func:`ig_completeness`          Σ attributions = F(x) − F(x') (Sundararajan et al. 2017, completeness axiom);
- :func:`deletion_insertion`       deletion and insertion curves and their areas (Petsiuk et al. 2018, RISE);
- :func:`mass_in_mask`             share of positive attribution inside a region (relevance mass accuracy,
                                   Arras et al. 2022);
- :func:`pointing_game`            is the map's maximum inside the region? (Zhang et al. 2018).
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
from captum.attr import IntegratedGradients
from scipy.ndimage import binary_dilation
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from torch import nn
from torchvision.transforms.functional import gaussian_blur

from helpers.errors import BookError
from helpers.saliency import attribute, evidence, preserved_modes


def _np(a) -> np.ndarray:
    return a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, dtype=float)


# ------------------------------------------------------------------------------------ similarity of two maps
def spearman_per_image(a: torch.Tensor, b: torch.Tensor, *, absolute: bool) -> np.ndarray:
    """Spearman rank correlation between maps ``a[i]`` and ``b[i]`` (``[N, H, W]``), one value per image.

    ``absolute=True`` ranks |a| and |b| (Adebayo et al. 2018 report both). A constant map (e.g. a Grad-CAM that is
    zero everywhere) has no ranking to agree with: it scores 0.
    """
    a, b = _np(a), _np(b)
    if absolute:
        a, b = np.abs(a), np.abs(b)
    out = []
    for ai, bi in zip(a.reshape(len(a), -1), b.reshape(len(b), -1)):
        if np.ptp(ai) == 0 or np.ptp(bi) == 0:
            out.append(0.0)
        else:
            out.append(spearmanr(ai, bi).statistic)
    return np.asarray(out)


def ssim_per_image(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """SSIM (Wang et al. 2004; scikit-image) between |a[i]| and |b[i]|, each scaled to [0, 1] by its maximum.

    The normalisation of Adebayo et al. (2018): only the shape of the map matters, not its overall scale.
    """
    a, b = np.abs(_np(a)), np.abs(_np(b))
    out = []
    for ai, bi in zip(a, b):
        ai = ai / ai.max() if ai.max() > 0 else ai
        bi = bi / bi.max() if bi.max() > 0 else bi
        win = min(7, min(ai.shape) - (1 - min(ai.shape) % 2))  # odd, at most the image side
        out.append(structural_similarity(ai, bi, data_range=1.0, win_size=win))
    return np.asarray(out)


# ------------------------------------------------------------------------------------ randomisation test
def learnable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of the layers with a weight matrix/kernel (Conv, Linear), from the output to the input.

    The order assumes modules are registered in the order they run (true for ``nn.Sequential``-style models).
    """
    layers = [(n, m) for n, m in model.named_modules()
              if getattr(m, "weight", None) is not None and m.weight.dim() > 1 and hasattr(m, "reset_parameters")]
    return layers[::-1]


def cascading_randomization(model: nn.Module, x: torch.Tensor, target, method: str, *,
                            layers: Sequence[str] | None = None, seed: int = 0,
                            **attribute_kwargs) -> dict:
    """Model-parameter randomisation test, cascading from the top layer down (Adebayo et al. 2018, sec. 3.1).

    The weights of ``layers`` (default: every Conv/Linear layer, output first; see :func:`learnable_layers`) are
    re-initialised one more at a time in a copy of ``model`` (``reset_parameters``, seeded), and the map of
    ``method`` is recomputed after each step. A map that explains the *trained* model must change: its similarity
    to the original map should fall towards 0. Returns ``layers`` (``["original", *names]``), ``spearman_abs``,
    ``spearman_signed``, ``ssim`` (arrays ``[len(layers), N]``) and ``maps`` (``[len(layers), N, H, W]``, the
    evidence maps). The caller's model is not modified.
    """
    net = copy.deepcopy(model)
    by_name = dict(net.named_modules())
    if attribute_kwargs.get("layer") is not None:  # Grad-CAM's layer: the same module in the copy
        names = {id(m): n for n, m in model.named_modules()}
        if id(attribute_kwargs["layer"]) not in names:
            raise BookError("layer= is not a module of the model being randomised")
        attribute_kwargs = {**attribute_kwargs, "layer": by_name[names[id(attribute_kwargs["layer"])]]}
    order = [n for n, _ in learnable_layers(net)] if layers is None else list(layers)
    missing = [n for n in order if n not in by_name]
    if missing:
        raise BookError(f"layers {missing} are not modules of {type(model).__name__}")
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        maps, signed = [], []
        for name in [None, *order]:
            if name is not None:
                by_name[name].reset_parameters()
            a = attribute(net, x, target, method, **attribute_kwargs)
            maps.append(evidence(a, method))
            signed.append(a.sum(1))
    finally:
        torch.random.set_rng_state(gen_state)
    ref, ref_signed = maps[0], signed[0]
    return {"layers": ["original", *order],
            "spearman_abs": np.stack([spearman_per_image(ref, m, absolute=True) for m in maps]),
            "spearman_signed": np.stack([spearman_per_image(ref_signed, s, absolute=False) for s in signed]),
            "ssim": np.stack([ssim_per_image(ref, m) for m in maps]),
            "maps": torch.stack(maps)}


# ------------------------------------------------------------------------------------ completeness
def ig_completeness(model: nn.Module, x: torch.Tensor, target, *, baseline=None, n_steps: int = 50,
                    method: str = "gausslegendre", internal_batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Check the completeness axiom of integrated gradients: Σ_i IG_i(x) = F(x) − F(x') (Sundararajan et al. 2017).

    Returns per image ``sum_attr``, ``diff`` = F(x) − F(x'), captum's convergence ``delta`` = sum_attr − diff and
    ``relative_error`` = |delta| / |diff|. The error shrinks as ``n_steps`` grows.
    """
    from helpers.saliency import _as_baseline

    with preserved_modes(model):
        ig = IntegratedGradients(model)
        b = _as_baseline(baseline, x)
        attr, delta = ig.attribute(x.detach().clone().requires_grad_(True), baselines=b, target=target,
                                   n_steps=n_steps, method=method, internal_batch_size=internal_batch_size,
                                   return_convergence_delta=True)
        with torch.no_grad():
            bt = torch.as_tensor(b, dtype=x.dtype).expand_as(x) if not isinstance(b, torch.Tensor) else b
            idx = torch.arange(len(x))
            tgt = torch.as_tensor(target).expand(len(x)) if not isinstance(target, int) else torch.full(
                (len(x),), target)
            diff = model(x)[idx, tgt] - model(bt)[idx, tgt]
    sum_attr = attr.detach().flatten(1).sum(1)
    return {"sum_attr": _np(sum_attr), "diff": _np(diff), "delta": _np(delta),
            "relative_error": np.abs(_np(delta)) / np.maximum(np.abs(_np(diff)), 1e-12)}


# ------------------------------------------------------------------------------------ deletion / insertion
def deletion_insertion(model: nn.Module, x: torch.Tensor, target, saliency: torch.Tensor, *,
                       pixels_per_step: int | None = None, blur_kernel: int = 11, blur_sigma: float = 5.0,
                       deletion_fill: str = "zeros", batch_size: int = 256,
                       max_fraction: float = 1.0) -> dict[str, np.ndarray]:
    """Deletion and insertion curves and their areas (Petsiuk et al. 2018, RISE, sec. 4.1).

    Pixels are ranked by ``saliency`` (``[N, H, W]``, highest first). *Deletion* sets them to 0 (all channels)
    ``pixels_per_step`` at a time, starting from ``x`` (``deletion_fill="blur"``: replaces them by the blurred
    image instead, which avoids black holes with sharp edges a model has never seen); *insertion* copies them from ``x`` into a blurred ``x``
    (Gaussian kernel ``blur_kernel``, σ ``blur_sigma``). The curve is the softmax probability of ``target`` against
    the fraction of pixels changed; its area (trapezoid rule on [0, 1]) should be low for deletion and high for
    insertion. Returns ``fraction`` ``[S+1]``, ``deletion``/``insertion`` curves ``[N, S+1]`` and their ``*_auc``
    ``[N]``. The model is used in its current mode, without gradients.

    ``max_fraction`` < 1 stops the curves after that share of the pixels and divides the areas by it (so they
    still lie in [0, 1]): with a small lesion, steps much smaller than the lesion and a short curve can rank
    maps that one coarse step (which removes the whole lesion for every good map) cannot. Taught in chapter 3.
    """
    n, c, h, w = x.shape
    if saliency.shape != (n, h, w):
        raise BookError(f"saliency has shape {tuple(saliency.shape)}: expected [N, H, W] = {(n, h, w)}")
    if deletion_fill not in ("zeros", "blur"):
        raise BookError(f"deletion_fill={deletion_fill!r}: use 'zeros' (Petsiuk et al.) or 'blur'")
    if not 0 < max_fraction <= 1:
        raise BookError(f"max_fraction={max_fraction}: use a share of the pixels in (0, 1]")
    hw = h * w
    last = max(1, int(round(max_fraction * hw)))
    per = pixels_per_step or max(1, hw // 64)
    counts = list(range(0, last, per)) + [last]
    tgt = torch.as_tensor(target).expand(n) if not isinstance(target, int) else torch.full((n,), target)
    k = min(blur_kernel, 2 * (min(h, w) // 2) - 1)
    blurred = gaussian_blur(x, kernel_size=[k, k], sigma=[blur_sigma, blur_sigma])
    order = saliency.reshape(n, -1).argsort(dim=1, descending=True)
    curves = {"deletion": np.zeros((n, len(counts))), "insertion": np.zeros((n, len(counts)))}
    steps = torch.as_tensor(counts)
    with torch.no_grad():
        for i in range(n):
            rank = torch.empty(hw, dtype=torch.long)
            rank[order[i]] = torch.arange(hw)
            changed = (rank[None, :] < steps[:, None]).reshape(len(counts), 1, h, w).to(x.dtype)  # [S+1,1,H,W]
            fill = blurred[i:i + 1] * changed if deletion_fill == "blur" else 0.0
            variants = {"deletion": x[i:i + 1] * (1 - changed) + fill,
                        "insertion": blurred[i:i + 1] * (1 - changed) + x[i:i + 1] * changed}
            for name, batch in variants.items():
                probs = torch.cat([model(batch[j:j + batch_size]).softmax(1)[:, tgt[i]]
                                   for j in range(0, len(batch), batch_size)])
                curves[name][i] = _np(probs)
    frac = np.asarray(counts, dtype=float) / hw
    span = frac[-1]
    return {"fraction": frac, **curves, "deletion_auc": np.trapezoid(curves["deletion"], frac, axis=1) / span,
            "insertion_auc": np.trapezoid(curves["insertion"], frac, axis=1) / span}


# ------------------------------------------------------------------------------------ localisation
def _masks_2d(mask: torch.Tensor, n: int) -> np.ndarray:
    m = _np(mask).astype(bool)
    if m.ndim == 4:
        m = m[:, 0]
    if m.ndim == 2:
        m = np.broadcast_to(m, (n, *m.shape))
    return m


def mass_in_mask(saliency: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Share of the positive attribution mass inside ``mask``: Σ_{in} s⁺ / Σ s⁺ per image, in [0, 1].

    The *relevance mass accuracy* of Arras et al. (2022, CLEVR-XAI); only positive evidence counts (pass |map| for
    gradient-type maps, as :func:`helpers.saliency.evidence` does). A map with no positive mass gives NaN.
    ``saliency`` is ``[N, H, W]``, ``mask`` ``[N, 1, H, W]``, ``[N, H, W]`` or ``[H, W]`` (bool).
    """
    s = np.clip(_np(saliency), 0, None)
    m = _masks_2d(mask, len(s))
    total = s.reshape(len(s), -1).sum(1)
    inside = (s * m).reshape(len(s), -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan)


def pointing_game(saliency: torch.Tensor, mask: torch.Tensor, tolerance: int = 0) -> np.ndarray:
    """Pointing game (Zhang et al. 2018): is the maximum of each map inside ``mask``? Bool per image.

    ``tolerance``: the mask is first dilated by a disk of this radius in pixels (Zhang et al. use 15 px on
    224-px images). When the maximum is a plateau (occlusion spreads one value over its patch), the point is the
    maximal pixel nearest to the plateau's centroid, not the first one in row-major order (which would sit at the
    plateau's corner and could miss a region the plateau covers).
    """
    s = _np(saliency)
    m = _masks_2d(mask, len(s))
    if tolerance > 0:
        yy, xx = np.mgrid[-tolerance:tolerance + 1, -tolerance:tolerance + 1]
        disk = (yy ** 2 + xx ** 2) <= tolerance ** 2
        m = np.stack([binary_dilation(mi, structure=disk) for mi in m])
    hits = []
    for si, mi in zip(s, m):
        peak = np.nanmax(si)
        tied = np.argwhere(si >= peak - 1e-9 * max(abs(peak), 1e-30))
        centre = tied.mean(0)
        y, x = tied[np.argmin(((tied - centre) ** 2).sum(1))]
        hits.append(bool(mi[y, x]))
    return np.asarray(hits)


__all__ = ["cascading_randomization", "deletion_insertion", "ig_completeness", "learnable_layers", "mass_in_mask",
           "pointing_game", "spearman_per_image", "ssim_per_image"]
