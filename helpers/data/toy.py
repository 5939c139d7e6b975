"""Small synthetic problems where the right answer about uncertainty is known by construction.

Taught in chapter 1 (sections "Toy regression" and "Classification").
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import make_moons


def gap_regression(n: int = 80, noise: float = 0.1, gap: tuple[float, float] = (-0.4, 0.4),
                   x_range: tuple[float, float] = (-1.5, 1.5), seed: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1-D regression problem with no data inside ``gap``: y = sin(3x) + 0.5 x + ε, ε ~ N(0, ``noise``²).

    Returns ``x [n, 1]`` and ``y [n, 1]`` (float32). A model that knows what it does not know should be unsure
    inside the gap and outside ``x_range``, where it has seen no data.
    """
    rng = np.random.default_rng(seed)
    left = rng.uniform(x_range[0], gap[0], n // 2)
    right = rng.uniform(gap[1], x_range[1], n - n // 2)
    x = np.sort(np.concatenate([left, right]))
    y = true_function(x) + noise * rng.standard_normal(n)
    return torch.tensor(x, dtype=torch.float32)[:, None], torch.tensor(y, dtype=torch.float32)[:, None]


def true_function(x):
    """The noise-free curve of :func:`gap_regression`, sin(3x) + 0.5 x."""
    return np.sin(3 * np.asarray(x)) + 0.5 * np.asarray(x)


def two_moons(n: int = 300, noise: float = 0.2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The 2-D two-moons classification problem (scikit-learn), standardised; ``x [n, 2]`` float32, ``y [n]`` int64.

    The classes overlap where the moons meet (aleatoric uncertainty) and there is no data far from them
    (epistemic uncertainty).
    """
    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    x = (x - x.mean(0)) / x.std(0)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)


def grid_2d(lim: float = 3.0, steps: int = 100) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """A ``steps × steps`` grid over [−lim, lim]²: points ``[steps², 2]`` and the mesh ``xx, yy`` for plotting."""
    axis = np.linspace(-lim, lim, steps)
    xx, yy = np.meshgrid(axis, axis)
    pts = torch.tensor(np.stack([xx.ravel(), yy.ravel()], 1), dtype=torch.float32)
    return pts, xx, yy


__all__ = ["gap_regression", "grid_2d", "true_function", "two_moons"]
