"""The mechanism that ties a chapter's prose to its run: glue formatting, computed verdicts, asserted claims."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from helpers import BookError
from helpers.metrics.bootstrap import bootstrap_ci
from helpers.report import claim, fmt, glue, verdict


def test_fmt_rounds_as_the_prose_shows_it():
    assert fmt(0.123456) == "0.123"
    assert fmt(0.8097, ".1%") == "81.0%"
    assert fmt(12345) == "12,345"
    assert fmt(np.float32(2.0)) == "2"


def test_glue_outside_a_kernel_returns_the_text():
    assert glue("x", 0.98765, ".2f") == "0.99"


@pytest.mark.parametrize("text", ["0.10", "-0.00", "16, 32, 64", "no detectable difference (+0.002)"])
def test_glued_text_is_pasted_exactly_as_formatted(text):
    """myst-nb pastes text/plain through ast.literal_eval: the quoted repr of the glued string survives it."""
    from myst_nb.core.variables import format_plain_text
    assert format_plain_text(repr(text), "") == text


def test_verdict_is_a_tie_inside_the_noise_and_a_win_outside():
    tie = verdict(0.812, 0.810, se=0.002, names=("MC", "single"))
    assert tie.sign == 0 and tie.text.startswith("no detectable difference between MC and single")
    win = verdict(0.812, 0.800, se=0.002, names=("MC", "single"))
    assert win.sign == 1 and win.text.startswith("MC is higher than single")
    loss = verdict(0.80, 0.82, ci=(-0.03, -0.01), names=("A", "B"), higher_is="better")
    assert loss.sign == -1 and loss.text.startswith("B is better than A")
    assert verdict(1.0, 0.0, ci=(-0.1, 2.0)).sign == 0


def test_verdict_needs_exactly_one_noise_estimate():
    with pytest.raises(BookError):
        verdict(1, 0)
    with pytest.raises(BookError):
        verdict(1, 0, se=0.1, ci=(0, 1))


def test_claim_fails_loudly_with_what_the_text_says():
    claim(True, "always true")
    with pytest.raises(AssertionError, match="The text says: MC wins. This run: -0.01"):
        claim(False, "MC wins", -0.01)


def test_bootstrap_interval_covers_the_estimate_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = rng.normal(size=30)
    large = rng.normal(size=3000)
    a, b = bootstrap_ci(np.mean, small), bootstrap_ci(np.mean, large)
    assert a.low < a.estimate < a.high and b.low < b.estimate < b.high
    assert (b.high - b.low) < (a.high - a.low) / 5
    # the normal-theory interval of a mean: +-1.96 SE
    se = large.std(ddof=1) / np.sqrt(len(large))
    assert abs((b.high - b.low) / (2 * 1.96 * se) - 1) < 0.15


def test_bootstrap_by_group_is_wider_when_groups_are_correlated():
    rng = np.random.default_rng(1)
    patient = np.repeat(np.arange(20), 10)
    y = np.repeat(rng.normal(size=20), 10) + 0.1 * rng.normal(size=200)  # images of one patient agree
    by_image = bootstrap_ci(np.mean, y)
    by_patient = bootstrap_ci(np.mean, y, groups=patient)
    assert (by_patient.high - by_patient.low) > 2 * (by_image.high - by_image.low)


def test_bootstrap_skips_undefined_resamples_and_refuses_when_too_many():
    y = np.array([0] * 40 + [1] * 40)
    p = np.linspace(0, 1, 80)
    ci = bootstrap_ci(roc_auc_score, y, p)
    assert ci.estimate == 1.0 and ci.low == pytest.approx(1.0)
    with pytest.raises(BookError, match="undefined"):
        bootstrap_ci(roc_auc_score, np.array([0] * 1 + [1] * 2), np.array([0.1, 0.5, 0.9]))


def test_interval_formats_for_the_prose():
    ci = bootstrap_ci(np.mean, np.arange(10.0))
    assert ci.format(".1f").startswith("4.5 (95 % CI ")
