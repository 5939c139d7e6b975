"""helpers.metrics.attribution: sanity checks and localisation scores against definitions (chapter 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from helpers.metrics.attribution import (cascading_randomization, deletion_insertion, ig_completeness,
                                         learnable_layers, mass_in_mask, pointing_game, spearman_per_image,
                                         ssim_per_image)
from helpers.models.cnn import SmallCNN


def test_rank_correlation_and_ssim_of_identical_and_flipped_maps():
    a = torch.randn(3, 12, 12)
    np.testing.assert_allclose(spearman_per_image(a, a, absolute=False), 1.0)
    np.testing.assert_allclose(spearman_per_image(a, -a, absolute=False), -1.0)
    np.testing.assert_allclose(spearman_per_image(a, -a, absolute=True), 1.0)
    np.testing.assert_allclose(ssim_per_image(a, 5 * a), 1.0, atol=1e-9)
    assert (ssim_per_image(a, torch.randn(3, 12, 12)) < 0.5).all()


def test_ig_completeness_error_shrinks_as_steps_grow():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    x = torch.randn(4, 1, 4, 4, dtype=torch.double)
    # the right Riemann sum of the paper (eq. 3): error O(1/n)
    errs = [ig_completeness(net, x, 1, n_steps=n, method="riemann_right")["relative_error"].mean()
            for n in (4, 16, 64)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-2
    res = ig_completeness(net, x, 1, n_steps=50)
    np.testing.assert_allclose(res["sum_attr"] - res["diff"], res["delta"], atol=1e-10)


def test_randomising_all_layers_drops_the_rank_correlation_of_gradient_maps():
    torch.manual_seed(0)
    model = SmallCNN(width=8, depth=3).eval()
    x = torch.rand(6, 1, 24, 24)
    before = [p.clone() for p in model.parameters()]
    res = cascading_randomization(model, x, 1, "gradient", seed=1)
    assert res["layers"][0] == "original" and len(res["layers"]) == 1 + len(learnable_layers(model))
    np.testing.assert_allclose(res["spearman_abs"][0], 1.0)
    assert abs(np.nanmean(res["spearman_signed"][-1])) < 0.2
    assert np.nanmean(res["spearman_abs"][-1]) < 0.5
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "the model must not change"


def _region_model(region: torch.Tensor) -> nn.Module:
    class RegionLogit(nn.Module):
        def forward(self, x):
            s = (x[:, 0] * region).sum((1, 2)) - 2.0
            return torch.stack([-s, s], 1)
    return RegionLogit()


def test_deletion_is_steepest_when_the_true_evidence_is_removed_first():
    region = torch.zeros(8, 8)
    region[2:4, 2:4] = 1.0
    model = _region_model(region)
    x = 0.1 * torch.rand(2, 1, 8, 8) + region  # blurring spreads the region out: insertion has work to do
    good = region.expand(2, 8, 8) + 0.01 * torch.rand(2, 8, 8)
    bad = -good
    r_good = deletion_insertion(model, x, 1, good, pixels_per_step=4)
    r_bad = deletion_insertion(model, x, 1, bad, pixels_per_step=4)
    assert r_good["fraction"][0] == 0 and r_good["fraction"][-1] == 1
    p_x = torch.softmax(model(x), 1)[:, 1].numpy()
    np.testing.assert_allclose(r_good["deletion"][:, 0], p_x, rtol=1e-6)
    np.testing.assert_allclose(r_good["deletion"][:, -1], r_bad["deletion"][:, -1])  # all pixels gone in both
    assert (r_good["deletion_auc"] < r_bad["deletion_auc"]).all()
    assert (r_good["insertion_auc"] > r_bad["insertion_auc"]).all()
    np.testing.assert_allclose(r_good["deletion_auc"],
                               [np.trapezoid(c, r_good["fraction"]) for c in r_good["deletion"]])
    r_blur = deletion_insertion(model, x, 1, good, pixels_per_step=4, deletion_fill="blur")
    np.testing.assert_allclose(r_blur["deletion"][:, -1], r_blur["insertion"][:, 0])  # both: the blurred image
    np.testing.assert_allclose(r_blur["insertion"][:, -1], r_blur["deletion"][:, 0])  # both: the image itself
    short = deletion_insertion(model, x, 1, good, pixels_per_step=1, max_fraction=0.25)
    assert short["fraction"][-1] == 0.25 and len(short["fraction"]) == 17   # 16 pixels, one at a time
    np.testing.assert_allclose(short["deletion_auc"],
                               [np.trapezoid(c, short["fraction"]) / 0.25 for c in short["deletion"]])
    assert 0 <= short["deletion_auc"].min() and short["insertion_auc"].max() <= 1
    np.testing.assert_allclose(short["deletion"][:, 4], r_good["deletion"][:, 1])   # the same 4 pixels gone


def test_mass_in_mask_and_pointing_game():
    mask = torch.zeros(1, 1, 10, 10, dtype=torch.bool)
    mask[..., 3:6, 3:6] = True
    inside = mask[:, 0].float()
    uniform = torch.ones(1, 10, 10)
    np.testing.assert_allclose(mass_in_mask(inside, mask), 1.0)
    np.testing.assert_allclose(mass_in_mask(uniform, mask), 9 / 100)
    np.testing.assert_allclose(mass_in_mask(-inside + 0.0 * uniform, mask), np.nan)  # no positive mass
    peak_out = torch.zeros(1, 10, 10)
    peak_out[0, 7, 4] = 1.0
    assert pointing_game(inside, mask)[0]
    assert not pointing_game(peak_out, mask)[0]
    assert pointing_game(peak_out, mask, tolerance=2)[0]
    assert list(pointing_game(torch.stack([inside[0], peak_out[0]]), mask[0, 0])) == [True, False]
    plateau = torch.zeros(1, 10, 10)
    plateau[0, 1:8, 1:8] = 1.0      # an occlusion-like block over the region: its corner (1, 1) is outside
    assert pointing_game(plateau, mask)[0], "a plateau points with its centre, not its first pixel"


def test_gradcam_layer_is_followed_into_the_randomised_copy():
    torch.manual_seed(0)
    model = SmallCNN(width=4, depth=2).eval()
    res = cascading_randomization(model, torch.rand(3, 1, 16, 16), 1, "gradcam", layer=model.cam_layer)
    np.testing.assert_allclose(res["ssim"][0], 1.0)
    assert res["maps"].shape == (1 + len(learnable_layers(model)), 3, 16, 16)
