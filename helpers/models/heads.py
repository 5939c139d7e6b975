"""Aleatoric heads: small output layers that predict a value *and* the noise of the data around it.

Taught in chapter 2 (aleatoric uncertainty); reused by the retina (per-pixel head), chest X-ray (logit-noise head)
and cell chapters. Every head takes the features ``h`` of any backbone and returns two tensors: the prediction and
the log of its noise scale. Predicting a *log*-variance ``s = log σ²`` keeps the variance positive without a
constraint and keeps the loss finite (no division by a variance that could reach zero) (Kendall & Gal 2017).
The matching losses live in :mod:`helpers.losses`.
"""

from __future__ import annotations

import torch
from torch import nn


class _TwoOutputHead(nn.Module):
    """Two parallel layers on the same features: the prediction and its log noise scale."""

    def __init__(self, value: nn.Module, log_scale: nn.Module, init_log_scale: float) -> None:
        super().__init__()
        self.value = value
        self.log_scale = log_scale
        # Start from a flat noise level: zero weights, bias = the initial log scale. The network then learns
        # where the noise differs from it instead of starting from random, possibly huge, variances.
        nn.init.zeros_(self.log_scale.weight)
        nn.init.constant_(self.log_scale.bias, init_log_scale)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.value(h), self.log_scale(h)


class GaussianHead(_TwoOutputHead):
    """Regression head ``h -> (mean, log_var)``: a Gaussian N(mean, exp(log_var)) for each output.

    Use with :func:`helpers.losses.gaussian_nll`. ``h`` is ``[N, in_features]``; both outputs ``[N, out_features]``.
    Taught in chapter 2, section "Regression head".
    """

    def __init__(self, in_features: int, out_features: int = 1, init_log_var: float = 0.0) -> None:
        super().__init__(nn.Linear(in_features, out_features), nn.Linear(in_features, out_features), init_log_var)
        self.in_features, self.out_features = in_features, out_features


class LaplaceHead(_TwoOutputHead):
    """Regression head ``h -> (mean, log_b)``: a Laplace distribution with location ``mean`` and scale ``exp(log_b)``.

    The L1 counterpart of :class:`GaussianHead` (heavier tails, robust to outliers); its variance is ``2 b²``.
    Use with :func:`helpers.losses.laplace_nll`. Taught in chapter 2, section "Regression head".
    """

    def __init__(self, in_features: int, out_features: int = 1, init_log_b: float = 0.0) -> None:
        super().__init__(nn.Linear(in_features, out_features), nn.Linear(in_features, out_features), init_log_b)
        self.in_features, self.out_features = in_features, out_features


class LogitNoiseHead(_TwoOutputHead):
    """Classification head ``h -> (logits, log_var)``: Gaussian noise of variance ``exp(log_var)`` on each logit.

    ``logits`` and ``log_var`` are ``[N, n_classes]`` (one noise variance per class, Kendall & Gal 2017 eq. 12).
    Use with :func:`helpers.losses.logit_noise_loss`. Taught in chapter 2, section "Classification head".
    """

    def __init__(self, in_features: int, n_classes: int, init_log_var: float = -2.0) -> None:
        super().__init__(nn.Linear(in_features, n_classes), nn.Linear(in_features, n_classes), init_log_var)
        self.in_features, self.n_classes = in_features, n_classes


class PixelLogVarHead(_TwoOutputHead):
    """Segmentation head ``h -> (logits, log_var)`` per pixel: two 1×1 convolutions on ``[N, in_channels, H, W]``.

    Both outputs are ``[N, out_channels, H, W]``. With ``out_channels=1`` (sigmoid segmentation) use
    :func:`helpers.losses.binary_logit_noise_loss`, otherwise :func:`helpers.losses.logit_noise_loss`.
    Taught in chapter 2, section "Segmentation head"; applied to retinal vessels in the retina chapter.
    """

    def __init__(self, in_channels: int, out_channels: int = 1, init_log_var: float = -2.0) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel_size=1),
                         nn.Conv2d(in_channels, out_channels, kernel_size=1), init_log_var)
        self.in_channels, self.out_channels = in_channels, out_channels


@torch.no_grad()
def logit_noise_probs(logits: torch.Tensor, log_var: torch.Tensor, T: int = 100, *, binary: bool = False,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The predictive probabilities of a logit-noise head: softmax(logits + σ·ε) averaged over ``T`` draws of ε.

    ``logits``, ``log_var``: ``[N, C, ...]``; returns ``[N, C, ...]`` probabilities. With ``binary=True`` the single
    channel is a sigmoid logit and the result is the probability of the foreground, ``[N, 1, ...]``.
    Combined with MC dropout, call it once per dropout sample (e.g. as the ``transform`` of
    :func:`helpers.uncertainty.mc_samples`). Taught in chapter 2, section "Classification head".
    """
    std = torch.exp(0.5 * log_var)
    device = generator.device if generator is not None else logits.device
    eps = torch.randn((T, *torch.broadcast_shapes(logits.shape, log_var.shape)), generator=generator,
                      device=device, dtype=logits.dtype).to(logits.device)
    noisy = logits.unsqueeze(0) + std.unsqueeze(0) * eps
    return (torch.sigmoid(noisy) if binary else torch.softmax(noisy, dim=2)).mean(0)


__all__ = ["GaussianHead", "LaplaceHead", "LogitNoiseHead", "PixelLogVarHead", "logit_noise_probs"]
