"""One network, two answers: which pixels belong to which nucleus, and how many nuclei there are, each with its
uncertainty. Taught in chapter 6.

:class:`CountingUNet` is chapter 4's :class:`~helpers.models.unet.UNet` (reused, its last layer replaced) with two
heads on its full-resolution features:

- a **segmentation head** (1×1 convolution, three classes: background, nucleus interior, nucleus boundary).
  Predicting the one-pixel boundary lets touching nuclei be split: the interiors become separate seeds of a
  watershed (:func:`instances_from_probs`);
- chapter 2's :class:`~helpers.models.heads.PixelLogVarHead` as a **density head**: a density map whose integral
  is the count (targets: a unit Gaussian at every nucleus centre, Lempitsky & Zisserman 2010), and a per-pixel
  log-variance ``s``. The count of any region has aleatoric variance Σ exp(s) over the region; the head learns it
  from the Gaussian negative log-likelihood of the counts of training crops (Kendall & Gal 2017, eq. 8).

Epistemic uncertainty comes from MC dropout (the U-Net's dropout, :func:`helpers.uncertainty.mc_samples`): T
samples give T density maps and T counts. Dot annotations train the density head alone (the segmentation loss is
skipped for images without labels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from scipy import ndimage as ndi
from torch import nn
from torch.nn import functional as F

from helpers.errors import DataError
from helpers.losses import gaussian_nll
from helpers.models.checkpoint import load_model, save_model
from helpers.models.heads import PixelLogVarHead
from helpers.models.unet import UNet, pad_to_multiple
from helpers import config

#: The density map is predicted ×``DENSITY_SCALE`` (cells per 10,000 px would otherwise be tiny numbers).
DENSITY_SCALE = 100.0
CLASSES = ("background", "interior", "boundary")


class CountingUNet(nn.Module):
    """Chapter 4's U-Net with a three-class segmentation head and a density + log-variance head.

    ``forward(x)`` returns ``(seg_logits [N, 3, H, W], density [N, 1, H, W], log_var [N, 1, H, W])``; the density is
    in cells per pixel, so ``density.sum((1, 2, 3))`` is the count. The density is a ReLU, not a softplus: the
    background must be able to be exactly 0, since a faint positive density on 65,000 background pixels adds up
    to dozens of phantom cells. Taught in chapter 6.
    """

    def __init__(self, in_channels: int = 1, base: int = 16, levels: int = 4, p: float = 0.2,
                 dropout: str = "decoder"):
        super().__init__()
        self.unet = UNet(in_channels, base=base, levels=levels, p=p, dropout=dropout, log_var=False)
        self.unet.head = nn.Identity()          # the U-Net now returns its full-resolution features
        self.levels, self.config = levels, {"in_channels": in_channels, "base": base, "levels": levels, "p": p,
                                            "dropout": dropout}
        self.seg = nn.Conv2d(base, len(CLASSES), 1)
        self.density = PixelLogVarHead(base, 1, init_log_var=-8.0)
        # A positive start keeps the density's ReLU alive on most pixels (an all-negative start never learns).
        nn.init.constant_(self.density.value.bias, 0.1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.unet(x)
        d, s = self.density(h)
        return self.seg(h), F.relu(d) / DENSITY_SCALE, s.clamp(-25.0, 5.0)


# --------------------------------------------------------------------------------------------------- targets
def normalise(image: np.ndarray) -> np.ndarray:
    """Stretch an image so that its 1st percentile is 0 and its 99.8th is 1 (clipped at 1.5): fluorescence
    images from different microscopes and exposures then share one range."""
    lo, hi = np.percentile(image, [1.0, 99.8])
    return np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1.5).astype(np.float32)


def seg_target(labels: np.ndarray) -> np.ndarray:
    """Three classes from a label image: 0 background, 1 interior, 2 the nucleus' own one-pixel rim (so that
    touching nuclei are separated by two rims)."""
    from skimage.segmentation import find_boundaries

    out = (labels > 0).astype(np.int64)
    out[find_boundaries(labels, mode="inner") & (labels > 0)] = 2
    return out


def density_target(centres: np.ndarray, shape: tuple[int, int], sigma: float = 3.0) -> np.ndarray:
    """A unit Gaussian (σ = ``sigma`` px) at every centre; ``reflect`` borders keep each cell's mass inside the
    image, so the map sums to the count."""
    d = np.zeros(shape, np.float64)
    if len(centres):
        rc = np.clip(np.round(centres).astype(int), 0, np.array(shape) - 1)
        np.add.at(d, (rc[:, 0], rc[:, 1]), 1.0)
    return ndi.gaussian_filter(d, sigma, mode="reflect").astype(np.float32)


@dataclass
class Prepared:
    """The training arrays of a set of images: normalised images, class maps (``-1`` where unlabelled) and
    density maps, each a list of H×W arrays (images may differ in size)."""

    x: list[np.ndarray]
    seg: list[np.ndarray]
    density: list[np.ndarray]
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0))


def prepare(cells: Sequence, sigma: float = 3.0, scale: float = 1.0) -> Prepared:
    """Normalised images and targets of :class:`~helpers.data.cells.CellImage` s, resized by ``scale``."""
    xs, segs, dens = [], [], []
    for c in cells:
        img, labels, centres = c.image, c.labels, c.centres
        if scale != 1.0:
            img, labels, centres = rescale(c, scale)
        xs.append(normalise(img))
        segs.append(seg_target(labels) if labels is not None else np.full(img.shape, -1, np.int64))
        dens.append(density_target(centres, img.shape, sigma))
    return Prepared(xs, segs, dens, np.array([c.count for c in cells]))


def rescale(c, scale: float):
    """A cell image, its labels (nearest) and centres resized by ``scale``."""
    from skimage.transform import rescale as sk_rescale

    img = sk_rescale(c.image, scale, order=1, anti_aliasing=scale < 1, preserve_range=True).astype(np.float32)
    labels = None
    if c.labels is not None:
        labels = sk_rescale(c.labels, scale, order=0, anti_aliasing=False, preserve_range=True).astype(np.int32)
    return img, labels, c.centres * scale


# --------------------------------------------------------------------------------------------------- training
def counting_loss(out, seg: torch.Tensor, density: torch.Tensor, *, seg_weight: float = 1.0,
                  count_weight: float = 0.1, l1_weight: float = 0.1) -> dict[str, torch.Tensor]:
    """The three terms of chapter 6's loss for a batch of crops: class-weighted cross-entropy of the segmentation
    (boundary ×3, unlabelled pixels ``-1`` ignored), the squared error of the density ×``DENSITY_SCALE``, and the
    Gaussian negative log-likelihood of each crop's count under the variance Σ exp(s) (its mean detached, so
    this term trains only the variance), and ``l1_weight`` × the absolute error of each crop's count (``count_l1``: a
    small density on every background pixel adds up to many cells, which the per-pixel error barely sees).
    Returns the terms and their weighted ``total``."""
    seg_logits, d, s = out
    weights = torch.tensor([1.0, 1.0, 3.0], device=seg_logits.device)
    if (seg >= 0).any():
        ce = F.cross_entropy(seg_logits, seg, weight=weights, ignore_index=-1)
    else:
        ce = seg_logits.sum() * 0.0
    mse = ((d - density) * DENSITY_SCALE).pow(2).mean()
    count, true = d.sum((1, 2, 3)), density.sum((1, 2, 3))
    log_var = torch.logsumexp(s.flatten(1), 1)                   # log Σ exp(s), stable
    nll = gaussian_nll(count.detach(), log_var, true)
    l1 = (count - true).abs().mean()
    return {"seg": ce, "density": mse, "count_l1": l1, "count_nll": nll,
            "total": seg_weight * ce + mse + l1_weight * l1 + count_weight * nll}


def crop_sampler(data: Prepared, size: int, rng: np.random.Generator):
    """A function ``batch(n)`` of random ``size``-pixel crops (random flips and 90° turns) as tensors."""
    def one(i: int):
        x, sg, de = data.x[i], data.seg[i], data.density[i]
        h, w = x.shape
        if h < size or w < size:   # small images: pad with background (no cells there)
            ph, pw = max(size - h, 0), max(size - w, 0)
            x = np.pad(x, ((0, ph), (0, pw)))
            sg = np.pad(sg, ((0, ph), (0, pw)), constant_values=0 if (sg >= 0).any() else -1)
            de = np.pad(de, ((0, ph), (0, pw)))
            h, w = x.shape
        r, c = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        k, flip = rng.integers(0, 4), rng.integers(0, 2)
        out = []
        for a in (x, sg, de):
            a = np.rot90(a[r:r + size, c:c + size], k)
            out.append(np.ascontiguousarray(a[:, ::-1] if flip else a))
        return out

    def batch(n: int):
        parts = [one(int(i)) for i in rng.integers(0, len(data.x), n)]
        x = torch.from_numpy(np.stack([p[0] for p in parts]))[:, None]
        seg = torch.from_numpy(np.stack([p[1] for p in parts]))
        de = torch.from_numpy(np.stack([p[2] for p in parts]))[:, None]
        return x, seg, de

    return batch


def recipe(profile: str | None = None) -> dict:
    """The training recipe of chapter 6 and ``python -m helpers cells`` for the active profile. Checkpoints store
    it (see :func:`load_counter`)."""
    from helpers.config import pick

    return {"steps": pick(500, 4000, profile), "crop": pick(96, 192, profile), "batch": 8, "lr": 3e-3,
            "base": pick(8, 32, profile), "levels": 4, "p": 0.2, "dropout": "decoder", "sigma": 3.0,
            "T": pick(8, 32, profile), "seed": 0}


def train_counter(model: CountingUNet, data: Prepared, *, steps: int, crop: int = 128, batch: int = 8,
                  lr: float = 3e-3, seed: int = 0, progress: bool = True) -> dict[str, list[float]]:
    """Train on random crops (Adam, one-cycle learning rate). Returns curves of the three loss terms, averaged
    over every tenth of the run. Taught in chapter 6."""
    from tqdm.auto import tqdm

    from helpers.config import get_device

    device = get_device()
    model.to(device)
    rng = np.random.default_rng(seed)
    sample = crop_sampler(data, crop, rng)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    curves: dict[str, list[float]] = {"step": [], "seg": [], "density": [], "count_nll": []}
    running: dict[str, list[float]] = {k: [] for k in ("seg", "density", "count_nll")}
    every = max(1, steps // 10)
    bar = tqdm(range(1, steps + 1), desc="training", disable=config.no_progress(progress))
    for step in bar:
        model.train()
        x, seg, de = (t.to(device) for t in sample(batch))
        terms = counting_loss(model(x), seg, de)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        opt.step()
        sched.step()
        for k in running:
            running[k].append(float(terms[k].detach()))
        if step % every == 0 or step == steps:
            curves["step"].append(step)
            for k in running:
                curves[k].append(float(np.mean(running[k])))
                running[k] = []
            bar.set_postfix(seg=f"{curves['seg'][-1]:.3f}", density=f"{curves['density'][-1]:.3f}")
    model.eval()
    return curves


# --------------------------------------------------------------------------------------------------- prediction
def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Remove labelled pieces with fewer than ``min_size`` pixels and relabel the rest 1..n."""
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    keep[0] = False
    ids = np.cumsum(keep) * keep
    return ids[labels].astype(np.int32)


