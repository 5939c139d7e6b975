"""Monte Carlo dropout and the decomposition of predictive uncertainty.

Taught in chapter 1 (MC dropout), chapter 2 (aleatoric + epistemic decomposition) and chapter 3
(:func:`frozen_dropout`: one network per MC sample, for methods that batch many inputs).

MC dropout (Gal & Ghahramani 2016) keeps dropout switched on at test time and averages ``T`` stochastic passes.
Only the dropout modules are put in training mode: BatchNorm and everything else stay in eval mode, so their
running statistics are neither used in batch mode nor updated. Dropout applied with ``torch.nn.functional.dropout``
inside ``forward`` is not a module and cannot be switched: use ``nn.Dropout`` modules.
"""

from __future__ import annotations


from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

from helpers.errors import BookError

_DROPOUT_TYPES = (nn.modules.dropout._DropoutNd,)


def dropout_modules(model: nn.Module) -> list[nn.Module]:
    """All dropout modules of ``model`` (``nn.Dropout``, ``Dropout1d/2d/3d``, ``AlphaDropout`` ...)."""
    return [m for m in model.modules() if isinstance(m, _DROPOUT_TYPES)]


@contextmanager
def mc_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Context in which ``model`` is in eval mode except its dropout modules; modes are restored on exit.

    >>> with mc_dropout(model):
    ...     y1, y2 = model(x), model(x)   # two different dropout masks, BatchNorm in eval mode
    """
    drops = dropout_modules(model)
    if not drops:
        raise BookError(f"{type(model).__name__} has no nn.Dropout modules: MC dropout needs at least one")
    saved = {m: m.training for m in model.modules()}
    try:
        model.eval()
        for m in drops:
            m.train()
        yield model
    finally:
        for m, mode in saved.items():
            m.training = mode


# ----------------------------------------------------------------------------- mask-locked dropout
def _mask_shape(module: nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    """Shape of one sample's dropout mask: the activation without its batch dimension, with the
    spatial dimensions of channel-wise dropout (``Dropout1d/2d/3d``) reduced to 1."""
    if isinstance(module, (nn.AlphaDropout, nn.FeatureAlphaDropout)):
        raise BookError(f"{type(module).__name__} is not supported by frozen_dropout: use nn.Dropout or "
                        "nn.Dropout1d/2d/3d")
    if isinstance(module, (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)):
        return (x.shape[1],) + (1,) * (x.dim() - 2)
    return tuple(x.shape[1:])


def mask_seeds(seed: int, T: int) -> list[int]:
    """``T`` seeds for :func:`frozen_dropout`, one per MC sample, reproducible from ``seed`` and
    different for different ``seed`` (NumPy's ``SeedSequence``). Sample ``t`` of
    :func:`helpers.saliency.mc_attributions` is the network ``frozen_dropout(model, mask_seeds(seed, T)[t])``."""
    import numpy as np

    return [int(s) for s in np.random.SeedSequence(seed).generate_state(T)]


@contextmanager
def frozen_dropout(model: nn.Module, seed: int | torch.Generator = 0) -> Iterator[nn.Module]:
    """Context in which ``model`` is ONE network drawn from MC dropout: every dropout module draws one
    mask on first use and applies it to every row of every batch until the context exits.

    Taught in chapter 3 (saliency under MC dropout). Inside :func:`mc_dropout` every row of a batch gets
    its own mask, so a method that evaluates many inputs in one batch (integrated gradients puts all its
    path points in one batch) would mix many networks in one "sample". Here the mask of a module has the
    shape of its activation without the batch dimension (``Dropout2d``: one value per channel), is drawn
    from ``seed`` (an int or a ``torch.Generator``) and scaled by 1/(1 − p) as in training. BatchNorm
    and everything else stay in eval mode; modes are restored and the hooks removed on exit.

    >>> with frozen_dropout(model, seed=3):
    ...     y1, y2 = model(x), model(x)   # identical: one network, the same mask for every row
    """
    drops = dropout_modules(model)
    if not drops:
        raise BookError(f"{type(model).__name__} has no nn.Dropout modules: MC dropout needs at least one")
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))
    masks: dict[nn.Module, torch.Tensor] = {}

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        x = inputs[0]
        shape = _mask_shape(module, x)
        mask = masks.get(module)
        if mask is None:
            p = float(module.p)
            keep = torch.rand(shape, generator=gen) >= p
            mask = keep.to(torch.float64) / (1 - p) if p < 1 else torch.zeros(shape, dtype=torch.float64)
            masks[module] = mask
        elif tuple(mask.shape) != shape:
            raise BookError(f"frozen_dropout: {type(module).__name__} saw an activation of shape "
                            f"{tuple(x.shape[1:])} after drawing a mask of shape {tuple(mask.shape)}: "
                            "use one input size per context")
        return x * mask.to(device=x.device, dtype=x.dtype)

    saved = {m: m.training for m in model.modules()}
    handles = []
    try:
        model.eval()   # dropout modules are the identity in eval mode; the hook applies the mask
        handles = [m.register_forward_hook(hook) for m in drops]
        yield model
    finally:
        for h in handles:
            h.remove()
        for m, mode in saved.items():
            m.training = mode


#: Default memory bound of an MC pass, in input values: about 170,000 rows of a 6-feature table, 256 64×64
#: images, or one 1-megapixel fundus photograph per pass.
INPUT_VALUES_PER_PASS = 1 << 20


def rows_per_pass(x: torch.Tensor, chunk_size: int | None = None) -> int:
    """``chunk_size`` if given, else the number of rows of ``x`` with :data:`INPUT_VALUES_PER_PASS` values."""
    if chunk_size is not None:
        if chunk_size < 1:
            raise BookError(f"chunk_size={chunk_size}: need at least one row per pass")
        return chunk_size
    return max(1, INPUT_VALUES_PER_PASS // max(1, x[0].numel()))


def _forward_rows(model: nn.Module, x: torch.Tensor, T: int, chunk_size: int | None,
                  transform: Callable[[torch.Tensor], torch.Tensor] | None) -> torch.Tensor:
    """``T`` stochastic outputs for every row of ``x`` as one tensor ``[T, N, ...]``, in batched passes.

    The input is repeated along the batch dimension: each copy gets its own dropout mask, so one pass over
    ``k`` copies of ``x`` is ``k`` MC samples. ``chunk_size`` bounds the rows in one pass (memory).
    """
    n = x.shape[0]
    chunk_size = rows_per_pass(x, chunk_size)
    out: list[torch.Tensor] = []
    if n >= chunk_size:  # large inputs: samples one after another, rows in chunks
        for _ in range(T):
            parts = [model(x[i:i + chunk_size]) for i in range(0, n, chunk_size)]
            if transform is not None:  # per chunk: the model may return a tuple that only transform understands
                parts = [transform(part) for part in parts]
            out.append(torch.cat(parts).unsqueeze(0))
        return torch.cat(out)
    per_pass = max(1, chunk_size // n)
    done = 0
    while done < T:
        k = min(per_pass, T - done)
        xr = x.repeat(k, *([1] * (x.dim() - 1)))
        y = model(xr)
        y = transform(y) if transform else y
        out.append(y.reshape(k, n, *y.shape[1:]))
        done += k
    return torch.cat(out)


@torch.no_grad()
def mc_samples(model: nn.Module, x: torch.Tensor, T: int = 50, *, chunk_size: int | None = None,
               transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Return ``T`` MC-dropout outputs of ``model`` for input ``x`` as a tensor of shape ``[T, N, ...]``.

    ``transform`` is applied to each batch of outputs (e.g. ``lambda z: z.softmax(1)``) before they are stored.
    Computed in batched passes of at most ``chunk_size`` rows (not a Python loop over ``T``); by default as many
    rows as hold about a million input values (:func:`rows_per_pass`). Lower it when a network's activations are
    much larger than its input.
    """
    if T < 1:
        raise BookError(f"T={T}: the number of MC samples must be at least 1")
    with mc_dropout(model):
        return _forward_rows(model, x, T, chunk_size, transform)


@torch.no_grad()
def mc_samples_loop(model: nn.Module, x: torch.Tensor, T: int = 50) -> torch.Tensor:
    """The same as :func:`mc_samples` with a plain loop of ``T`` passes: the reference it is tested against."""
    with mc_dropout(model):
        return torch.stack([model(x) for _ in range(T)])


def entropy(probs: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Shannon entropy in nats along ``dim`` (0 log 0 taken as 0)."""
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim)


def classification_summary(probs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Summaries of MC class probabilities ``probs[T, N, C, ...]``.

    ``mean`` (predictive distribution), ``predictive_entropy`` H[E p] (total), ``expected_entropy`` E H[p]
    (aleatoric), ``mutual_information`` = H[E p] − E H[p] (epistemic, BALD; Houlsby et al. 2011) and ``variance``
    of the probabilities over samples.
    """
    mean = probs.mean(0)
    total = entropy(mean, dim=1)
    expected = entropy(probs, dim=2).mean(0)
    return {"mean": mean, "predictive_entropy": total, "expected_entropy": expected,
            "mutual_information": (total - expected).clamp_min(0.0), "variance": probs.var(0, unbiased=False)}


def regression_summary(means: torch.Tensor, variances: torch.Tensor | float | None = None
                       ) -> dict[str, torch.Tensor]:
    """Decompose MC regression samples: ``means[T, N, ...]`` and predicted (aleatoric) ``variances``.

    ``variances`` is a tensor like ``means`` (an aleatoric head), a float (homoscedastic noise ``1/tau``) or None.
    Returns ``mean``, ``epistemic`` (variance of the MC means), ``aleatoric`` (mean predicted variance) and
    ``total`` = epistemic + aleatoric (Kendall & Gal 2017, eq. 9).
    """
    mean = means.mean(0)
    epistemic = means.var(0, unbiased=False)
    if variances is None:
        aleatoric = torch.zeros_like(mean)
    elif isinstance(variances, (int, float)):
        aleatoric = torch.full_like(mean, float(variances))
    else:
        aleatoric = variances.mean(0)
    return {"mean": mean, "epistemic": epistemic, "aleatoric": aleatoric, "total": epistemic + aleatoric}


def mc_predict(model: nn.Module, x: torch.Tensor, T: int = 50, *, task: str = "classification",
               chunk_size: int | None = None, return_samples: bool = False) -> dict[str, torch.Tensor]:
    """MC-dropout prediction with its uncertainty summaries.

    ``task="classification"``: the model returns logits ``[N, C, ...]``; summaries of :func:`classification_summary`.
    ``task="regression"``: the model returns predictions; ``mean`` and ``epistemic`` variance.
    With ``return_samples=True`` the raw samples are added under ``"samples"``.
    """
    if task == "classification":
        samples = mc_samples(model, x, T, chunk_size=chunk_size, transform=lambda z: z.softmax(1))
        result = classification_summary(samples)
    elif task == "regression":
        samples = mc_samples(model, x, T, chunk_size=chunk_size)
        result = regression_summary(samples)
    else:
        raise BookError(f"task={task!r}: use 'classification' or 'regression'")
    if return_samples:
        result["samples"] = samples
    return result


def gaussian_tau(length_scale: float, p: float, n_train: int, weight_decay: float) -> float:
    """Model precision τ = l² (1 − p) / (2 N λ) linking weight decay λ to the prior length scale l (Gal 2016)."""
    return length_scale ** 2 * (1 - p) / (2 * n_train * weight_decay)


def weight_decay_for(length_scale: float, p: float, n_train: int, tau: float) -> float:
    """Weight decay λ = l² (1 − p) / (2 N τ), the inverse of :func:`gaussian_tau`."""
    return length_scale ** 2 * (1 - p) / (2 * n_train * tau)


__all__ = ["classification_summary", "dropout_modules", "entropy", "frozen_dropout", "gaussian_tau",
           "mask_seeds", "mc_dropout", "mc_predict", "mc_samples", "mc_samples_loop", "regression_summary",
           "weight_decay_for"]
