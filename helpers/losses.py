"""Losses of the book: soft Dice for thin structures, and the losses of the aleatoric heads (chapter 2)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def soft_dice_loss(probs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                   eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss 1 − (2 Σ p g + ε) / (Σ p + Σ g + ε) over each image, averaged over the batch.

    ``probs`` and ``target`` are ``[N, 1, H, W]`` (or any ``[N, ...]``) with values in [0, 1]; ``mask`` (same
    shape, optional) restricts the sums to a region such as the field of view (Milletari et al. 2016).
    Taught in chapter 4.
    """
    if mask is not None:
        probs, target = probs * mask, target * mask
    dims = tuple(range(1, probs.dim()))
    inter = (probs * target).sum(dims)
    denom = probs.sum(dims) + target.sum(dims)
    return (1 - (2 * inter + eps) / (denom + eps)).mean()


def _reduce(loss: torch.Tensor, reduction: str, mask: torch.Tensor | None = None) -> torch.Tensor:
    if mask is not None:
        mask = mask.to(loss.dtype).expand_as(loss)
        loss = loss * mask
        if reduction == "mean":
            return loss.sum() / mask.sum().clamp_min(1.0)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction={reduction!r}: use 'mean', 'sum' or 'none'")


def gaussian_nll(mean: torch.Tensor, log_var: torch.Tensor, y: torch.Tensor, reduction: str = "mean"
                 ) -> torch.Tensor:
    """Heteroscedastic Gaussian loss ½·exp(−s)·(y − ŷ)² + ½·s with ``s = log_var`` (Kendall & Gal 2017, eq. 8).

    The negative log-likelihood of N(ŷ, σ²) without the constant ½ log 2π. Large residuals can be "explained" by a
    large σ², but every unit of ``s`` costs ½: for a fixed residual ``r`` it is minimised at ``s = log r²``.
    Equal to ``torch.nn.GaussianNLLLoss`` with ``var = exp(log_var)``. Taught in chapter 2, section "Regression head".
    """
    return _reduce(0.5 * torch.exp(-log_var) * (y - mean) ** 2 + 0.5 * log_var, reduction)


def laplace_nll(mean: torch.Tensor, log_b: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Heteroscedastic Laplace (L1) loss exp(−log b)·|y − ŷ| + log b, the Laplace negative log-likelihood
    without its constant log 2 (Kendall & Gal 2017, section 3.2). Minimised at ``log b = log |r|``.

    Taught in chapter 2, section "Regression head".
    """
    return _reduce(torch.exp(-log_b) * (y - mean).abs() + log_b, reduction)


def _noisy_logits(logits: torch.Tensor, log_var: torch.Tensor, T: int,
                  generator: torch.Generator | None) -> torch.Tensor:
    """``T`` samples ``logits + σ·ε`` with ε ~ N(0, 1), stacked on a new first dimension ``[T, ...]``."""
    std = torch.exp(0.5 * log_var)
    shape = (T, *torch.broadcast_shapes(logits.shape, log_var.shape))
    device = generator.device if generator is not None else logits.device
    eps = torch.randn(shape, generator=generator, device=device, dtype=logits.dtype).to(logits.device)
    return logits.unsqueeze(0) + std.unsqueeze(0) * eps


def logit_noise_loss(logits: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor, T: int = 20, *,
                     mask: torch.Tensor | None = None, reduction: str = "mean",
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Multi-class logit-noise loss (Kendall & Gal 2017, eq. 12), estimated with ``T`` Monte Carlo samples.

    x̂_t = f + σ·ε_t with σ² = exp(``log_var``);  loss = −log (1/T) Σ_t softmax(x̂_t)_c, computed as a log-mean-exp
    of log-softmax values (stable). ``logits`` and ``log_var`` are ``[N, C, ...]`` (``log_var`` may have one channel,
    shared by the classes); ``target`` holds class indices ``[N, ...]``; ``mask`` ``[N, ...]`` (optional) restricts
    the mean. With σ → 0 it is the cross-entropy. Taught in chapter 2, section "Classification head".
    """
    if T < 1:
        raise ValueError(f"T={T}: the number of noise samples must be at least 1")
    noisy = _noisy_logits(logits, log_var, T, generator)                     # [T, N, C, ...]
    log_p = torch.log_softmax(noisy, dim=2)
    idx = target.long().unsqueeze(0).unsqueeze(2).expand(T, -1, 1, *target.shape[1:])
    log_p_target = log_p.gather(2, idx).squeeze(2)                          # [T, N, ...]
    nll = -(torch.logsumexp(log_p_target, dim=0) - math.log(T))
    return _reduce(nll, reduction, mask)


def binary_logit_noise_loss(logits: torch.Tensor, log_var: torch.Tensor, target: torch.Tensor, T: int = 20,
                            mask: torch.Tensor | None = None, *, reduction: str = "mean",
                            generator: torch.Generator | None = None) -> torch.Tensor:
    """One-channel (sigmoid) logit-noise loss for segmentation: −log (1/T) Σ_t p(target | z + σ·ε_t).

    ``logits``, ``log_var`` and ``target`` (float, 0 or 1) are ``[N, 1, H, W]`` (any equal shapes work);
    ``mask`` (same shape, optional, e.g. the field of view) restricts the mean to its pixels. With σ → 0 it is
    ``binary_cross_entropy_with_logits``. Combine with :func:`soft_dice_loss` on ``sigmoid(logits)``.
    Kendall & Gal 2017, eq. 12, with the softmax of two classes written as a sigmoid.
    Taught in chapter 2, section "Segmentation head"; used in the retina chapter.
    """
    if T < 1:
        raise ValueError(f"T={T}: the number of noise samples must be at least 1")
    noisy = _noisy_logits(logits, log_var, T, generator)                     # [T, N, 1, H, W]
    target = target.to(noisy.dtype).unsqueeze(0)
    log_p = -F.binary_cross_entropy_with_logits(noisy, target.expand_as(noisy), reduction="none")
    nll = -(torch.logsumexp(log_p, dim=0) - math.log(T))
    return _reduce(nll, reduction, mask)


__all__ = ["binary_logit_noise_loss", "gaussian_nll", "laplace_nll", "logit_noise_loss", "soft_dice_loss"]
