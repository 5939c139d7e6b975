"""A plain, readable training loop for image classifiers, shared by the chapters that train one.

Taught in the tour (chapter 0); chapters 3 and 5 train their classifiers the same way.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from helpers.config import get_device
from helpers import config


def random_flips(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image of a batch ``[N, C, H, W]`` left-right with probability ½ (a safe augmentation for
    frontal chest X-rays and fundus photographs; never flip when laterality matters)."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None, None, None].to(x.device), x.flip(-1), x)


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int = 32,
                     lr: float = 1e-3, weight_decay: float = 1e-4, augment: Callable | None = random_flips,
                     optimizer: str = "adam", one_cycle: bool = False, seed: int = 0, progress: bool = True,
                     desc: str = "training") -> list[float]:
    """Train ``model`` (logits ``[N, C]``) with cross-entropy; return the mean loss of each epoch.

    ``x``: images ``[N, C, H, W]``, ``y``: class indices ``[N]``. ``optimizer``: ``"adam"`` (weight decay as an
    L2 term) or ``"adamw"`` (decoupled weight decay); ``one_cycle=True`` ramps the learning rate up to ``lr`` and
    back down over the whole run (one-cycle schedule), which trains small CNNs in few epochs. The model is left
    in eval mode.
    """
    device = get_device()
    model.to(device).train()
    optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    opt = optimizers[optimizer](model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps) if one_cycle else None
    gen = torch.Generator().manual_seed(seed)
    history = []
    bar = tqdm(range(epochs), desc=desc, disable=config.no_progress(progress))
    for _ in bar:
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            xb, yb = x[idx], y[idx]
            if augment is not None:
                xb = augment(xb, gen)
            loss = nn.functional.cross_entropy(model(xb.to(device)), yb.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total += loss.item() * len(idx)
        history.append(total / len(x))
        bar.set_postfix(loss=f"{history[-1]:.3f}")
    model.eval()
    return history


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits of ``model`` in eval mode for ``x``, in batches, on the CPU."""
    device = get_device()
    model.eval()
    return torch.cat([model(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
