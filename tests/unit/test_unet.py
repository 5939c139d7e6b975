"""The chapter 4 U-Net: shapes, dropout placement, MC prediction, checkpoints, and that it can learn."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.errors import BookError, DataError
from helpers.models.unet import (UNet, dropout_groups, load_checkpoint, pad_to_multiple, predict, save_checkpoint,
                                 segmentation_loss, train_unet)


def small(**kw) -> UNet:
    torch.manual_seed(0)
    return UNet(base=4, levels=3, **kw)


def test_shapes_and_log_var_output():
    x = torch.randn(2, 1, 32, 40)
    logits, log_var = small()(x)
    assert logits.shape == log_var.shape == (2, 1, 32, 40)
    assert small(log_var=False)(x).shape == (2, 1, 32, 40)
    xp, (h, w) = pad_to_multiple(torch.randn(1, 1, 30, 37), 16)
    assert xp.shape[-2:] == (32, 48) and (h, w) == (30, 37)


def test_nine_blocks_by_default():
    model = UNet()
    blocks = [m for m in model.modules() if isinstance(m, nn.Sequential) and isinstance(m[0], nn.Conv2d)]
    assert len(blocks) == 9


@pytest.mark.parametrize("placement, deep, shallow", [("decoder", 1, 1), ("bottleneck", 3, 0), ("all", 3, 2),
                                                       ("none", 0, 0)])
def test_dropout_placement(placement, deep, shallow):
    groups = dropout_groups(small(dropout=placement))
    assert (len(groups["deep"]), len(groups["shallow"])) == (deep, shallow)
    with pytest.raises(BookError):
        UNet(dropout="everywhere")


def test_mc_prediction_spreads_only_with_dropout_switched_on():
    model = small(p=0.3)
    x = torch.rand(1, 1, 24, 28)
    out = predict(model, x, T=8)
    assert out["probs"].shape == out["mutual_information"].shape == out["aleatoric"].shape == (1, 1, 24, 28)
    assert not torch.allclose(out["samples"][0], out["samples"][1])  # MC samples differ
    assert out["mutual_information"].max() > 0
    assert torch.allclose(predict(model, x, T=2)["single"], out["single"])  # the single pass is deterministic
    none = predict(model, x, T=4, modules=[])                         # every dropout switched off
    assert none["mutual_information"].max() < 1e-6
    assert torch.allclose(none["probs"], out["single"], atol=1e-6)
    assert (out["entropy"] >= out["mutual_information"] - 1e-6).all()  # total >= epistemic
    assert all(m.p == 0.3 for m in dropout_groups(model)["shallow"])  # rates restored


def test_checkpoint_round_trip(tmp_path):
    model = small(dropout="all", p=0.2).eval()
    save_checkpoint(model, tmp_path / "m.pt", scale=0.5)
    loaded, meta = load_checkpoint(tmp_path / "m.pt")
    x = torch.rand(1, 1, 16, 16)
    assert meta == {"scale": 0.5} and loaded.placement == "all" and loaded.p == 0.2
    assert torch.equal(loaded(x)[0], model(x)[0])
    (tmp_path / "bad.pt").write_bytes(b"nonsense")
    with pytest.raises(DataError, match=r"bad\.pt: not a U-Net checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(DataError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_loads_only_for_its_recipe(tmp_path):
    """A cache must not be reused silently after the recipe changed: the stored recipe has to match exactly."""
    from helpers.models.unet import recipe

    rec = recipe("quick")
    save_checkpoint(small(), tmp_path / "r.pt", recipe=rec)
    save_checkpoint(small(), tmp_path / "old.pt", scale=0.5)               # written before recipes were stored
    assert load_checkpoint(tmp_path / "r.pt", recipe=dict(rec))[1]["recipe"] == rec
    with pytest.raises(DataError, match=r"r\.pt was trained with another recipe \(differs in: p, seed\)"):
        load_checkpoint(tmp_path / "r.pt", recipe={**rec, "seed": 1, "p": 0.3})
    with pytest.raises(DataError, match="another recipe"):
        load_checkpoint(tmp_path / "old.pt", recipe=rec)
    assert recipe("full")["seed"] == rec["seed"] == 0


@pytest.mark.parametrize("options", [{}, {"bce_weight": 1.0}])
def test_learns_bars(options):
    """A few dozen steps on a striped image bring the soft Dice loss well below its start (also with the
    cross-entropy term)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only wait for each other on a busy CPU
    try:
        g = torch.Generator().manual_seed(0)
        y = torch.zeros(1, 1, 48, 48)
        y[..., ::8, :] = 1
        y[..., 1::8, :] = 1
        x = 1 - 0.6 * y + 0.05 * torch.rand(y.shape, generator=g)
        fov = torch.ones_like(y)
        model = small()
        with torch.no_grad():
            start = float(segmentation_loss(model(x), y, fov))
        curves = train_unet(model, x, y, fov, steps=40, patch=32, batch=4, lr=3e-2, generator=g,
                            progress=False, val=(x, y, fov), eval_every=20, **options)
        assert curves["val_dice_loss"][-1] < 0.3 < curves["val_dice_loss"][0]
        with torch.no_grad():
            assert float(segmentation_loss(model(x), y, fov)) < start
    finally:
        torch.set_num_threads(threads)


