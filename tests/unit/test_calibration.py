"""Calibration and referral metrics (chapter 2) against reference implementations and known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.classification import MulticlassCalibrationError

from helpers.errors import BookError
from helpers.metrics.calibration import (aurc, brier_score, expected_calibration_error, fit_temperature,
                                         negative_log_likelihood, regression_calibration_curve,
                                         reliability_diagram_data, risk_coverage_curve, temperature_scale)


def _random_probs(rng, n=2000, c=4):
    z = rng.normal(size=(n, c)) * 2
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    return p, rng.integers(0, c, n)


def test_ece_matches_torchmetrics_multiclass_and_binary():
    rng = np.random.default_rng(0)
    p, y = _random_probs(rng)
    ref = MulticlassCalibrationError(num_classes=4, n_bins=15, norm="l1")(torch.tensor(p), torch.tensor(y))
    assert expected_calibration_error(p, y) == pytest.approx(ref.item(), abs=1e-6)
    assert expected_calibration_error(torch.tensor(p), torch.tensor(y)) == pytest.approx(ref.item(), abs=1e-6)
    # Binary: [N] probabilities of class 1 are scored as the two-class problem (confidence max(p, 1 - p)).
    q, t = rng.uniform(size=3000), rng.integers(0, 2, 3000)
    ref2 = MulticlassCalibrationError(num_classes=2, n_bins=15)(torch.tensor(np.c_[1 - q, q]), torch.tensor(t))
    assert expected_calibration_error(q, t) == pytest.approx(ref2.item(), abs=1e-6)


def test_ece_of_calibrated_predictor_tends_to_zero():
    rng = np.random.default_rng(1)
    q = rng.uniform(size=200_000)
    y = (rng.uniform(size=q.size) < q).astype(int)     # labels drawn from the predicted probabilities
    assert expected_calibration_error(q, y) < 0.005


def test_ece_of_known_overconfident_predictor():
    rng = np.random.default_rng(2)
    n = 100_000
    y = rng.integers(0, 2, n)
    right = rng.uniform(size=n) < 0.7                    # 70 % accuracy at a stated confidence of 0.9
    p1 = np.where(right == (y == 1), 0.9, 0.1)
    assert expected_calibration_error(p1, y) == pytest.approx(0.2, abs=0.01)
    d = reliability_diagram_data(p1, y)
    assert d["count"].sum() == n and np.nansum(d["count"] * d["accuracy"]) / n == pytest.approx(0.7, abs=0.01)


def test_nll_and_brier_match_sklearn():
    rng = np.random.default_rng(3)
    p, y = _random_probs(rng)
    assert negative_log_likelihood(p, y) == pytest.approx(log_loss(y, p, labels=range(4)), rel=1e-9)
    q, t = rng.uniform(0.01, 0.99, 500), rng.integers(0, 2, 500)
    assert negative_log_likelihood(q, t) == pytest.approx(log_loss(t, q), rel=1e-9)
    assert brier_score(q, t) == pytest.approx(brier_score_loss(t, q), rel=1e-9)
    assert brier_score(np.c_[1 - q, q], t) == pytest.approx(2 * brier_score_loss(t, q), rel=1e-9)
    onehot = np.eye(4)[y]
    assert brier_score(p, y) == pytest.approx(np.mean(((p - onehot) ** 2).sum(1)))


def test_fit_temperature_recovers_known_scale():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(20_000, 3)) * 1.5
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])   # calibrated at T = 1
    assert fit_temperature(3.0 * z, y) == pytest.approx(3.0, rel=0.05)
    assert fit_temperature(torch.tensor(z), torch.tensor(y)) == pytest.approx(1.0, rel=0.05)
    zb = rng.normal(size=20_000) * 2
    yb = (rng.uniform(size=zb.size) < 1 / (1 + np.exp(-zb))).astype(int)
    assert fit_temperature(0.5 * zb, yb) == pytest.approx(0.5, rel=0.05)
    # Scaling never changes the predicted class.
    assert np.array_equal(temperature_scale(z, 2.0).argmax(1), z.argmax(1))


def test_risk_coverage_no_ties_is_running_mean():
    rng = np.random.default_rng(5)
    u, e = rng.uniform(size=300), (rng.uniform(size=300) < 0.3).astype(float)
    cov, risk = risk_coverage_curve(u, e)
    order = np.argsort(u)
    assert np.allclose(cov, np.arange(1, 301) / 300)
    assert np.allclose(risk, np.cumsum(e[order]) / np.arange(1, 301))
    assert aurc(u, e) == pytest.approx(np.mean(risk))
    assert risk[-1] == pytest.approx(e.mean())          # full coverage: the overall error


def test_risk_coverage_ties_and_errors():
    cov, risk = risk_coverage_curve(np.ones(10), np.r_[np.ones(3), np.zeros(7)])
    assert cov.tolist() == [1.0] and risk.tolist() == [0.3]
    with pytest.raises(BookError):
        risk_coverage_curve(np.ones(3), np.ones(4))


def test_aurc_reference_values():
    rng = np.random.default_rng(6)
    n, r = 100_000, 0.2
    e = (rng.uniform(size=n) < r).astype(float)
    oracle = aurc(e + rng.uniform(0, 0.5, n), e)         # every mistake is more uncertain than every success
    rr = e.mean()
    assert oracle == pytest.approx(rr + (1 - rr) * math.log(1 - rr), abs=1e-3)
    assert aurc(rng.uniform(size=n), e) == pytest.approx(rr, abs=0.01)


def test_regression_calibration_curve_on_diagonal_for_true_model():
    rng = np.random.default_rng(7)
    m, s = rng.normal(size=50_000), rng.uniform(0.1, 3, 50_000)
    y = m + s * rng.normal(size=m.size)
    levels, observed = regression_calibration_curve(m, s, y)
    assert np.allclose(observed, levels, atol=0.01)
    _, narrow = regression_calibration_curve(m, s / 2, y)
    assert np.all(narrow < levels)


def test_synthetic_problems_know_their_noise():
    """The generators' ground truth is calibrated: true σ gives the nominal coverage, true p gives ECE ≈ 0."""
    from helpers.data.noisy import ambiguous_blobs, heteroscedastic_1d, heteroscedastic_1d_truth, label_noise_2d

    x, y = heteroscedastic_1d(20_000, seed=3)
    assert not ((x > -2.5) & (x < 0.0)).any()              # the gap is empty
    mean, std = heteroscedastic_1d_truth(x)
    levels, observed = regression_calibration_curve(mean, std, y)
    assert np.allclose(observed, levels, atol=0.015)
    _, mask, prob = ambiguous_blobs(300, seed=4)
    assert expected_calibration_error(prob.flatten(), mask.flatten().long()) < 0.01
    _, labels, noisy = label_noise_2d(20_000, flip=0.5, seed=5)
    assert labels[noisy].float().mean().item() == pytest.approx(0.5, abs=0.03)


