"""MC dropout: the switch, the vectorised sampler and the summaries (helpers.uncertainty, helpers.models.mlp)."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import ks_2samp
from torch import nn

from helpers.errors import BookError
from helpers.models.mlp import BatchedDropoutMLP, DropoutMLP, fit_batched, mc_summary_batched
from helpers.uncertainty import (classification_summary, gaussian_tau, mc_dropout, mc_predict, mc_samples,
                                 mc_samples_loop, regression_summary, weight_decay_for)


def test_p_zero_gives_zero_variance():
    torch.manual_seed(0)
    model = DropoutMLP(3, hidden=16, p=0.0)
    x = torch.randn(10, 3)
    out = mc_predict(model, x, T=20, task="regression")
    assert torch.all(out["epistemic"] == 0)
    assert torch.allclose(out["mean"], model.eval()(x))


def test_dropout_on_gives_variance_and_modes_are_restored():
    torch.manual_seed(0)
    model = DropoutMLP(3, hidden=16, p=0.3).eval()
    s = mc_samples(model, torch.randn(5, 3), T=30)
    assert s.shape == (30, 5, 1) and s.var(0).min() > 0
    assert not any(m.training for m in model.modules())


class _BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.bn, self.drop, self.out = nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2)

    def forward(self, x):
        return self.out(self.drop(torch.relu(self.bn(self.lin(x)))))


def test_batchnorm_untouched_by_mc_dropout():
    torch.manual_seed(0)
    model = _BNNet()
    model.train()
    model(torch.randn(32, 4) * 3 + 1)  # non-trivial running statistics
    model.train()
    before = {k: v.clone() for k, v in model.bn.state_dict().items()}
    with mc_dropout(model):
        assert not model.bn.training and model.drop.training
        mc_samples(model, torch.randn(16, 4) * 5, T=10)
    for k, v in model.bn.state_dict().items():
        assert torch.equal(v, before[k]), f"BatchNorm {k} changed"
    assert model.training and model.bn.training  # the caller's modes come back


def test_model_without_dropout_is_an_error():
    with pytest.raises(BookError, match="no nn.Dropout"):
        mc_samples(nn.Linear(3, 1), torch.randn(2, 3), T=2)


@pytest.mark.parametrize("chunk_size", [4096, 7, 3])  # one pass, several passes, rows larger than a chunk
def test_vectorised_and_loop_agree_in_distribution(chunk_size):
    torch.manual_seed(0)
    model = DropoutMLP(2, hidden=32, p=0.2).eval()
    x = torch.randn(4, 2)
    fast = mc_samples(model, x, T=1500, chunk_size=chunk_size)
    slow = mc_samples_loop(model, x, T=1500)
    assert fast.shape == slow.shape == (1500, 4, 1)
    for i in range(4):  # same distribution per input: two-sample Kolmogorov-Smirnov test
        assert ks_2samp(fast[:, i, 0].numpy(), slow[:, i, 0].numpy()).pvalue > 1e-3
    # samples of different rows are not copies of each other (each copy of x gets its own mask)
    assert not torch.equal(fast[:, 0], fast[:, 1])


def test_classification_summary_decomposes_entropy():
    torch.manual_seed(0)
    probs = torch.softmax(torch.randn(50, 6, 3), dim=2)
    s = classification_summary(probs)
    assert torch.allclose(s["predictive_entropy"], s["expected_entropy"] + s["mutual_information"], atol=1e-6)
    assert (s["mutual_information"] >= 0).all() and (s["predictive_entropy"] <= math.log(3) + 1e-6).all()
    same = classification_summary(probs[:1].expand(20, -1, -1))
    assert torch.allclose(same["mutual_information"], torch.zeros(6), atol=1e-6)  # no disagreement, no MI


def test_regression_summary_adds_noise_variance():
    means = torch.randn(100, 7)
    s = regression_summary(means, 0.25)
    assert torch.allclose(s["total"], means.var(0, unbiased=False) + 0.25)


def test_tau_and_weight_decay_are_inverse():
    lam = weight_decay_for(1e-2, 0.05, 277, 0.54)
    assert gaussian_tau(1e-2, 0.05, 277, lam) == pytest.approx(0.54)


def test_batched_member_equals_standalone_network():
    torch.manual_seed(0)
    batched = BatchedDropoutMLP(3, 5, hidden=8, p=[0.1, 0.2, 0.3]).eval()
    x = torch.randn(3, 6, 5)
    out = batched(x)
    for k in range(3):
        assert torch.allclose(batched.member(k).eval()(x[k]), out[k], atol=1e-6)
        assert batched.member(k).net[0].p == pytest.approx([0.1, 0.2, 0.3][k])


def test_batched_members_do_not_interact():
    torch.manual_seed(0)
    model = BatchedDropoutMLP(2, 3, hidden=8, p=0.0)
    x, y = torch.randn(2, 16, 3), torch.randn(2, 16, 1)

    def grad_of_member0(x1):
        model.zero_grad()
        xx = torch.stack([x[0], x1])
        loss = ((model(xx) - y) ** 2).mean((1, 2)) + 1e-3 * model.weight_l2()
        loss.sum().backward()
        return model.w1.grad[0].clone()

    assert torch.allclose(grad_of_member0(x[1]), grad_of_member0(x[1] * 100 + 7))


def test_fit_batched_learns_a_linear_map():
    torch.manual_seed(0)
    x = torch.randn(2, 256, 3)
    y = (x @ torch.tensor([1.0, -2.0, 0.5])).unsqueeze(-1)
    model = BatchedDropoutMLP(2, 3, hidden=32, p=0.01)
    loss = fit_batched(model, x, y, torch.full((2,), 1e-6), epochs=60, batch_size=64)
    assert loss.shape == (2,) and (loss < 0.05 * y.var()).all()


def test_streaming_log_likelihood_matches_direct_computation():
    torch.manual_seed(0)
    model = BatchedDropoutMLP(2, 3, hidden=8, p=0.0).eval()
    x, y = torch.randn(2, 5, 3), torch.randn(2, 5, dtype=torch.float64)
    tau = torch.tensor([0.5, 2.0])
    s = mc_summary_batched(model, x, T=37, y_mean=1.0, y_std=2.0, y=y, tau=tau, chunk_rows=20)
    pred = (model(x)[..., 0] * 2 + 1).double()  # p = 0: every sample is the deterministic prediction
    direct = -0.5 * tau[:, None] * (y - pred) ** 2 - 0.5 * math.log(2 * math.pi) + 0.5 * torch.log(tau[:, None])
    assert torch.allclose(s["ll"], direct.double(), atol=1e-5)
    assert torch.allclose(s["mean"], pred, atol=1e-5) and torch.all(s["var"] < 1e-8)


def test_toy_problems_have_the_advertised_structure():
    from helpers.data.toy import gap_regression, grid_2d, true_function, two_moons

    x, y = gap_regression(n=100, noise=0.0, gap=(-0.4, 0.4), seed=1)
    assert x.shape == y.shape == (100, 1) and not ((x > -0.4) & (x < 0.4)).any()
    assert torch.allclose(y[:, 0], torch.tensor(true_function(x[:, 0].numpy()), dtype=torch.float32), atol=1e-6)
    xm, ym = two_moons(n=200, seed=0)
    assert xm.shape == (200, 2) and set(ym.tolist()) == {0, 1}
    assert torch.allclose(xm.mean(0), torch.zeros(2), atol=1e-5)
    pts, xx, _ = grid_2d(lim=2.0, steps=7)
    assert pts.shape == (49, 2) and xx.shape == (7, 7) and pts.abs().max() == 2.0


def test_mc_samples_with_tuple_outputs_in_both_regimes():
    """A head returning (mean, log_var) works through `transform`, for small and for large inputs."""
    import torch
    from torch import nn

    from helpers.uncertainty import mc_samples

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.5))
            self.mean, self.log_var = nn.Linear(8, 1), nn.Linear(8, 1)

        def forward(self, x):
            h = self.body(x)
            return self.mean(h), self.log_var(h)

    model, x = TwoHeads(), torch.randn(10, 3)
    for chunk in (4, 1000):  # rows >= chunk_size, and rows < chunk_size
        s = mc_samples(model, x, T=5, chunk_size=chunk, transform=lambda out: out[0])
        assert s.shape == (5, 10, 1) and s.var(0).sum() > 0


def test_hand_written_gradients_match_autograd():
    from helpers.models.mlp import batched_mse_grads

    torch.manual_seed(0)
    model = BatchedDropoutMLP(3, 4, hidden=6, p=[0.0, 0.2, 0.5], out_features=2)
    x, y, reg = torch.randn(3, 7, 4), torch.randn(3, 7, 2), torch.tensor([1e-3, 0.0, 0.1])
    keep = (torch.rand(3, 7, 4) > 0.3, torch.rand(3, 7, 6) > 0.3)
    with torch.no_grad():
        mse = batched_mse_grads(model, x, y, reg, masks=keep)
    by_hand = [p.grad.clone() for p in (model.w1, model.b1, model.w2, model.b2)]

    model.zero_grad()
    _, scale = model.keep_threshold()
    h = torch.relu(torch.baddbmm(model.b1, x * keep[0] * scale, model.w1)) * keep[1] * scale
    ref_mse = ((torch.baddbmm(model.b2, h, model.w2) - y) ** 2).mean((1, 2))
    (ref_mse + reg * model.weight_l2()).sum().backward()
    assert torch.allclose(mse, ref_mse.detach(), atol=1e-6)
    for got, p in zip(by_hand, (model.w1, model.b1, model.w2, model.b2)):
        assert torch.allclose(got, p.grad, atol=1e-6)


@pytest.mark.parametrize("p", [0.0, 0.005, 0.05, 0.5])
def test_dropout_masks_keep_units_with_probability_one_minus_p(p):
    from helpers.models.mlp import dropout_mask

    model = BatchedDropoutMLP(1, 2, hidden=2, p=p)
    threshold, scale = model.keep_threshold()
    keep = dropout_mask((1, 1000, 1000), threshold, torch.Generator().manual_seed(0))
    rate = keep.double().mean().item()
    assert abs(rate - (1 - p)) < 5 * math.sqrt(p * (1 - p) / 1e6) + 1 / 65536
    assert scale.item() == pytest.approx(1 / (1 - p), rel=1e-4)
    if p == 0:
        assert keep.all()
    # every 16-bit lane of the 64-bit words is uniform, including the sign lane
    lanes = keep.reshape(-1)[: 4 * 250_000].view(-1, 4).double().mean(0)
    assert (lanes - (1 - p)).abs().max() < 6 * math.sqrt(p * (1 - p) / 250_000) + 1 / 65536


def test_dropout16_drops_at_rate_p_and_is_the_identity_in_eval_mode():
    from helpers.models.mlp import Dropout16

    layer = Dropout16(0.2)
    x = torch.ones(1000, 1000)
    torch.manual_seed(0)
    out = layer.train()(x)
    assert abs((out == 0).double().mean().item() - 0.2) < 5 * math.sqrt(0.2 * 0.8 / 1e6) + 1 / 65536
    assert abs(out.mean().item() - 1.0) < 0.005          # 1/P(keep) scaling keeps the mean
    assert torch.equal(layer.eval()(x), x)


def test_rows_per_pass_bounds_input_values_not_rows():
    from helpers.errors import BookError
    from helpers.uncertainty import INPUT_VALUES_PER_PASS, rows_per_pass

    assert rows_per_pass(torch.zeros(10, 6)) == INPUT_VALUES_PER_PASS // 6
    assert rows_per_pass(torch.zeros(3, 1, 64, 64)) == 256
    assert rows_per_pass(torch.zeros(1, 3, 2048, 2048)) == 1     # one huge image still gets one pass
    assert rows_per_pass(torch.zeros(10, 6), chunk_size=7) == 7
    with pytest.raises(BookError, match="chunk_size=0"):
        rows_per_pass(torch.zeros(10, 6), chunk_size=0)


# ----------------------------------------------------------------------------- frozen_dropout (chapter 3)
def _drop_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.5), nn.Flatten(),
                         nn.Dropout(0.5), nn.Linear(16 * 8 * 8, 3)).double()


def test_frozen_dropout_is_one_network_for_every_row_and_every_batch():
    from helpers.uncertainty import frozen_dropout

    net = _drop_net().eval()
    x = torch.rand(5, 1, 8, 8, dtype=torch.double)
    with frozen_dropout(net, 3):
        a, b = net(x), net(x)
        rows = net(x[:1].repeat(4, 1, 1, 1))
        first = net(x[:1])                         # a later batch of another size: the same masks
        with torch.no_grad():
            n_drop = (net[2](torch.ones(4, 16, 8, 8, dtype=torch.double)) == 0).double()
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(rows, x[:1].new_ones(4, 1) * first)
    torch.testing.assert_close(first, a[:1])
    # Dropout2d: one value per channel (the mask ignores batch and position)
    assert (n_drop == n_drop[:1, :, :1, :1]).all() and 0 < n_drop.mean() < 1
    with frozen_dropout(net, 4):
        other = net(x)
    with frozen_dropout(net, 3):
        again = net(x)
    assert not torch.allclose(other, a), "different seeds must give different masks"
    torch.testing.assert_close(again, a, rtol=0, atol=0)
    with mc_dropout(net):
        mixed = net(x[:1].repeat(4, 1, 1, 1))
    assert not torch.allclose(mixed[0], mixed[1]), "mc_dropout draws a mask per row (the contrast)"


def test_frozen_dropout_scales_kept_units_and_restores_modes_and_hooks():
    from helpers.uncertainty import frozen_dropout

    net = _drop_net()
    net.train()
    net[0].eval()                                  # a mixed set of modes must come back as it was
    saved = [m.training for m in net.modules()]
    with frozen_dropout(net, torch.Generator().manual_seed(1)):
        assert not any(m.training for m in net.modules())
        y = net[4](torch.ones(2, 1000, dtype=torch.double))
    assert set(y.unique().tolist()) <= {0.0, 2.0} and abs(float((y == 0).double().mean()) - 0.5) < 0.1
    assert [m.training for m in net.modules()] == saved
    assert all(not m._forward_hooks for m in net.modules()), "hooks must be removed on exit"
    net.eval()
    x = torch.rand(2, 1, 8, 8, dtype=torch.double)
    torch.testing.assert_close(net(x), net(x))    # plain eval mode again: deterministic, no masks


def test_mask_seeds_are_reproducible_and_distinct():
    from helpers.uncertainty import mask_seeds

    assert mask_seeds(0, 5) == mask_seeds(0, 5)
    assert len(set(mask_seeds(0, 50))) == 50
    assert not set(mask_seeds(0, 20)) & set(mask_seeds(1, 20))


def test_frozen_dropout_needs_dropout_modules():
    from helpers.uncertainty import frozen_dropout

    with pytest.raises(BookError, match="no nn.Dropout"):
        with frozen_dropout(nn.Linear(2, 2), 0):
            pass
