"""A synthetic medical-image task whose evidence we know: find the nodule, with its mask, and a shortcut variant.

Taught in chapter 3. Each image is a grey 2-D "scan": a soft elliptical organ on a dark background, low-frequency
tissue variation, bright curved vessels and dark round cysts in *both* classes, and acquisition noise. A positive
image (label 1) also holds one nodule: a bright round blob with soft edges inside the organ, whose pixels are
returned as ``lesion`` masks, so that a saliency map can be scored against where the evidence really is.

The shortcut variant burns a bright L-shaped marker (like a radiographer's lead marker) into the top-left corner
with a probability that depends on the label (``marker_rate``), as hospital-specific markers and scanner
annotations do in real collections (Zech et al. 2018). A model may then learn the marker instead of the nodule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from helpers.errors import BookError


@dataclass
class LesionSet:
    """Images ``x`` ``[N, 1, S, S]`` in [0, 1], labels ``y`` ``[N]`` (1 = nodule), masks ``[N, 1, S, S]`` (bool)
    of the ``lesion`` (empty for negatives) and of the burned-in ``marker`` (empty when absent)."""

    x: torch.Tensor
    y: torch.Tensor
    lesion: torch.Tensor
    marker: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx) -> "LesionSet":
        return LesionSet(self.x[idx], self.y[idx], self.lesion[idx], self.marker[idx])


def _vessels(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """``n`` smooth curved lines (quadratic Bézier curves across the image), blurred to ~2 px width."""
    img = np.zeros((size, size))
    t = np.linspace(0, 1, 4 * size)[:, None]
    for _ in range(n):
        p0, p1, p2 = rng.uniform(-0.1, 1.1, (3, 2)) * size
        pts = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2
        ij = np.round(pts).astype(int)
        keep = (ij >= 0).all(1) & (ij < size).all(1)
        img[ij[keep, 0], ij[keep, 1]] = rng.uniform(0.6, 1.0)
    return gaussian_filter(img, 0.8) * 2.5


def _blob(size: int, cy: float, cx: float, r: float, edge: float = 1.0) -> np.ndarray:
    """A round blob of radius ``r`` with a soft edge (a logistic profile of width ``edge`` px), peak 1."""
    yy, xx = np.mgrid[:size, :size]
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    return 1 / (1 + np.exp((d - r) / edge))


def _marker(size: int) -> np.ndarray:
    """A bright L-shaped marker near the top-left corner, about size/10 pixels tall."""
    m = np.zeros((size, size), dtype=bool)
    h = max(4, size // 10)
    o = max(2, size // 32)
    w = max(1, h // 4)
    m[o:o + h, o:o + w] = True
    m[o + h - w:o + h, o:o + h * 2 // 3] = True
    return m


def make_lesion_images(n: int, *, size: int = 64, seed: int = 0, prevalence: float = 0.5,
                       contrast: tuple[float, float] = (0.25, 0.4), radius: tuple[float, float] = (2.5, 4.5),
                       noise: float = 0.04, marker_rate: tuple[float, float] | None = None) -> LesionSet:
    """Generate ``n`` images of the nodule task (see the module docstring), reproducibly from ``seed``.

    ``contrast``/``radius``: ranges the nodule's peak brightness above the tissue and its radius (pixels) are
    drawn from; lower contrast makes the task harder. ``marker_rate=(p_neg, p_pos)``: probability that a negative /
    positive image carries the burned-in marker (None: never). ``(0.05, 0.95)`` makes the marker a shortcut;
    ``(0.5, 0.5)`` makes it uninformative. Taught in chapter 3.
    """
    if n < 1 or size < 32:
        raise BookError(f"make_lesion_images(n={n}, size={size}): need n >= 1 and size >= 32")
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(np.int64)
    # low-frequency tissue variation for all images at once: coarse noise upsampled smoothly
    coarse = torch.from_numpy(rng.normal(0, 1, (n, 1, 6, 6))).float()
    tissue = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[:, 0].numpy()
    yy, xx = np.mgrid[:size, :size] / size
    imgs = np.empty((n, size, size), dtype=np.float32)
    lesion = np.zeros((n, size, size), dtype=bool)
    marker = np.zeros((n, size, size), dtype=bool)
    marker_shape = _marker(size)
    for i in range(n):
        cy, cx = rng.uniform(0.45, 0.55, 2)
        ay, ax = rng.uniform(0.36, 0.46, 2)
        organ = 1 / (1 + np.exp((((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 - 1) / 0.08))
        img = 0.12 + 0.33 * organ + 0.05 * tissue[i] * organ
        img += 0.12 * _vessels(rng, size, int(rng.integers(3, 7))) * organ
        for _ in range(int(rng.integers(1, 4))):  # dark cysts: round, but not the evidence
            r = rng.uniform(1.5, 3.5)
            py, px = _inside(rng, cy, cx, ay, ax, size)
            img -= 0.12 * _blob(size, py, px, r) * organ
        if y[i]:
            r = rng.uniform(*radius)
            py, px = _inside(rng, cy, cx, ay * 0.8, ax * 0.8, size)
            blob = _blob(size, py, px, r)
            img += rng.uniform(*contrast) * blob
            lesion[i] = blob > 0.5
        if marker_rate is not None and rng.random() < marker_rate[int(y[i])]:
            img = np.where(marker_shape, 0.95, img)
            marker[i] = marker_shape
        img += rng.normal(0, noise, img.shape)
        imgs[i] = np.clip(img, 0, 1)
    as_t = torch.from_numpy
    return LesionSet(as_t(imgs)[:, None], as_t(y), as_t(lesion)[:, None], as_t(marker)[:, None])


def _inside(rng: np.random.Generator, cy: float, cx: float, ay: float, ax: float, size: int) -> tuple[float, float]:
    """A random point inside the ellipse (centre cy, cx; semi-axes ay, ax; image fractions), in pixels."""
    r, a = np.sqrt(rng.random()) * 0.8, rng.uniform(0, 2 * np.pi)
    return (cy + ay * r * np.sin(a)) * size, (cx + ax * r * np.cos(a)) * size


__all__ = ["LesionSet", "make_lesion_images"]
