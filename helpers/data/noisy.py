"""Synthetic problems whose noise we know exactly, so aleatoric and epistemic uncertainty can be checked.

Taught in chapter 2. Three problems, each returning float32 tensors and the ground truth of its noise:

- :func:`heteroscedastic_1d`: regression whose noise grows with ``x`` and whose data has a gap;
- :func:`label_noise_2d`: two-moons classification with a region where labels are flipped at random;
- :func:`ambiguous_blobs`: small images of one blob whose boundary is blurred, and annotated inconsistently,
  where it is blurred (what annotators of a lesion with a fuzzy edge do).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import make_moons

from helpers.errors import BookError


def heteroscedastic_1d_truth(x) -> tuple[torch.Tensor, torch.Tensor]:
    """The true mean f(x) = sin(1.5 x) + 0.3 x and noise standard deviation σ(x) = 0.02 + 0.08 (x + 4)⁺ of
    :func:`heteroscedastic_1d`."""
    x = torch.as_tensor(x, dtype=torch.float32)
    return torch.sin(1.5 * x) + 0.3 * x, 0.02 + 0.08 * (x + 4).clamp_min(0)


def heteroscedastic_1d(n: int = 600, x_range: tuple[float, float] = (-4.0, 4.0),
                       gap: tuple[float, float] | None = (-2.5, 0.0), seed: int = 0
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points ``(x [n, 1], y [n, 1])``: x uniform on ``x_range`` outside ``gap``, y = f(x) + σ(x)·ε.

    The noise σ(x) grows from 0.02 at x = −4 to 0.66 at x = 4 (:func:`heteroscedastic_1d_truth`): an aleatoric head
    should follow it, while MC dropout's epistemic band should open in the gap and outside ``x_range``.
    Taught in chapter 2, section "Regression head".
    """
    lo, hi = x_range
    if gap is not None and not lo < gap[0] < gap[1] < hi:
        raise BookError(f"gap={gap} must lie strictly inside x_range={x_range}")
    rng = np.random.default_rng(seed)
    width = (hi - lo) - (0.0 if gap is None else gap[1] - gap[0])
    u = rng.uniform(0.0, width, n)
    if gap is not None:
        u = np.where(u + lo < gap[0], u, u + (gap[1] - gap[0]))
    x = torch.tensor(np.sort(u + lo), dtype=torch.float32)[:, None]
    mean, std = heteroscedastic_1d_truth(x)
    y = mean + std * torch.tensor(rng.normal(size=(n, 1)), dtype=torch.float32)
    return x, y


def in_label_noise_region(x) -> torch.Tensor:
    """Boolean mask of the points of ``x [N, 2]`` inside the label-noise disc of :func:`label_noise_2d`."""
    x = torch.as_tensor(x, dtype=torch.float32)
    return (x - torch.tensor([1.5, -0.2])).norm(dim=1) < 0.6


def label_noise_2d(n: int = 1000, flip: float = 0.5, noise: float = 0.1, seed: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two moons ``(x [n, 2], y [n], noisy [n])`` whose labels are flipped with probability ``flip`` inside a disc.

    Inside the disc (centre (1.5, −0.2), radius 0.6, on the lower moon) the label is a coin toss for ``flip=0.5``:
    no model can do better, which is aleatoric uncertainty. Far from both moons there is no data at all, which is
    epistemic. ``noisy`` marks the points in the disc. Taught in chapter 2, section "Classification head".
    """
    if not 0.0 <= flip <= 1.0:
        raise BookError(f"flip={flip}: a probability must lie in [0, 1]")
    x, y = make_moons(n, noise=noise, random_state=seed)
    x = torch.tensor(x, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    noisy = in_label_noise_region(x)
    rng = np.random.default_rng(seed + 1)
    flips = torch.tensor(rng.uniform(size=n) < flip) & noisy
    return x, torch.where(flips, 1 - y, y), noisy


def ambiguous_blobs(n: int = 200, size: int = 32, ambiguity: float = 4.0, noise: float = 0.1,
                    artefact: bool = False, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` grey images of one elliptic blob with ``(image, mask, prob)``, each ``[n, 1, size, size]``, float32.

    Along the blob's boundary the edge is sharp on one side and blurred on the other. Annotators disagree where it
    is blurred: each mask draws the boundary shifted by ``Δ(θ)·u`` pixels, u ~ U(−1, 1) once per image, with
    Δ(θ) between 0.3 and ``ambiguity`` pixels following the local blur. ``prob`` is the exact probability that a
    pixel is labelled foreground, clip((1 − d / Δ(θ)) / 2, 0, 1) for a pixel at signed distance d from the edge:
    the true aleatoric map. ``artefact=True`` adds a bright straight streak never seen in training (a test of
    epistemic uncertainty). Taught in chapter 2, section "Segmentation head".
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(float) + 0.5
    c = rng.uniform(0.3, 0.7, (n, 2)) * size                      # centres
    axes = rng.uniform(0.15, 0.3, (n, 2)) * size                  # semi-axes in pixels
    rot, fuzzy_dir = rng.uniform(0, np.pi, n), rng.uniform(0, 2 * np.pi, n)
    contrast = rng.uniform(0.6, 1.0, n)
    dx, dy = xx[None] - c[:, 0, None, None], yy[None] - c[:, 1, None, None]
    cr, sr = np.cos(rot)[:, None, None], np.sin(rot)[:, None, None]
    u, v = dx * cr + dy * sr, -dx * sr + dy * cr
    rho = np.sqrt((u / axes[:, 0, None, None]) ** 2 + (v / axes[:, 1, None, None]) ** 2)
    d = (rho - 1.0) * np.sqrt(axes[:, 0] * axes[:, 1])[:, None, None]          # ≈ signed distance to the edge
    theta = np.arctan2(dy, dx)
    fuzz = 0.5 * (1 + np.cos(theta - fuzzy_dir[:, None, None]))               # 1 on the fuzzy side, 0 opposite
    delta = 0.3 + (ambiguity - 0.3) * fuzz
    img = contrast[:, None, None] / (1 + np.exp(d / (0.2 + 0.8 * delta)))     # edge softness follows Δ(θ)
    img = img + 0.1 + noise * rng.normal(size=img.shape)
    if artefact:
        for k in range(n):
            row = rng.integers(2, size - 2)
            img[k, row - 1:row + 1, :] += 0.9
    shift = rng.uniform(-1, 1, n)[:, None, None]
    mask = (d < delta * shift).astype(float)
    prob = np.clip((1 - d / delta) / 2, 0, 1)
    as_t = lambda a: torch.tensor(a[:, None], dtype=torch.float32)
    return as_t(img), as_t(mask), as_t(prob)


__all__ = ["ambiguous_blobs", "heteroscedastic_1d", "heteroscedastic_1d_truth", "in_label_noise_region",
           "label_noise_2d"]