def test_predict_without_dropout_has_no_epistemic_spread():
    out = predict(small(dropout="none", p=0.0), torch.rand(1, 1, 16, 16), T=5)
    assert out["samples"].shape[0] == 1 and float(out["mutual_information"].max()) == 0.0
    assert torch.allclose(out["probs"], out["single"])


def test_flip_averaging_is_exact_for_a_symmetric_model_and_keeps_the_mode():
    from helpers.models.unet import predict_flipped

    class Blur(torch.nn.Module):  # a flip-equivariant "model": a symmetric 3x3 blur of the input as logits
        def forward(self, x):
            return torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

    model = Blur().train()
    x = torch.rand(2, 1, 20, 24)
    probs = predict_flipped(model, x)
    assert probs.shape == (2, 1, 20, 24) and model.training
    padded = torch.nn.functional.pad(x, (0, 8, 0, 12))  # the same zero padding predict_flipped applies
    assert torch.allclose(probs, torch.sigmoid(model(padded))[..., :20, :24], atol=1e-6)

    class Fixed(torch.nn.Module):  # ignores its input: the result must be the mean of the flipped-back outputs
        def forward(self, x):
            return torch.arange(x[0, 0].numel(), dtype=torch.float32).view(1, 1, *x.shape[-2:]) / 100

    out = torch.sigmoid(Fixed()(torch.zeros(1, 1, 16, 16)))
    expected = (out + out.flip(-1) + out.flip(-2) + out.flip(-2, -1)) / 4
    assert torch.allclose(predict_flipped(Fixed(), torch.zeros(1, 1, 16, 16)), expected, atol=1e-6)


def test_predict_images_adds_the_flip_average_at_the_image_size(tmp_path):
    import numpy as np

    from helpers.data.retina import RetinaImage, to_tensors
    from helpers.models.unet import predict_flipped, predict_images

    rng = np.random.default_rng(0)
    sample = RetinaImage("odd", rng.integers(0, 255, (37, 45, 3), dtype=np.uint8), rng.random((37, 45)) > 0.8,
                         np.ones((37, 45), bool), tmp_path / "odd.png")
    torch.manual_seed(0)
    model = UNet(base=4, levels=3, p=0.2).eval()
    plain, flipped = (predict_images(model, [sample], T=3, flips=f)[0] for f in (False, True))
    assert "flipped" not in plain and set(flipped) == set(plain) | {"flipped"}
    assert all(v.shape == (37, 45) for v in flipped.values())
    x, _, _ = to_tensors([sample])
    assert np.allclose(flipped["flipped"], predict_flipped(model, x)[0, 0].numpy(), atol=1e-5)
    assert np.allclose(flipped["single"], plain["single"], atol=1e-6)  # dropout off: the same single pass
    half = predict_images(model, [sample], scale=0.5, T=2, flips=True)[0]  # run small, resized back
    assert half["flipped"].shape == (37, 45) and 0 <= half["flipped"].min() <= half["flipped"].max() <= 1


def test_bce_term_is_the_mean_cross_entropy_inside_the_fov():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.7).float()
    fov = torch.zeros_like(target)
    fov[..., 2:6, 1:7] = 1
    extra = segmentation_loss(logits, target, fov, bce_weight=0.5) - segmentation_loss(logits, target, fov)
    inside = fov.bool()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[inside], target[inside])
    assert torch.allclose(extra, 0.5 * expected, atol=1e-6)


@pytest.mark.parametrize("placement, shared", [("decoder", True), ("all", False), ("bottleneck", False)])
@pytest.mark.parametrize("n, chunk_size", [(1, 1), (1, 4), (2, 3), (3, 2)])
def test_mc_prediction_reuses_the_way_down_and_draws_the_same_masks(monkeypatch, placement, shared, n,
                                                                    chunk_size):
    """With dropout only on the way up, predict() encodes once and decodes T times; every map equals the
    one of T full passes (mc_samples) with the same seed: the same masks, in the same order."""
    import helpers.models.unet as unet

    model = small(p=0.3, dropout=placement)
    x = torch.rand(n, 1, 20, 24)
    assert unet._deterministic_encoder(model) is shared
    torch.manual_seed(1)
    fast = predict(model, x, T=5, chunk_size=chunk_size)
    monkeypatch.setattr(unet, "_deterministic_encoder", lambda m: False)
    torch.manual_seed(1)
    full = predict(model, x, T=5, chunk_size=chunk_size)
    assert fast.keys() == full.keys()
    for key in full:
        assert torch.allclose(fast[key], full[key], atol=1e-6), key
    assert not torch.allclose(fast["samples"][0], fast["samples"][1])