def instances_from_probs(probs: np.ndarray, min_size: int = 4) -> np.ndarray:
    """Nuclei from the class probabilities ``[3, H, W]``: seeds are the connected interiors (pixels whose most
    probable class is interior), grown by a watershed on the interior probability into the foreground
    (background probability < 0.5);
    foreground blobs without a seed become nuclei of their own; pieces under ``min_size`` pixels are dropped."""
    from skimage.segmentation import watershed

    interior, fg = (probs[1] > probs[0]) & (probs[1] > probs[2]), probs[0] < 0.5
    seeds = _drop_small(ndi.label(interior)[0], min_size)
    labels = watershed(-probs[1], seeds, mask=fg) if seeds.max() else np.zeros(fg.shape, np.int64)
    rest = ndi.label(fg & (labels == 0))[0]
    labels = np.where(rest > 0, rest + labels.max(), labels)
    return _drop_small(labels, min_size)


def foreground_components(probs: np.ndarray, min_size: int = 4) -> np.ndarray:
    """The naive alternative: connected components of the foreground (background probability < 0.5). Touching
    nuclei merge into one component, so it undercounts."""
    return _drop_small(ndi.label(probs[0] < 0.5)[0], min_size)


@dataclass
class CountPrediction:
    """Everything chapter 6 reads from one image: maps ``H×W`` and the count with its uncertainty.

    ``probs [3, H, W]`` mean class probabilities; ``instances`` label image; ``density`` mean density map;
    ``epistemic`` per-pixel variance of the density over MC samples; ``aleatoric`` per-pixel exp(s) (its sum is
    the count's aleatoric variance); ``seg_mi`` mutual information of the segmentation (epistemic, nats);
    ``counts`` the T MC counts; ``count`` their mean; ``var_epistemic``, ``var_aleatoric``; ``std`` the
    predictive standard deviation; ``seg_count`` the number of instances."""

    probs: np.ndarray
    instances: np.ndarray
    density: np.ndarray
    epistemic: np.ndarray
    aleatoric: np.ndarray
    seg_mi: np.ndarray
    counts: np.ndarray
    count: float
    var_epistemic: float
    var_aleatoric: float

    @property
    def std(self) -> float:
        return math.sqrt(self.var_epistemic + self.var_aleatoric)

    @property
    def seg_count(self) -> int:
        return int(self.instances.max())


