"""Losses of the book: soft Dice for thin structures, and the losses of the aleatoric heads (chapter 2)."""

from __future__ import annotations

import torch


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
