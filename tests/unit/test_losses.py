"""Losses of the aleatoric heads (chapter 2): minima, limits, and agreement with torch's own distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.losses import binary_logit_noise_loss, gaussian_nll, laplace_nll, logit_noise_loss, soft_dice_loss


def test_gaussian_nll_matches_torch():
    g = torch.Generator().manual_seed(0)
    mean, log_var, y = torch.randn(3, 50, 2, generator=g)
    ref = torch.nn.GaussianNLLLoss(full=False, eps=0.0)(mean, y, log_var.exp())
    assert torch.allclose(gaussian_nll(mean, log_var, y), ref, atol=1e-6)
    full = -torch.distributions.Normal(mean, (0.5 * log_var).exp()).log_prob(y).mean()
    assert torch.allclose(gaussian_nll(mean, log_var, y) + 0.5 * math.log(2 * math.pi), full, atol=1e-5)


@pytest.mark.parametrize("r", [0.1, 1.0, 3.0])
def test_gaussian_nll_is_minimised_at_log_squared_residual(r):
    s = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([s], lr=1.0, max_iter=200, tolerance_grad=1e-10, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = gaussian_nll(torch.zeros(1), s, torch.tensor([r]))
        loss.backward()
        return loss
    opt.step(closure)
    assert s.item() == pytest.approx(math.log(r ** 2), abs=1e-3)


def test_laplace_nll_matches_torch_and_minimum():
    g = torch.Generator().manual_seed(1)
    mean, log_b, y = torch.randn(3, 40, generator=g)
    ref = -torch.distributions.Laplace(mean, log_b.exp()).log_prob(y).mean() - math.log(2)
    assert torch.allclose(laplace_nll(mean, log_b, y), ref, atol=1e-5)
    grid = torch.linspace(-5, 5, 10001)
    losses = laplace_nll(torch.zeros(()), grid, torch.tensor(2.0), reduction="none")
    assert grid[losses.argmin()].item() == pytest.approx(math.log(2.0), abs=2e-3)


def test_logit_noise_loss_without_noise_is_cross_entropy():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(30, 4, 3, 3, generator=g)
    target = torch.randint(0, 4, (30, 3, 3), generator=g)
    tiny = torch.full_like(logits, -40.0)
    assert torch.allclose(logit_noise_loss(logits, tiny, target, T=3), F.cross_entropy(logits, target), atol=1e-5)
    z, t = logits[:, :1], (target[:, None] > 1).float()
    assert torch.allclose(binary_logit_noise_loss(z, tiny[:, :1], t, T=3),
                          F.binary_cross_entropy_with_logits(z, t), atol=1e-5)


def test_logit_noise_attenuates_confident_mistakes_only():
    """Noise lowers the loss of a confidently wrong prediction and raises that of a confidently right one."""
    logits = torch.tensor([[6.0, 0.0]])
    g = torch.Generator().manual_seed(3)
    loss = lambda target, s: logit_noise_loss(logits, torch.full_like(logits, s), torch.tensor([target]),
                                              T=2000, generator=g).item()
    assert loss(1, 2.0) < loss(1, -20.0)        # wrong: noise helps
    assert loss(0, 2.0) > loss(0, -20.0)        # right: noise costs


def test_binary_logit_noise_matches_quadrature():
    """The MC estimate agrees with −log E[σ(±(z + σε))] computed by Gauss–Hermite quadrature."""
    z, s = 1.5, math.log(2.0 ** 2)
    g = torch.Generator().manual_seed(4)
    mc = binary_logit_noise_loss(torch.tensor([[z]]), torch.tensor([[s]]), torch.tensor([[0.0]]), T=200_000,
                                 generator=g).item()
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    exact = -math.log(np.sum(weights * (1 / (1 + np.exp(z + 2.0 * nodes)))) / math.sqrt(2 * math.pi))
    assert mc == pytest.approx(exact, rel=1e-2)


def test_mask_restricts_the_mean():
    g = torch.Generator().manual_seed(5)
    z, s = torch.randn(2, 2, 1, 6, 6, generator=g)
    t = (torch.rand(2, 1, 6, 6, generator=g) > 0.5).float()
    mask = torch.zeros_like(t)
    mask[:, :, :3] = 1
    full = binary_logit_noise_loss(z, s, t, T=50, reduction="none", generator=torch.Generator().manual_seed(0))
    masked = binary_logit_noise_loss(z, s, t, T=50, mask=mask, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(masked, full[:, :, :3].mean(), atol=1e-6)


def test_soft_dice_loss_limits():
    t = (torch.rand(2, 1, 8, 8) > 0.5).float()
    assert soft_dice_loss(t, t).item() == pytest.approx(0.0, abs=1e-6)
    assert soft_dice_loss(1 - t, t, eps=1e-6).item() == pytest.approx(1.0, abs=1e-4)
