"""Aleatoric heads (chapter 2): shapes, a flat initial noise level, and gradients reaching both outputs."""

from __future__ import annotations

import pytest
import torch

from helpers.losses import binary_logit_noise_loss, gaussian_nll, laplace_nll, logit_noise_loss
from helpers.models.heads import GaussianHead, LaplaceHead, LogitNoiseHead, PixelLogVarHead, logit_noise_probs


@pytest.mark.parametrize("head_cls", [GaussianHead, LaplaceHead])
def test_regression_heads_shapes_and_initial_noise(head_cls):
    head = head_cls(8, 3)
    mean, log_scale = head(torch.randn(5, 8))
    assert mean.shape == log_scale.shape == (5, 3)
    assert torch.all(log_scale == 0.0)          # flat noise level at start, whatever the input


def test_logit_noise_and_pixel_heads_shapes():
    logits, log_var = LogitNoiseHead(8, 4)(torch.randn(5, 8))
    assert logits.shape == log_var.shape == (5, 4)
    logits, log_var = PixelLogVarHead(16, 1)(torch.randn(2, 16, 9, 7))
    assert logits.shape == log_var.shape == (2, 1, 9, 7)
    logits, log_var = PixelLogVarHead(16, 3)(torch.randn(2, 16, 9, 7))
    assert logits.shape == log_var.shape == (2, 3, 9, 7)


def test_every_head_trains_both_outputs():
    torch.manual_seed(0)
    h = torch.randn(6, 8)
    cases = [(GaussianHead(8), lambda o: gaussian_nll(*o, torch.randn(6, 1))),
             (LaplaceHead(8), lambda o: laplace_nll(*o, torch.randn(6, 1))),
             (LogitNoiseHead(8, 3), lambda o: logit_noise_loss(*o, torch.randint(0, 3, (6,)), T=5))]
    for head, loss_fn in cases:
        loss_fn(head(h)).backward()
        assert head.value.weight.grad.abs().sum() > 0 and head.log_scale.weight.grad.abs().sum() > 0
    pix = PixelLogVarHead(8)
    out = pix(torch.randn(2, 8, 5, 5))
    binary_logit_noise_loss(*out, (torch.rand(2, 1, 5, 5) > 0.5).float(), T=5).backward()
    assert pix.value.weight.grad.abs().sum() > 0 and pix.log_scale.weight.grad.abs().sum() > 0


def test_logit_noise_probs_limits():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 3, generator=g)
    assert torch.allclose(logit_noise_probs(logits, torch.full_like(logits, -40.0), T=4), logits.softmax(1),
                          atol=1e-6)
    p = logit_noise_probs(logits, torch.full_like(logits, 2.0), T=50, generator=g)
    assert torch.allclose(p.sum(1), torch.ones(7), atol=1e-6)
    # Noise pulls the probabilities towards uniform (in expectation): the entropy of the average rises.
    ent = lambda q: -(q * q.log()).sum(1)
    assert torch.all(ent(logit_noise_probs(logits, torch.full_like(logits, 4.0), T=4000, generator=g))
                     > ent(logits.softmax(1)))
    z = torch.tensor([[[[3.0]]]])
    assert logit_noise_probs(z, torch.tensor([[[[-40.0]]]]), T=3, binary=True).item() == pytest.approx(
        torch.sigmoid(z).item(), abs=1e-6)
