"""Attribution maps with captum, one entry point, the usual pitfalls handled inside.

Taught in chapter 3 (saliency methods and their sanity checks); the retina chapter uses :func:`region_score`.

``attribute(model, x, target, method)`` returns a map shaped like ``x`` (Grad-CAM: ``[N, 1, H, W]``, upsampled to
the input size). All maps explain the model's *logit* for ``target`` (not the softmax), as in the papers:

- ``"gradient"``  ∂F/∂x, signed (Simonyan et al. 2013; take ``.abs()`` for their saliency map);
- ``"guided_backprop"``  the gradient with negative gradients stopped at every ``nn.ReLU`` (Springenberg et al. 2014);
- ``"integrated_gradients"``  (x − x') ⊙ ∫ ∂F(x' + α(x − x'))/∂x dα along a straight path from a baseline x'
  (Sundararajan et al. 2017), a Riemann/Gauss–Legendre sum with ``n_steps`` points;
- ``"gradcam"``  ReLU(Σ_k α_k A^k) on a convolutional layer, α_k the spatial mean of ∂F/∂A^k (Selvaraju et al. 2017);
- ``"occlusion"``  F(x) − F(x with a patch replaced by the baseline), spread over the patch (Zeiler & Fergus 2014).

``smooth=True`` averages the map over ``nt_samples`` noisy copies of the input with captum's ``NoiseTunnel``
(SmoothGrad, Smilkov et al. 2017); ``stdevs`` is the noise level as a fraction of the input's value range.

The model is used in the mode it is given in and left in it: call ``model.eval()`` first. For one map per
MC-dropout network use :func:`mc_attributions` (each map under one frozen mask), not ``attribute`` inside
:func:`helpers.uncertainty.mc_dropout`: there every row of captum's batches, e.g. every path point of integrated
gradients, gets its own mask, so one "sample" mixes many networks.

Integrated gradients should satisfy completeness, Σ IG = F(x) − F(x'): :func:`ig_with_completeness` picks the
number of steps that meets the book's rule (:data:`COMPLETENESS_TOLERANCE`), and :func:`make_baseline` gives
baselines other than black (for dark structures a black baseline hides them; use ``"blur"``).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from captum.attr import (GuidedBackprop, IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel,
                         Occlusion, Saliency)
from torch import nn
from torch.overrides import TorchFunctionMode

from helpers.errors import BookError

METHODS: tuple[str, ...] = ("gradient", "guided_backprop", "integrated_gradients", "gradcam", "occlusion")
#: Methods whose maps have a meaningful sign (evidence for / against the class); the others are shown as magnitudes.
SIGNED_METHODS: tuple[str, ...] = ("integrated_gradients", "occlusion")


# --------------------------------------------------------------------------------------------------- model state
@contextmanager
def preserved_modes(model: nn.Module) -> Iterator[nn.Module]:
    """Context that restores the ``training`` flag of every module of ``model`` on exit."""
    saved = {m: m.training for m in model.modules()}
    try:
        yield model
    finally:
        for m, mode in saved.items():
            m.training = mode


@contextmanager
def out_of_place_relus(model: nn.Module) -> Iterator[nn.Module]:
    """Context in which every ``nn.ReLU`` of ``model`` has ``inplace=False``; the flags are restored on exit.

    Guided backpropagation replaces the backward pass of ``nn.ReLU`` modules with a hook; an in-place ReLU
    overwrites the tensor the hook needs and autograd raises. Taught in chapter 3.
    """
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    saved = [m.inplace for m in relus]
    try:
        for m in relus:
            m.inplace = False
        yield model
    finally:
        for m, flag in zip(relus, saved):
            m.inplace = flag


class _CountRelu(TorchFunctionMode):
    """Counts ReLU calls made through ``torch.relu``/``F.relu``/``Tensor.relu`` outside ``nn.ReLU`` modules."""

    _NAMES = {"relu", "relu_"}

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.inside_module = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if not self.inside_module and getattr(func, "__name__", "") in self._NAMES:
            self.calls += 1
        return func(*args, **(kwargs or {}))


def functional_relu_count(model: nn.Module, x: torch.Tensor) -> int:
    """How many ReLUs run in ``model(x)`` that are *not* ``nn.ReLU`` modules (guided backprop cannot see those).

    One forward pass on the first row of ``x``, without gradients, in the model's current mode.
    """
    counter = _CountRelu()

    def enter(*_):
        counter.inside_module += 1

    def leave(*_):
        counter.inside_module -= 1

    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    hooks = [m.register_forward_pre_hook(enter) for m in relus] + [m.register_forward_hook(leave) for m in relus]
    try:
        with torch.no_grad(), counter:
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return counter.calls


# --------------------------------------------------------------------------------------------------- baselines
def last_conv_layer(model: nn.Module) -> nn.Module:
    """The last ``nn.Conv2d`` of ``model`` in registration order (Grad-CAM's default layer)."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise BookError(f"{type(model).__name__} has no nn.Conv2d layer: pass layer=... to use Grad-CAM")
    return convs[-1]


def make_baseline(x: torch.Tensor, kind: str = "black", *, sigma: float = 5.0,
                  mean_image: torch.Tensor | None = None) -> torch.Tensor:
    """A baseline x' for integrated gradients (and the fill value of occlusion), shaped like ``x``.

    ``"black"``: zeros (black only if 0 means black in your normalisation); ``"blur"``: ``x`` blurred with a
    Gaussian of standard deviation ``sigma`` pixels (keeps anatomy, removes fine detail; Sturmfels et al. 2020);
    ``"mean"``: ``mean_image`` (e.g. the training-set mean) broadcast to ``x``. Taught in chapter 3.
    """
    if kind == "black":
        return torch.zeros_like(x)
    if kind == "blur":
        k = int(2 * round(3 * sigma) + 1)
        k = min(k, 2 * (min(x.shape[-2:]) // 2) - 1)
        from torchvision.transforms.functional import gaussian_blur
        return gaussian_blur(x, kernel_size=[k, k], sigma=[sigma, sigma])
    if kind == "mean":
        if mean_image is None:
            raise BookError("make_baseline(kind='mean') needs mean_image=, e.g. x_train.mean(0, keepdim=True)")
        return mean_image.to(x).expand_as(x).clone()
    raise BookError(f"baseline kind {kind!r}: use 'black', 'blur' or 'mean'")


def _as_baseline(baseline, x: torch.Tensor) -> torch.Tensor | float:
    if baseline is None:
        return 0.0
    if isinstance(baseline, str):
        return make_baseline(x, baseline)
    if isinstance(baseline, (int, float)):
        return float(baseline)
    b = baseline.to(x)
    return b.expand_as(x) if b.shape != x.shape else b


def occlusion_window(x: torch.Tensor) -> int:
    """Side in pixels of the default occlusion patch for images ``x``: an eighth of the shorter side, at least
    3 (it slides by half its side). Taught in chapter 3."""
    return max(3, min(x.shape[-2:]) // 8)


# --------------------------------------------------------------------------------------------------- attribute
def attribute(model: nn.Module, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor, method: str, *,
              smooth: bool = False, baseline: torch.Tensor | float | str | None = None, n_steps: int = 50,
              internal_batch_size: int | None = None, nt_samples: int = 10, stdevs: float = 0.15,
              layer: nn.Module | None = None, **kwargs) -> torch.Tensor:
    """Attribution map of ``model``'s logit ``target`` for the batch ``x`` (``[N, C, H, W]``, grey or RGB).

    ``method``: one of :data:`METHODS` (see the module docstring for what each computes). ``baseline``: the
    reference input x' of integrated gradients and the fill of occlusion: None (zeros), a number, a tensor
    broadcastable to ``x``, or ``"black"``/``"blur"``/``"mean"`` (see :func:`make_baseline`). ``n_steps`` and
    ``internal_batch_size`` (rows per forward pass, to bound memory) are for integrated gradients. ``layer`` is
    Grad-CAM's layer (default: the last ``nn.Conv2d``). ``smooth=True``: SmoothGrad with ``nt_samples`` noisy
    copies, noise standard deviation ``stdevs`` × (max − min of ``x``). Other keyword arguments go to captum's
    ``attribute`` (e.g. ``sliding_window_shapes``, ``strides`` for occlusion).

    Returns a detached tensor shaped like ``x`` (Grad-CAM: ``[N, 1, H, W]``); a 3-D ``x`` is treated as one image.
    Taught in chapter 3.
    """
    if method not in METHODS:
        raise BookError(f"method={method!r}: use one of {', '.join(METHODS)}")
    if x.dim() == 3:
        return attribute(model, x.unsqueeze(0), target, method, smooth=smooth, baseline=baseline, n_steps=n_steps,
                         internal_batch_size=internal_batch_size, nt_samples=nt_samples, stdevs=stdevs,
                         layer=layer, **kwargs)[0]
    if x.dim() != 4:
        raise BookError(f"x has shape {tuple(x.shape)}: expected a batch of images [N, C, H, W]")
    if isinstance(model, RegionScore) and model.mask.dim() == 4 and model.mask.shape[0] > 1:
        return _per_image_region(model, x, target, method, smooth=smooth, baseline=baseline, n_steps=n_steps,
                                 internal_batch_size=internal_batch_size, nt_samples=nt_samples, stdevs=stdevs,
                                 layer=layer, **kwargs)
    x = x.detach().clone().requires_grad_(True)
    if isinstance(target, torch.Tensor):
        target = target.to(x.device).long()
    elif not isinstance(target, int):
        target = torch.as_tensor(list(target), device=x.device).long()
    with preserved_modes(model):
        if method == "guided_backprop":
            n_functional = functional_relu_count(model, x.detach())
            if n_functional:
                warnings.warn(f"{type(model).__name__} applies {n_functional} ReLU(s) as functions (F.relu/torch.relu),"
                              " not nn.ReLU modules: guided backpropagation cannot modify their backward pass, so the"
                              " map is partly a plain gradient. Use nn.ReLU modules.", stacklevel=2)
            with out_of_place_relus(model), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
                out = _run(model, x, target, method, smooth, baseline, n_steps, internal_batch_size, nt_samples,
                           stdevs, layer, kwargs)
        else:
            out = _run(model, x, target, method, smooth, baseline, n_steps, internal_batch_size, nt_samples,
                       stdevs, layer, kwargs)
    if method == "gradcam":
        out = LayerAttribution.interpolate(out, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return out.detach().to(x.dtype)


def _run(model, x, target, method, smooth, baseline, n_steps, internal_batch_size, nt_samples, stdevs, layer,
         kwargs) -> torch.Tensor:
    extra: dict = dict(kwargs)
    if method == "gradient":
        algo = Saliency(model)
        extra.setdefault("abs", False)
    elif method == "guided_backprop":
        algo = GuidedBackprop(model)
    elif method == "integrated_gradients":
        algo = IntegratedGradients(model)
        extra.update(baselines=_as_baseline(baseline, x), n_steps=n_steps, internal_batch_size=internal_batch_size)
    elif method == "gradcam":
        algo = LayerGradCam(model, layer if layer is not None else last_conv_layer(model))
        extra.setdefault("relu_attributions", True)
    else:  # occlusion
        algo = Occlusion(model)
        k = occlusion_window(x)
        extra.setdefault("sliding_window_shapes", (x.shape[1], k, k))
        extra.setdefault("strides", (x.shape[1], max(1, k // 2), max(1, k // 2)))
        extra.setdefault("baselines", _as_baseline(baseline, x))
        extra.setdefault("perturbations_per_eval", max(1, 256 // x.shape[0]))  # many patches per forward pass
    if not smooth:
        return algo.attribute(x, target=target, **extra)
    spread = float((x.detach().amax() - x.detach().amin()).item()) or 1.0
    return NoiseTunnel(algo).attribute(x, nt_type="smoothgrad", nt_samples=nt_samples, stdevs=stdevs * spread,
                                       target=target, **extra)


# --------------------------------------------------------------------------------------------------- completeness
#: The book's completeness rule for integrated gradients (chapter 3): on every image,
#: |Σ IG − (F(x) − F(x'))| < tolerance × max(|F(x) − F(x')|, ``COMPLETENESS_FLOOR``). Sundararajan et
#: al. (2017, sec. 5) ask for "within 5%" and more steps otherwise.
COMPLETENESS_TOLERANCE = 0.05
#: Below this logit difference the completeness error is judged in absolute terms: a relative error of a
#: difference near zero says nothing about the integral, and 5 % of one logit (0.05) moves a probability by
#: at most 1.25 percentage points.
COMPLETENESS_FLOOR = 1.0
#: The step counts :func:`ig_with_completeness` tries, fewest first.
IG_STEPS: tuple[int, ...] = (16, 32, 64, 128, 256)


@dataclass
class IGResult:
    """Integrated gradients checked against the completeness rule; see :func:`ig_with_completeness`.

    ``attributions`` shaped like ``x``; ``n_steps`` ``[N]`` the steps each image needed; ``errors`` ``[N]``
    per-image completeness errors (relative, see :data:`COMPLETENESS_TOLERANCE`); ``error`` their
    maximum; ``met``: ``error < tol``; ``diff`` ``[N]`` = F(x) − F(x') of the network explained."""

    attributions: torch.Tensor
    n_steps: torch.Tensor
    errors: torch.Tensor
    error: float
    met: bool
    diff: torch.Tensor


def _target_logit(out: torch.Tensor, target) -> torch.Tensor:
    out = out[0] if isinstance(out, (tuple, list)) else out
    idx = torch.arange(len(out), device=out.device)
    tgt = torch.as_tensor(target, device=out.device).long().expand(len(out))
    return out.reshape(len(out), -1)[idx, tgt]


def ig_with_completeness(model: nn.Module, x: torch.Tensor, target, baseline=None, *,
                         tol: float = COMPLETENESS_TOLERANCE, steps: Sequence[int] = IG_STEPS,
                         internal_batch_size: int | None = None, method: str = "gausslegendre",
                         floor: float = COMPLETENESS_FLOOR, strict: bool = True) -> IGResult:
    """Integrated gradients with, for each image, the fewest ``steps`` that meet the completeness rule.

    IG of ``model``'s logit ``target`` for ``x`` against ``baseline`` (as in :func:`attribute`: None, a
    number, a tensor or ``"black"``/``"blur"``/``"mean"``) is computed with ``steps[0]`` points, and
    each image's error |Σ IG − (F(x) − F(x'))| / max(|F(x) − F(x')|, ``floor``) checked; images at or
    above ``tol`` are recomputed with the next step count, and so on. ``strict=True`` raises if an image
    still misses ``tol`` after the last step count; ``strict=False`` returns with ``met=False``. Inside
    :func:`helpers.uncertainty.frozen_dropout` it explains that one network. Taught in chapter 3 (the
    completeness rule); chapter 4 follows it.
    """
    if x.dim() != 4:
        raise BookError(f"x has shape {tuple(x.shape)}: expected a batch of images [N, C, H, W]")
    steps = sorted({int(n) for n in steps})
    if not steps or steps[0] < 1:
        raise BookError(f"steps={steps}: give one or more positive step counts")
    n_img = len(x)
    b = _as_baseline(baseline, x)
    bt = b if isinstance(b, torch.Tensor) else torch.full_like(x, float(b))
    tgt = target if isinstance(target, int) else torch.as_tensor(target).long().to(x.device).expand(n_img)
    per_image = isinstance(model, RegionScore) and model.mask.dim() == 4 and model.mask.shape[0] > 1
    if per_image and model.mask.shape[0] != n_img:
        raise BookError(f"region_mask holds {model.mask.shape[0]} masks for a batch of {n_img} images")

    def integrate(idx: torch.Tensor, n: int) -> torch.Tensor:
        groups = [idx[i:i + 1] for i in range(len(idx))] if per_image else [idx]
        parts = []
        for g in groups:
            net = RegionScore(model.model, model.mask[g], model.channel) if per_image else model
            parts.append(IntegratedGradients(net).attribute(
                x[g].detach().clone().requires_grad_(True), baselines=bt[g],
                target=tgt if isinstance(tgt, int) else tgt[g], n_steps=n, method=method,
                internal_batch_size=internal_batch_size).detach())
        return torch.cat(parts)

    with preserved_modes(model):
        with torch.no_grad():
            diff = _target_logit(model(x), tgt) - _target_logit(model(bt), tgt)
        scale = diff.abs().clamp_min(floor)
        attr = torch.zeros_like(x)
        errors = torch.full((n_img,), float("inf"), dtype=diff.dtype, device=diff.device)
        used = torch.zeros(n_img, dtype=torch.long)
        todo = torch.arange(n_img, device=x.device)
        for n in steps:
            a = integrate(todo, n)
            attr[todo] = a.to(attr.dtype)
            errors[todo] = (a.flatten(1).sum(1).to(diff.dtype) - diff[todo]).abs() / scale[todo]
            used[todo.cpu()] = n
            todo = todo[errors[todo] >= tol]
            if len(todo) == 0:
                break
    worst = float(errors.max())
    if strict and worst >= tol:
        raise BookError(f"integrated gradients: completeness error {worst:.2%} on {len(todo)} image(s) "
                        f"with n_steps={steps[-1]}, above the tolerance {tol:.2%}: add larger step "
                        f"counts to steps= (tried {steps})")
    return IGResult(attr, used, errors.detach(), worst, worst < tol, diff.detach())


# --------------------------------------------------------------------------------------------------- MC samples
@dataclass
class MCAttributions:
    """One attribution map per MC-dropout network; see :func:`mc_attributions`.

    ``maps`` ``[T, *attribute-shape]``; ``logits`` ``[T, N, C]`` of the same networks on ``x``;
    ``seeds`` the mask seed of each network (:func:`helpers.uncertainty.frozen_dropout`); for integrated
    gradients ``n_steps`` and per-sample completeness ``errors`` ``[T, N]``, else None."""

    maps: torch.Tensor
    logits: torch.Tensor
    seeds: list[int]
    n_steps: torch.Tensor | None = None
    errors: torch.Tensor | None = None


def mc_attributions(model: nn.Module, x: torch.Tensor, target, method: str, T: int = 10, *,
                    seed: int = 0, tol: float | None = COMPLETENESS_TOLERANCE,
                    steps: Sequence[int] = IG_STEPS, **kwargs) -> MCAttributions:
    """Attribution maps of ``T`` MC-dropout networks: sample ``t`` is computed entirely under ONE
    dropout mask (:func:`helpers.uncertainty.frozen_dropout` with ``mask_seeds(seed, T)[t]``).

    All images of ``x`` are explained by the same ``T`` networks. For integrated gradients each sample
    meets the completeness rule (:func:`ig_with_completeness` with ``tol`` and ``steps``; ``tol=None``:
    the single ``n_steps=`` of ``kwargs`` or 50, errors still reported). Other keyword arguments go to
    :func:`attribute`. Taught in chapter 3 (saliency meets uncertainty): inside
    :func:`helpers.uncertainty.mc_dropout` every path point of IG would get its own mask instead.
    """
    from helpers.uncertainty import frozen_dropout, mask_seeds

    if T < 1:
        raise BookError(f"T={T}: the number of MC samples must be at least 1")
    seeds = mask_seeds(seed, T)
    maps, logits, n_steps, errors = [], [], [], []
    for s in seeds:
        with frozen_dropout(model, s):
            with torch.no_grad():
                out = model(x)
            logits.append((out[0] if isinstance(out, (tuple, list)) else out).detach())
            if method == "integrated_gradients":
                kw = dict(kwargs)
                if tol is None:
                    steps_s, tol_s, strict = (kw.pop("n_steps", 50),), float("inf"), False
                else:
                    kw.pop("n_steps", None)
                    steps_s, tol_s, strict = steps, tol, True
                r = ig_with_completeness(model, x, target, kw.pop("baseline", None), tol=tol_s,
                                         steps=steps_s, strict=strict, **kw)
                maps.append(r.attributions)
                n_steps.append(r.n_steps)
                errors.append(r.errors)
            else:
                maps.append(attribute(model, x, target, method, **kwargs))
    is_ig = method == "integrated_gradients"
    return MCAttributions(torch.stack(maps), torch.stack(logits), seeds,
                          torch.stack(n_steps) if is_ig else None, torch.stack(errors) if is_ig else None)


# --------------------------------------------------------------------------------------------------- regions
class RegionScore(nn.Module):
    """``[N, 1]`` = mean logit of ``channel`` inside a region, from a segmentation model. See :func:`region_score`."""

    def __init__(self, model: nn.Module, region_mask: torch.Tensor, channel: int = 0) -> None:
        super().__init__()
        mask = torch.as_tensor(region_mask).bool()
        if mask.dim() == 2:
            mask = mask[None, None]
        if mask.dim() != 4 or mask.shape[1] != 1:
            raise BookError(f"region_mask has shape {tuple(mask.shape)}: expected [H, W] or [N, 1, H, W]")
        if (mask.flatten(1).sum(1) == 0).any():
            raise BookError("region_mask is empty (for at least one image): choose a region with pixels in it")
        self.model = model
        self.channel = channel
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        logits = out[0] if isinstance(out, (tuple, list)) else out
        if logits.dim() != 4:
            raise BookError(f"the wrapped model returned shape {tuple(logits.shape)}: expected [N, C, H, W] logits")
        if self.mask.shape[-2:] != logits.shape[-2:]:
            raise BookError(f"region_mask is {tuple(self.mask.shape[-2:])} but the logits are "
                            f"{tuple(logits.shape[-2:])}: give a mask of the output's size")
        mask = self.mask.to(logits.device)
        if mask.shape[0] not in (1, logits.shape[0]):
            raise BookError(f"region_mask holds {mask.shape[0]} masks for a batch of {logits.shape[0]}")
        m = mask.to(logits.dtype)
        score = (logits[:, self.channel:self.channel + 1] * m).flatten(1).sum(1) / m.flatten(1).sum(1)
        return score[:, None]


def region_score(model: nn.Module, region_mask: torch.Tensor, channel: int = 0) -> nn.Module:
    """Wrap a segmentation model so it returns ``[N, 1]``: the mean logit of ``channel`` inside ``region_mask``.

    ``model`` returns ``[N, C, H, W]`` logits (or a tuple whose first element is them); ``region_mask`` is a bool
    ``[H, W]`` (one region for every image) or ``[N, 1, H, W]`` (one per image). Then
    ``attribute(region_score(unet, m), x, target=0, method="integrated_gradients")`` explains the segmentation
    inside ``m``. Taught in chapter 3; used in the retina chapter.
    """
    return RegionScore(model, region_mask, channel)


def _per_image_region(model: RegionScore, x: torch.Tensor, target, method: str, **kw) -> torch.Tensor:
    """Per-image masks: attribute one image at a time (captum's batch expansions would misalign the masks)."""
    if model.mask.shape[0] != x.shape[0]:
        raise BookError(f"region_mask holds {model.mask.shape[0]} masks for a batch of {x.shape[0]} images")
    maps = []
    for i in range(x.shape[0]):
        single = RegionScore(model.model, model.mask[i:i + 1], model.channel)
        maps.append(attribute(single, x[i:i + 1], target, method, **kw))
    return torch.cat(maps)


# --------------------------------------------------------------------------------------------------- helpers
def to_2d(attr: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """Collapse the channels of maps ``[N, C, H, W]`` to ``[N, H, W]``: ``"sum"`` (signed), ``"abs"`` (Σ|·|)."""
    if reduce == "sum":
        return attr.sum(1)
    if reduce == "abs":
        return attr.abs().sum(1)
    raise BookError(f"reduce={reduce!r}: use 'sum' or 'abs'")


def evidence(attr: torch.Tensor, method: str) -> torch.Tensor:
    """The ``[N, H, W]`` map used to rank pixels: signed for :data:`SIGNED_METHODS` and Grad-CAM, else |·|.

    The sign of a plain or guided gradient says which way a pixel should change, not whether it is evidence,
    so those maps are ranked by magnitude. Taught in chapter 3.
    """
    return to_2d(attr, "sum" if method in SIGNED_METHODS + ("gradcam",) else "abs")


__all__ = ["COMPLETENESS_FLOOR", "COMPLETENESS_TOLERANCE", "IG_STEPS", "IGResult", "MCAttributions", "METHODS",
           "SIGNED_METHODS", "RegionScore", "attribute", "evidence", "functional_relu_count",
           "ig_with_completeness", "last_conv_layer", "make_baseline", "mc_attributions", "occlusion_window",
           "out_of_place_relus", "preserved_modes", "region_score", "to_2d"]