@torch.no_grad()
def predict_counts(model: CountingUNet, images: Sequence[np.ndarray], *, T: int = 16, chunk_size: int = 4,
                   progress: bool = False) -> list[CountPrediction]:
    """MC-dropout prediction of every normalised image (H×W): ``T`` stochastic passes each (BatchNorm in eval
    mode), summarised as a :class:`CountPrediction`. Seed torch before calling for reproducible masks."""
    from tqdm.auto import tqdm

    from helpers.config import get_device
    from helpers.uncertainty import classification_summary, dropout_modules, mc_samples

    device = next(model.parameters()).device if any(True for _ in model.parameters()) else get_device()
    model.eval()
    out = []
    for img in tqdm(images, desc="MC prediction", disable=config.no_progress(progress)):
        x, (h, w) = pad_to_multiple(torch.as_tensor(img, dtype=torch.float32)[None, None].to(device),
                                    2 ** (model.levels - 1))
        def both(o):
            return torch.cat([o[0].softmax(1), o[1], o[2]], 1)

        if dropout_modules(model):
            s = mc_samples(model, x, T, chunk_size=chunk_size, transform=both)[:, 0, :, :h, :w]
        else:  # no dropout: one deterministic pass, no epistemic spread
            s = both(model(x))[:, :, :h, :w]
        probs, dens, logv = s[:, :3], s[:, 3], s[:, 4]
        summary = classification_summary(probs[:, None])
        counts = dens.sum((1, 2)).double()
        mean_probs = summary["mean"][0].cpu().numpy()
        out.append(CountPrediction(
            probs=mean_probs, instances=instances_from_probs(mean_probs), density=dens.mean(0).cpu().numpy(),
            epistemic=dens.var(0, unbiased=False).cpu().numpy(), aleatoric=logv.exp().mean(0).cpu().numpy(),
            seg_mi=summary["mutual_information"][0].cpu().numpy(), counts=counts.cpu().numpy(),
            count=float(counts.mean()), var_epistemic=float(counts.var(unbiased=False)),
            var_aleatoric=float(logv.flatten(1).exp().sum(1).double().mean())))
    return out