def test_plots_draw_what_the_metrics_say():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.plots.calibration import plot_reliability_diagram, plot_risk_coverage

    rng = np.random.default_rng(8)
    p, y = _random_probs(rng, n=500, c=3)
    fig, (a1, a2) = plt.subplots(1, 2)
    assert plot_reliability_diagram(a1, p, y) == pytest.approx(expected_calibration_error(p, y))
    err = (p.argmax(1) != y).astype(float)
    plot_risk_coverage(a2, {"1 - max p": (1 - p.max(1), err)}, error=err)
    labels = [t.get_text() for t in a2.get_legend().get_texts()]
    assert f"{aurc(1 - p.max(1), err):.3f}" in labels[0] and labels[1].startswith("oracle")
    plt.close(fig)


def test_reliability_diagram_legend_can_go_outside_and_is_readable():
    """Chapter 2 puts one legend under three diagrams: the artists carry the labels; the in-axes legend uses the
    book's font size (no 8 pt text)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.plots.calibration import plot_reliability_diagram
    from helpers.plots.style import use_book_style

    use_book_style()
    rng = np.random.default_rng(9)
    p, y = _random_probs(rng, n=300, c=2)
    fig, (a1, a2) = plt.subplots(1, 2)
    plot_reliability_diagram(a1, p, y, legend=False)
    assert a1.get_legend() is None
    _, labels = a1.get_legend_handles_labels()
    assert set(labels) == {"accuracy", "gap to mean confidence", "share of cases in the bin", "perfect calibration"}
    plot_reliability_diagram(a2, p, y)
    assert min(t.get_fontsize() for t in a2.get_legend().get_texts()) >= 10
    plt.close(fig)
