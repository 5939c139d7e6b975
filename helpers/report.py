"""Numbers and verdicts in a chapter's prose come from the run that printed them.

Taught in every chapter; the rules are in ``book/chapter_template.md``.

- :func:`glue` stores a value under a name, formatted as the prose shows it; the text pastes it with
  ``{glue:text}`name` `` (myst-nb), so the website can never quote a number that the page did not compute.
- :func:`verdict` words a comparison from its noise: "A is higher" only when the difference exceeds ``k`` standard
  errors (or a confidence interval excludes zero), else "no detectable difference".
- :func:`claim` asserts what the prose relies on, so that a build on another machine fails loudly instead of
  publishing a sentence its own outputs contradict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from helpers.errors import BookError


def fmt(value: Any, spec: str | None = None) -> str:
    """Format ``value`` as the prose shows it: ``spec`` (``".3f"``, ``".1%"``, ``","``) if given; an int as is; a
    float with 3 significant digits; anything else with ``str``."""
    if spec is not None:
        return format(value, spec)
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        return fmt(item(), spec)
    return str(value)


def glue(name: str, value: Any, spec: str | None = None) -> str:
    """Store ``value`` (formatted with :func:`fmt`) for the prose under ``name`` and return the text.

    In the markdown: ``the network reaches an AUC of {glue:text}`tour_auc` ``. Nothing is displayed in the cell.
    Outside a notebook (tests, scripts) the value is only formatted.
    """
    # Glued as a plain string: myst-nb pastes ``text/plain`` through ``ast.literal_eval``, which turns the quoted
    # repr back into exactly this text ("0.10" stays "0.10"; a bare 0.10 would be pasted as 0.1).
    text = fmt(value, spec)
    try:
        from IPython import get_ipython
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - myst-nb is part of the book's environment
        return text
    if get_ipython() is not None:
        _glue(name, text, display=False)
    return text


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing two estimates: ``sign`` is +1 (first higher), -1 (second higher) or 0 (tie)."""

    sign: int
    difference: float
    noise: float
    text: str

    def __str__(self) -> str:
        return self.text


def verdict(a: float, b: float, *, se: float | None = None, ci: tuple[float, float] | None = None,
            names: tuple[str, str] = ("the first", "the second"), k: float = 2.0,
            higher_is: str = "higher") -> Verdict:
    """Compare estimates ``a`` and ``b`` against their noise and word the result.

    Give either ``se``, the standard error of the difference ``a - b`` (the difference counts when it exceeds
    ``k`` of them), or ``ci``, a confidence interval of ``a - b`` (it counts when the interval excludes 0).
    ``higher_is`` is the word for a larger value ("higher", "better", "wider" ...).
    """
    if (se is None) == (ci is None):
        raise BookError("verdict: give exactly one of se= (standard error of a - b) or ci= (interval of a - b)")
    diff = float(a) - float(b)
    if se is not None:
        if not se >= 0:
            raise BookError(f"verdict: se={se} must be a non-negative number")
        noise = k * float(se)
        sign = 0 if abs(diff) <= noise else (1 if diff > 0 else -1)
        how = f"{diff:+.3g}, {k:g} standard errors = {noise:.3g}"
    else:
        lo, hi = float(ci[0]), float(ci[1])
        noise = (hi - lo) / 2
        sign = 1 if lo > 0 else (-1 if hi < 0 else 0)
        how = f"{diff:+.3g}, interval {lo:+.3g} to {hi:+.3g}"
    first, second = names
    if sign == 0:
        text = f"no detectable difference between {first} and {second} ({how})"
    else:
        winner, loser = (first, second) if sign > 0 else (second, first)
        text = f"{winner} is {higher_is} than {loser} ({how})"
    return Verdict(sign, diff, noise, text)


def claim(condition: bool, says: str, observed: Any = "") -> None:
    """Assert a statement the prose makes. ``says`` is the sentence the text relies on; ``observed`` what this run
    computed. A failing claim stops the build with both, so the text is corrected instead of published wrong."""
    if not bool(condition):
        raise AssertionError(f"The text says: {says}. This run: {observed}. Re-word the text from the result.")


__all__ = ["Verdict", "claim", "fmt", "glue", "verdict"]
