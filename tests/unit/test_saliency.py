"""helpers.saliency: each method checked against a closed form or a library identity (chapter 3)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.errors import BookError
from helpers.metrics.attribution import ig_completeness
from helpers.models.cnn import SmallCNN
from helpers.saliency import METHODS, attribute, functional_relu_count, make_baseline, region_score


class Linear(nn.Module):
    """F(x) = W · vec(x) + c, two outputs."""

    def __init__(self, shape):
        super().__init__()
        self.fc = nn.Linear(int(torch.tensor(shape).prod()), 2)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_ig_on_a_linear_model_is_exactly_input_minus_baseline_times_weight():
    torch.manual_seed(0)
    model = Linear((3, 5, 5)).double()
    x, b = torch.randn(4, 3, 5, 5, dtype=torch.double), torch.randn(1, 3, 5, 5, dtype=torch.double)
    ig = attribute(model, x, 1, "integrated_gradients", baseline=b, n_steps=7, internal_batch_size=8)
    expected = (x - b) * model.fc.weight[1].reshape(1, 3, 5, 5)
    torch.testing.assert_close(ig, expected.detach(), rtol=1e-10, atol=1e-12)


def test_occlusion_with_one_pixel_windows_on_a_linear_model_is_input_times_weight():
    torch.manual_seed(0)
    model = Linear((1, 6, 6)).double()
    x = torch.randn(2, 1, 6, 6, dtype=torch.double)
    occ = attribute(model, x, 0, "occlusion", sliding_window_shapes=(1, 1, 1), strides=(1, 1, 1))
    torch.testing.assert_close(occ, (x * model.fc.weight[0].reshape(1, 1, 6, 6)).detach())


def test_guided_backprop_zeroes_negative_gradients_at_every_relu():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(inplace=True), nn.Linear(8, 2)).double()
    x = torch.randn(5, 6, dtype=torch.double)
    # guided backprop by hand: the gradient reaching the ReLU is clipped at zero, then masked by the forward pass
    h = net[0](x)
    g_relu_out = net[2].weight[1].expand(5, 8)
    g_x = (g_relu_out.clamp_min(0) * (h > 0)) @ net[0].weight
    wrapped = nn.Sequential(nn.Flatten(), net)
    guided = attribute(wrapped, x.reshape(5, 1, 2, 3), 1, "guided_backprop").reshape(5, 6)
    torch.testing.assert_close(guided, g_x.detach())
    plain = attribute(wrapped, x.reshape(5, 1, 2, 3), 1, "gradient").reshape(5, 6)
    assert not torch.allclose(guided, plain), "guided backprop must differ from the plain gradient here"
    assert net[1].inplace is True, "the caller's in-place ReLU flag must be restored"


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_model_mode_is_left_as_given(mode):
    model = SmallCNN(width=4, depth=2)
    getattr(model, mode)()
    before = {n: m.training for n, m in model.named_modules()}
    x = torch.rand(2, 1, 16, 16)
    for method in METHODS:
        attribute(model, x, 0, method, n_steps=4)
    assert {n: m.training for n, m in model.named_modules()} == before


def test_functional_relu_triggers_a_warning():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 3, 3, padding=1)
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(F.relu(self.conv(x)).mean((2, 3)))

    x = torch.rand(2, 1, 8, 8)
    assert functional_relu_count(Functional(), x) == 1
    assert functional_relu_count(SmallCNN(width=4, depth=2), x) == 0
    with pytest.warns(UserWarning, match="ReLU"):
        attribute(Functional(), x, 0, "guided_backprop")


@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_for_grey_and_rgb(channels):
    model = SmallCNN(in_channels=channels, width=4, depth=2).eval()
    x = torch.rand(3, channels, 16, 16)
    for method in METHODS:
        out = attribute(model, x, torch.tensor([0, 1, 0]), method, n_steps=4)
        expected = (3, 1, 16, 16) if method == "gradcam" else tuple(x.shape)
        assert tuple(out.shape) == expected, method
        assert torch.isfinite(out).all() and not out.requires_grad
    assert tuple(attribute(model, x[0], 1, "gradient").shape) == (channels, 16, 16)
    assert (attribute(model, x, 1, "gradcam", layer=model.cam_layer) >= 0).all()


def test_smoothgrad_without_noise_is_the_plain_map():
    model = SmallCNN(width=4, depth=2).eval()
    x = torch.rand(2, 1, 16, 16)
    plain = attribute(model, x, 1, "gradient")
    torch.testing.assert_close(attribute(model, x, 1, "gradient", smooth=True, nt_samples=3, stdevs=0.0), plain)
    noisy = attribute(model, x, 1, "gradient", smooth=True, nt_samples=3, stdevs=0.2)
    assert not torch.allclose(noisy, plain)


def test_region_score_is_the_mean_logit_in_the_region_and_ig_completes_it():
    torch.manual_seed(0)
    seg = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 2, 1)).double()
    x = torch.rand(3, 1, 10, 10, dtype=torch.double)
    mask = torch.zeros(10, 10, dtype=torch.bool)
    mask[2:5, 3:7] = True
    score = region_score(seg, mask, channel=1)
    torch.testing.assert_close(score(x)[:, 0], seg(x)[:, 1][:, mask].mean(1))
    tupled = region_score(_Tuple(seg), mask, channel=1)
    torch.testing.assert_close(tupled(x), score(x))
    res = ig_completeness(score, x, 0, n_steps=64)
    assert res["relative_error"].max() < 1e-3
    per_image = mask[None, None].repeat(3, 1, 1, 1)
    per_image[1, 0] = False
    per_image[1, 0, 0:2, 0:2] = True
    ig = attribute(region_score(seg, per_image, channel=1), x, 0, "integrated_gradients", n_steps=64)
    ig_1 = attribute(region_score(seg, per_image[1, 0], channel=1), x[1:2], 0, "integrated_gradients", n_steps=64)
    torch.testing.assert_close(ig[1:2], ig_1)
    with pytest.raises(BookError, match="empty"):
        region_score(seg, torch.zeros(10, 10, dtype=torch.bool))


class _Tuple(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x), None


def test_baselines():
    x = torch.rand(2, 1, 32, 32)
    assert (make_baseline(x, "black") == 0).all()
    blur = make_baseline(x, "blur", sigma=3)
    assert blur.shape == x.shape and blur.std() < x.std()
    mean = make_baseline(x, "mean", mean_image=x.mean(0, keepdim=True))
    torch.testing.assert_close(mean[0], x.mean(0))
    with pytest.raises(BookError):
        make_baseline(x, "mean")
    with pytest.raises(BookError, match="method"):
        attribute(SmallCNN(width=4, depth=2), x, 0, "lime")


# ------------------------------------------------------------------ integrated gradients under MC dropout
def _smooth_dropout_net(size: int) -> nn.Module:
    """A smooth network (softplus) with both kinds of dropout: IG's integral converges fast, so any
    completeness error left is the dropout masks' doing."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Softplus(), nn.Dropout2d(0.2), nn.AvgPool2d(4),
                        nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * (size // 4) ** 2, 2)).double().eval()
    with torch.no_grad():
        net[-1].weight.mul_(20)                    # logit differences of order 1, well above the floor
    return net


def _own_network_diff(model, seed, x, baseline):
    """F(x) − F(x') of the network that sample ``seed`` stands for."""
    from helpers.uncertainty import frozen_dropout

    with frozen_dropout(model, seed), torch.no_grad():
        return model(x)[:, 1] - model(baseline)[:, 1]


def test_mc_integrated_gradients_are_complete_for_each_sample_network():
    from helpers.saliency import COMPLETENESS_FLOOR, COMPLETENESS_TOLERANCE, mc_attributions

    net = _smooth_dropout_net(16)
    x = torch.rand(3, 1, 16, 16, dtype=torch.double)
    base = make_baseline(x, "blur", sigma=3)
    res = mc_attributions(net, x, 1, "integrated_gradients", T=6, baseline=base, steps=(32, 64))
    assert res.maps.shape == (6, 3, 1, 16, 16) and res.logits.shape == (6, 3, 2)
    totals = res.maps.flatten(2).sum(2)            # [T, N]
    for t, seed in enumerate(res.seeds):
        diff = _own_network_diff(net, seed, x, base)
        err = (totals[t] - diff).abs() / diff.abs().clamp_min(COMPLETENESS_FLOOR)
        assert err.max() < COMPLETENESS_TOLERANCE, f"sample {t}: completeness error {err.max():.2%}"
    assert res.errors.max() < COMPLETENESS_TOLERANCE
    assert totals.std(0).min() > 0.05, "different networks must give different totals"


def test_ig_inside_plain_mc_dropout_mixes_networks_and_shrinks_the_spread():
    """The bug this chapter once had: T copies of an image inside mc_dropout, each IG path point with its
    own mask. No network's F(x) − F(x') matches a sample's total, and the spread of the totals shrinks."""
    from captum.attr import IntegratedGradients

    from helpers.saliency import COMPLETENESS_FLOOR, COMPLETENESS_TOLERANCE, mc_attributions
    from helpers.uncertainty import mc_dropout

    net = _smooth_dropout_net(16)
    x = torch.rand(1, 1, 16, 16, dtype=torch.double)
    base = make_baseline(x, "blur", sigma=3)
    T = 8
    with mc_dropout(net):
        old, delta = IntegratedGradients(net).attribute(x.expand(T, -1, -1, -1), baselines=base.expand(T, -1, -1, -1),
                                                        target=1, n_steps=64, return_convergence_delta=True)
    old_totals = old.flatten(1).sum(1)
    old_err = delta.abs() / (old_totals - delta).abs().clamp_min(COMPLETENESS_FLOOR)
    assert (old_err > COMPLETENESS_TOLERANCE).float().mean() >= 0.75, "the old way should break completeness"
    new_totals = mc_attributions(net, x, 1, "integrated_gradients", T=T, baseline=base,
                                 steps=(32, 64)).maps.flatten(1).sum(1)
    assert old_totals.std() < 0.5 * new_totals.std(), "mixing masks along the path averages the spread away"


def test_mc_attributions_of_the_chapter_cnn_meet_the_rule_per_sample():
    from helpers.data.lesions import make_lesion_images
    from helpers.saliency import COMPLETENESS_FLOOR, COMPLETENESS_TOLERANCE, mc_attributions

    torch.manual_seed(0)
    net = SmallCNN(width=4).double().eval()
    with torch.no_grad():
        net.head[-1].weight.mul_(30)
    d = make_lesion_images(8, size=32, seed=0)
    x = d.x[d.y == 1][:2].double()
    base = make_baseline(x, "blur")
    res = mc_attributions(net, x, 1, "integrated_gradients", T=3, baseline=base)
    for t, seed in enumerate(res.seeds):
        diff = _own_network_diff(net, seed, x, base)
        err = (res.maps[t].flatten(1).sum(1) - diff).abs() / diff.abs().clamp_min(COMPLETENESS_FLOOR)
        assert err.max() < COMPLETENESS_TOLERANCE
    grads = mc_attributions(net, x, 1, "gradient", T=2)
    assert grads.maps.shape == (2, 2, 1, 32, 32) and grads.errors is None


def test_ig_with_completeness_takes_the_fewest_steps_that_meet_the_tolerance():
    from helpers.saliency import ig_with_completeness

    net = _smooth_dropout_net(16)
    net = nn.Sequential(*[m for m in net if not isinstance(m, (nn.Dropout, nn.Dropout2d))])
    x = torch.rand(2, 1, 16, 16, dtype=torch.double)
    lin = Linear((1, 16, 16)).double()
    exact = ig_with_completeness(lin, x, 1, "black", steps=(64, 8, 32))
    assert exact.n_steps.tolist() == [8, 8] and exact.met and exact.error < 1e-6   # linear: any count
    torch.testing.assert_close(exact.attributions, (x * lin.fc.weight[1].reshape(1, 1, 16, 16)).detach())
    one = ig_with_completeness(net, x, 1, "black", steps=(1,), strict=False, floor=1e-12)
    assert one.errors[0] > 1e-3 > one.errors[1], "this pair: image 0 needs more than one step, image 1 not"
    res = ig_with_completeness(net, x, 1, "black", tol=1e-3, steps=(1, 64, 2), floor=1e-12)
    assert res.n_steps.tolist() == [2, 1], "each image gets the fewest steps that meet the tolerance"
    assert res.error < 1e-3 and res.errors.shape == (2,)
    torch.testing.assert_close(res.attributions[1], one.attributions[1])
    with pytest.raises(BookError, match="tolerance"):
        ig_with_completeness(net, x, 1, "black", tol=1e-3, steps=(1,), floor=1e-12)
    assert not ig_with_completeness(net, x, 1, "black", tol=1e-3, steps=(1,), floor=1e-12,
                                    strict=False).met


# ------------------------------------------------------------------ figures (readable at the page width)
def test_attribution_figures_fit_the_page_and_clip_signed_maps_symmetrically():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.plots.saliency import map_limits, plot_attributions, plot_deletion_insertion

    values = torch.linspace(-1, 3, 101)
    lo, hi = map_limits(values, signed=True)
    assert lo == -hi and abs(hi - float(values.abs().quantile(0.99))) < 1e-6
    assert map_limits(values.abs(), signed=False)[0] == 0
    sparse = torch.zeros(1000, dtype=torch.double)
    sparse[3] = 0.002                               # 99th percentile 0: fall back to the maximum
    assert map_limits(sparse, signed=False) == (0.0, 0.002)
    x = torch.rand(3, 1, 16, 16)
    lesion = torch.zeros(3, 1, 16, 16, dtype=torch.bool)
    lesion[:, :, 5:9, 5:9] = True
    maps = {"integrated_gradients": torch.randn(3, 16, 16), "gradient": torch.rand(3, 16, 16)}
    fig = plot_attributions(x, maps, signed=["integrated_gradients"], masks=lesion)
    assert fig.get_figwidth() <= 7.5 and fig.axes[0].get_gridspec().ncols == 3
    im = fig.axes[3].images[0]                      # first IG panel: diverging, symmetric limits
    assert im.get_cmap().name == "RdBu_r" and im.get_clim()[0] == -im.get_clim()[1]
    plt.close(fig)
    with pytest.raises(BookError, match="1 to 3 images"):
        plot_attributions(torch.rand(4, 1, 16, 16), {"gradient": torch.rand(4, 16, 16)})
    curve = {"fraction": np.linspace(0, 0.03, 5), "deletion": np.ones((2, 5)), "insertion": np.ones((2, 5)),
             "deletion_auc": np.ones(2), "insertion_auc": np.ones(2)}
    fig = plot_deletion_insertion({"gradient": curve, "random map": curve})
    assert fig.get_figwidth() <= 7.5
    plt.close(fig)