class CountScore(nn.Module):
    """The count of a (crop of an) image as a scalar model ``[N, 1]``, optionally only inside ``region``:
    the integral of the density map, for saliency (chapter 6 uses chapter 3's :func:`helpers.saliency.attribute`)."""

    def __init__(self, model: CountingUNet, region: torch.Tensor | None = None):
        super().__init__()
        self.model, self.region = model, region

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.model(x)[1]
        if self.region is not None:
            d = d * self.region.to(d.dtype)
        return d.sum((2, 3))


# --------------------------------------------------------------------------------------------------- checkpoints
def save_counter(model: CountingUNet, path, **meta) -> None:
    """Save weights, constructor arguments and ``meta`` (plain numbers, strings, lists)."""
    save_model(model, path, model.config, **meta)


def load_counter(path, recipe: dict | None = None) -> tuple[CountingUNet, dict]:
    """Load a :func:`save_counter` checkpoint with ``torch.load(weights_only=True)``; with ``recipe``, refuse
    (:class:`DataError`) one trained with another recipe."""
    return load_model(path, CountingUNet, what="cell-counting", recipe=recipe)


__all__ = ["CLASSES", "DENSITY_SCALE", "CountPrediction", "CountScore", "CountingUNet", "Prepared",
           "counting_loss", "crop_sampler", "density_target", "foreground_components", "instances_from_probs",
           "load_counter", "normalise", "predict_counts", "prepare", "recipe", "save_counter", "seg_target",
           "train_counter"]
