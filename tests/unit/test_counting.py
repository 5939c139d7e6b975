"""Counting metrics and the dual-output counting network of chapter 6."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.errors import BookError
from helpers.metrics.counting import (count_errors, dsb_average_precision, instance_f1, iou_matrix,
                                      match_instances, mean_average_precision)


def squares():
    true = np.zeros((30, 30), int)
    true[0:10, 0:10] = 1
    true[0:10, 20:30] = 2
    pred = np.zeros((30, 30), int)
    pred[0:10, 0:8] = 7          # IoU 0.8 with nucleus 1
    pred[20:30, 20:30] = 9       # a false positive; nucleus 2 missed
    return true, pred


def test_iou_and_matching():
    true, pred = squares()
    iou = iou_matrix(true, pred)
    assert iou.shape == (2, 2) and np.isclose(iou[0, 0], 0.8) and iou[1].sum() == 0
    assert match_instances(true, pred) == (1, 1, 1)
    assert instance_f1(true, pred) == 0.5
    assert instance_f1(true, true) == 1.0 and instance_f1(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0
    with pytest.raises(BookError, match="one-to-one"):
        match_instances(true, pred, 0.3)


def test_dsb_score_follows_the_competition_definition():
    true, pred = squares()
    # IoU 0.8 is a hit at thresholds 0.5 .. 0.75 (6 of 10): 1/3 there, 0/4 above
    assert np.isclose(dsb_average_precision(true, pred), 6 / 10 * 1 / 3)
    assert dsb_average_precision(true, true) == 1.0
    assert dsb_average_precision(true, np.zeros_like(true)) == 0.0
    assert np.isclose(mean_average_precision([true, true], [true, pred]), (1 + 0.2) / 2)


def test_merged_nuclei_cost_a_match():
    true = np.zeros((10, 20), int)
    true[:, :10], true[:, 10:] = 1, 2
    merged = (true > 0).astype(int)        # one blob over two touching nuclei: IoU 0.5 with each, no match
    assert match_instances(true, merged) == (0, 1, 2)


def test_count_errors():
    e = count_errors([10, 0, 30], [12, 1, 27])
    assert np.isclose(e["mae"], 2.0) and np.isclose(e["relative_error"], 6 / 40) and np.isclose(e["bias"], 0)
    with pytest.raises(BookError):
        count_errors([1, 2], [1])


# ------------------------------------------------------------------------------------------ the counting network
import json  # noqa: E402

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from helpers.errors import DataError  # noqa: E402
from helpers.models.counting import (CountingUNet, counting_loss, density_target, foreground_components,  # noqa: E402
                                     instances_from_probs, load_counter, predict_counts, save_counter, seg_target)
from helpers.models.heads import PixelLogVarHead  # noqa: E402
from helpers.models.unet import UNet  # noqa: E402


def touching():
    lab = np.zeros((32, 32), np.int32)
    lab[8:20, 4:14], lab[8:20, 14:24] = 1, 2
    return lab


def test_network_reuses_the_unet_and_the_head():
    torch.manual_seed(0)
    m = CountingUNet(base=4, levels=3)
    assert isinstance(m.unet, UNet) and isinstance(m.density, PixelLogVarHead)
    seg, d, s = m(torch.rand(2, 1, 32, 32))
    assert seg.shape == (2, 3, 32, 32) and d.shape == s.shape == (2, 1, 32, 32) and (d >= 0).all()


def test_targets_split_touching_nuclei_and_integrate_to_the_count():
    lab = touching()
    probs = np.eye(3)[seg_target(lab)].transpose(2, 0, 1)
    assert instances_from_probs(probs).max() == 2        # the rims separate the two interiors
    assert foreground_components(probs).max() == 1        # the plain foreground merges them
    centres = np.array([[1.0, 1.0], [16.0, 16.0]])
    assert np.isclose(density_target(centres, (32, 32)).sum(), 2.0, atol=1e-5)


def test_loss_ignores_unlabelled_pixels_and_nll_trains_only_the_variance():
    torch.manual_seed(0)
    m = CountingUNet(base=4, levels=3)
    x = torch.rand(2, 1, 32, 32)
    dens = torch.from_numpy(density_target(np.array([[10.0, 10.0]]), (32, 32)))[None, None].repeat(2, 1, 1, 1)
    unlabelled = torch.full((2, 32, 32), -1)
    terms = counting_loss(m(x), unlabelled, dens)
    assert terms["seg"] == 0 and torch.isfinite(terms["total"])
    m.zero_grad()
    terms["count_nll"].backward()
    g = m.density.value.weight.grad
    assert (g is None or g.abs().sum() == 0) and m.density.log_scale.weight.grad.abs().sum() > 0


def test_prediction_decomposes_the_count_variance():
    torch.manual_seed(0)
    m = CountingUNet(base=4, levels=3, p=0.3).eval()
    p = predict_counts(m, [np.random.default_rng(0).random((40, 36)).astype(np.float32)], T=6)[0]
    assert p.counts.shape == (6,) and np.isclose(p.count, p.counts.mean())
    assert p.var_epistemic > 0 and np.isclose(p.var_aleatoric, p.aleatoric.sum(), rtol=1e-3)
    assert np.isclose(p.std ** 2, p.var_epistemic + p.var_aleatoric) and p.probs.shape == (3, 40, 36)
    q = predict_counts(CountingUNet(base=4, levels=3, p=0.0).eval(), [np.zeros((32, 32), np.float32)], T=4)[0]
    assert q.var_epistemic == 0 and q.counts.shape == (1,)


def test_checkpoint_round_trip_and_refusals(tmp_path):
    m = CountingUNet(base=4, levels=3)
    save_counter(m, tmp_path / "c.pt", recipe={"steps": 1})
    loaded, meta = load_counter(tmp_path / "c.pt", recipe={"steps": 1})
    x = torch.rand(1, 1, 32, 32)
    assert torch.allclose(loaded(x)[1], m.eval()(x)[1])
    with pytest.raises(DataError, match="another recipe.*steps"):
        load_counter(tmp_path / "c.pt", recipe={"steps": 2})
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a cell-counting checkpoint"):
        load_counter(tmp_path / "bad.pt")


def _plate(root, n):
    rng = np.random.default_rng(0)
    for d in ("images", "labels"):
        (root / d).mkdir(parents=True)
    for i in range(n):
        lab = np.zeros((48, 48), np.uint16)
        for k in range(1, int(rng.integers(0, 4)) + 1):
            r, c = rng.integers(4, 40, 2)
            lab[r:r + 6, c:c + 6] = k
        Image.fromarray(((lab > 0) * 180 + 20).astype(np.uint8)).save(root / "images" / f"i{i}.png")
        Image.fromarray(lab).save(root / "labels" / f"i{i}.png")
    return root


def test_command_line_prints_one_json_line_and_one_line_errors(tmp_path, capsys):
    from helpers.cli import main

    train, test = _plate(tmp_path / "train", 4), _plate(tmp_path / "test", 3)
    cal = _plate(tmp_path / "cal", 9)                  # 9 images: the fewest for a 90 % interval
    rc = main(["cells", "--train", str(train), "--calibrate", str(cal), "--test", str(test), "--steps", "2",
               "--out", str(tmp_path / "o")])
    out = capsys.readouterr()
    result = json.loads(out.out.strip())
    assert rc == 0 and len(out.out.strip().splitlines()) == 1
    assert {"n_train", "n_test", "count_mae", "count_relative_error", "coverage_90", "mean_interval_width",
            "f1_iou50", "mean_ap", "seconds"} <= set(result) and result["n_test"] == 3
    assert (tmp_path / "o" / "counts.csv").read_text().count("\n") == 4
    (test / "labels" / "i1.png").unlink()
    rc = main(["cells", "--train", str(train), "--calibrate", str(cal), "--test", str(test), "--steps", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error:") and "no label image for i1.png" in err[-1]
