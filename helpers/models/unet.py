"""A compact U-Net for vessel segmentation, with MC dropout where it carries information and a per-pixel
log-variance output (aleatoric uncertainty). Taught in chapter 4.

The network follows Ronneberger et al. (2015) with nine convolution blocks: four on the way down, one at the
bottom, four on the way up, joined by skip connections. Each block is two 3×3 convolutions with batch
normalisation and ReLU. Dropout (``nn.Dropout2d``, whole feature maps) is placed by ``dropout``:

``"decoder"``     before every up-block, down to full resolution (the default: MC samples then differ at
                  the resolution of thin vessels);
``"bottleneck"``  only in the deepest (lowest-resolution) blocks, the common placement that gives almost no
                  MC spread;
``"all"``         before every block; ``"none"``: no dropout (no MC sampling possible).

With ``log_var=True`` the forward pass returns ``(logits, log_var)``: the logit and the log of a per-pixel
logit-noise variance, trained with the logit-noise loss of Kendall & Gal (2017).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import numpy as np

import torch
from torch import nn
from torch.nn import functional as F

from helpers.errors import BookError
from helpers.losses import binary_logit_noise_loss, soft_dice_loss
from helpers.models.heads import PixelLogVarHead
from helpers.uncertainty import classification_summary, mc_samples, rows_per_pass
from helpers import config

PLACEMENTS = ("decoder", "bottleneck", "all", "none")


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3×3 convolutions, each followed by batch normalisation and ReLU (one U-Net block)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True))


class UNet(nn.Module):
    """U-Net with ``levels`` resolutions (``levels=5``: the nine-block network), ``base`` channels at full
    resolution doubling per level, dropout rate ``p`` placed by ``dropout`` (see the module docstring).

    ``forward(x)`` returns logits ``[N, 1, H, W]``, or ``(logits, log_var)`` with ``log_var=True``. H and W must
    be multiples of ``2 ** (levels - 1)`` (see :func:`pad_to_multiple`). Taught in chapter 4.
    """

    def __init__(self, in_channels: int = 1, base: int = 16, levels: int = 5, p: float = 0.1,
                 dropout: str = "decoder", log_var: bool = True):
        super().__init__()
        if dropout not in PLACEMENTS:
            raise BookError(f"dropout={dropout!r}: use one of {', '.join(PLACEMENTS)}")
        self.levels, self.p, self.placement, self.has_log_var = levels, p, dropout, log_var
        widths = [base * 2 ** i for i in range(levels)]

        def drop(where: str, deep: bool) -> nn.Module:
            on = (dropout == "all" or dropout == where or (dropout == "bottleneck" and deep)) and p > 0
            return nn.Dropout2d(p) if on else nn.Identity()

        self.down = nn.ModuleList()
        for i, w in enumerate(widths[:-1]):
            self.down.append(nn.Sequential(drop("encoder", i == levels - 2), conv_block(widths[i - 1] if i else
                                                                                       in_channels, w)))
        self.bottom = nn.Sequential(drop("bottleneck", True), conv_block(widths[-2], widths[-1]))
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                for i in reversed(range(levels - 1)))
        self.dec = nn.ModuleList(nn.Sequential(drop("decoder", i == levels - 2), conv_block(2 * widths[i],
                                                                                            widths[i]))
                                 for i in reversed(range(levels - 1)))
        self.head = PixelLogVarHead(widths[0], 1) if log_var else nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor):
        return self.decode(*self.encode(x))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The way down and the bottom block: the bottom features and the skip connections (finest first)."""
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        return self.bottom(x), skips

    def decode(self, x: torch.Tensor, skips: list[torch.Tensor]):
        """The way up from :meth:`encode`'s outputs to the output (``forward = decode(*encode(x))``)."""
        skips = list(skips)
        for up, block in zip(self.up, self.dec):
            x = block(torch.cat([up(x), skips.pop()], 1))
        if self.has_log_var:
            logits, log_var = self.head(x)  # chapter 2's per-pixel head
            return logits, log_var.clamp(-10.0, 10.0)
        return self.head(x)


def logits_of(output) -> torch.Tensor:
    """The logits of a model output that is either a tensor or ``(logits, log_var)``."""
    return output[0] if isinstance(output, tuple) else output


def pad_to_multiple(x: torch.Tensor, multiple: int = 16) -> tuple[torch.Tensor, tuple[int, int]]:
    """Zero-pad ``x [N, C, H, W]`` at the bottom and right to multiples of ``multiple``; returns the original
    ``(H, W)`` to crop the output back with ``y[..., :H, :W]``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph)), (h, w)


def segmentation_loss(output, target: torch.Tensor, fov: torch.Tensor, *, aleatoric_weight: float = 1.0,
                      T: int = 20, bce_weight: float = 0.0) -> torch.Tensor:
    """Soft Dice loss of the vessel probabilities inside the field of view (Milletari et al. 2016), plus, for a
    model with a log-variance output, ``aleatoric_weight`` times the logit-noise loss of Kendall & Gal (2017)
    with ``T`` noise samples, also inside the field of view, plus ``bce_weight`` times the plain binary
    cross-entropy there. Taught in chapter 4."""
    logits = logits_of(output)
    loss = soft_dice_loss(torch.sigmoid(logits), target, mask=fov)
    if bce_weight > 0:
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        loss = loss + bce_weight * (bce * fov).sum() / fov.sum().clamp_min(1.0)
    if isinstance(output, tuple) and aleatoric_weight > 0:
        loss = loss + aleatoric_weight * binary_logit_noise_loss(logits, output[1], target, T=T, mask=fov)
    return loss


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, T: int = 20, chunk_size: int = 4,
            modules: list[nn.Module] | None = None) -> dict[str, torch.Tensor]:
    """Vessel probabilities and uncertainty maps of ``model`` for images ``x [N, 1, H, W]`` (padded inside).

    Returns ``single`` (one deterministic pass, dropout off), ``single_entropy`` (its binary entropy, the free
    baseline), and from ``T`` MC-dropout passes: ``probs`` (the mean), ``entropy`` (predictive entropy),
    ``mutual_information`` (epistemic, BALD), and, with a log-variance output, ``logit_variance`` (the mean
    predicted σ² of the logit noise) and ``aleatoric``: that variance carried to the probability by the delta
    method, Var[sigmoid(f + σε)] ≈ (p(1 − p))² σ², averaged over the MC samples. Where the logit is large the
    probability is saturated and logit noise does not matter; ``aleatoric`` says so, ``logit_variance`` does not.
    ``modules`` restricts MC dropout to some dropout modules (the others stay off); a model without dropout
    gets its single pass as the one "sample" (mutual information 0). ``chunk_size``: MC samples (copies of the
    images) per pass; on a CPU, 1 is the fastest for full-resolution fundus images (memory traffic).
    All maps are ``[N, 1, H, W]``. Taught in chapter 4.
    """
    xp, (h, w) = pad_to_multiple(x, 2 ** (getattr(model, "levels", 5) - 1))
    was_training = model.training
    model.eval()
    keep = {m: m.p for m in _dropouts(model)}

    def both(o) -> torch.Tensor:
        return torch.cat(o, 1) if isinstance(o, tuple) else o

    try:
        if modules is not None:
            for m in keep:
                m.p = keep[m] if m in modules else 0.0
        # With dropout only on the way up (the default placement) the way down is the same in every MC pass:
        # computed once instead of T + 1 times.
        feats = model.encode(xp) if _deterministic_encoder(model) else None
        out = model(xp) if feats is None else model.decode(*feats)
        single = torch.sigmoid(logits_of(out))[..., :h, :w]
        two = torch.cat([1 - single, single], 1)
        result = {"single": single,
                  "single_entropy": classification_summary(two[None])["predictive_entropy"][:, None]}
        if _dropouts(model) and feats is not None:
            samples = _mc_decode(model, feats, len(xp), T, rows_per_pass(xp, chunk_size), both)[..., :h, :w]
        elif _dropouts(model):
            samples = mc_samples(model, xp, T, chunk_size=chunk_size, transform=both)[..., :h, :w]
        else:  # a network without dropout: its one deterministic pass, zero epistemic spread
            samples = both(out)[None, ..., :h, :w]
    finally:
        for m, p in keep.items():
            m.p = p
    probs = torch.sigmoid(samples[:, :, :1])
    mean = probs.mean(0)
    total, expected = _binary_entropy(mean), _binary_entropy(probs).mean(0)  # = classification_summary's, on
    result.update(probs=mean, entropy=total, samples=probs[:, :, 0],         # [1 - p, p], without the copies
                  mutual_information=(total - expected).clamp_min(0.0))
    if samples.shape[2] == 2:  # logit variance, and propagated to the probability: Var ≈ (p(1 − p))² σ²
        sigma2 = samples[:, :, 1:].exp()
        result["logit_variance"] = sigma2.mean(0)
        result["aleatoric"] = ((probs * (1 - probs)) ** 2 * sigma2).mean(0)
    model.train(was_training)
    return result


def _binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of Bernoulli(p), elementwise: :func:`~helpers.uncertainty.entropy` of ``[1 - p, p]``."""
    q = 1 - p
    return -(q * torch.log(q.clamp_min(1e-12)) + p * torch.log(p.clamp_min(1e-12)))


def _deterministic_encoder(model: nn.Module) -> bool:
    """True for a :class:`UNet` whose dropout modules on the way down and at the bottom are off (``Identity`` or
    rate 0): its :meth:`UNet.encode` is then the same in every MC pass."""
    if not isinstance(model, UNet):
        return False
    return not any(m.p > 0 for part in (model.down, model.bottom) for m in _dropouts(part))


def _mc_decode(model: UNet, feats: tuple[torch.Tensor, list[torch.Tensor]], n: int, T: int, chunk_size: int,
               transform: Callable) -> torch.Tensor:
    """``T`` MC-dropout outputs ``[T, n, ...]`` of ``model.decode`` from the encoder outputs ``feats`` of ``n``
    images. The passes have the batch sizes of :func:`~helpers.uncertainty.mc_samples` with ``chunk_size``, so they
    draw the same dropout masks as ``mc_samples(model, x, T, chunk_size=chunk_size)``."""
    from helpers.uncertainty import mc_dropout

    bottom, skips = feats

    def rows(i: int, j: int, k: int = 1) -> tuple[torch.Tensor, list[torch.Tensor]]:
        def pick(t: torch.Tensor) -> torch.Tensor:  # = t[i:j].repeat(k, 1, 1, 1), keeping the memory format
            return t[i:j] if k == 1 else torch.cat([t[i:j]] * k)
        return pick(bottom), [pick(s) for s in skips]

    out: list[torch.Tensor] = []
    with mc_dropout(model):
        if n >= chunk_size:
            for _ in range(T):
                out.append(torch.cat([transform(model.decode(*rows(i, i + chunk_size)))
                                      for i in range(0, n, chunk_size)])[None])
        else:
            done = 0
            while done < T:
                k = min(max(1, chunk_size // n), T - done)
                y = transform(model.decode(*rows(0, n, k)))
                out.append(y.reshape(k, n, *y.shape[1:]))
                done += k
    return torch.cat(out)


@torch.no_grad()
def predict_flipped(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Test-time augmentation: the mean vessel probability of ``model`` (dropout off) over the input and its
    horizontal, vertical and double flips, each flipped back, ``[N, 1, H, W]``. A retina has no preferred
    orientation, so the four predictions should agree; averaging them removes orientation-specific errors."""
    xp, (h, w) = pad_to_multiple(x, 2 ** (getattr(model, "levels", 5) - 1))
    was_training = model.training
    model.eval()
    total = torch.zeros_like(xp[:, :1])
    for dims in ((), (-1,), (-2,), (-2, -1)):
        flip = (lambda t: t.flip(dims)) if dims else (lambda t: t)
        total += flip(torch.sigmoid(logits_of(model(flip(xp)))))
    model.train(was_training)
    return (total / 4)[..., :h, :w]


def _dropouts(model: nn.Module) -> list[nn.Module]:
    from helpers.uncertainty import dropout_modules

    return dropout_modules(model)


def dropout_groups(model: UNet) -> dict[str, list[nn.Module]]:
    """The dropout modules of a :class:`UNet` grouped by place: ``deep`` (the two lowest resolutions) and
    ``shallow`` (the others), to see where the MC spread comes from."""
    groups: dict[str, list[nn.Module]] = {"deep": [], "shallow": []}
    for i, block in enumerate(model.down):
        if isinstance(block[0], nn.Dropout2d):
            groups["deep" if i == model.levels - 2 else "shallow"].append(block[0])
    if isinstance(model.bottom[0], nn.Dropout2d):
        groups["deep"].append(model.bottom[0])
    for i, block in enumerate(model.dec):
        if isinstance(block[0], nn.Dropout2d):
            groups["deep" if i == 0 else "shallow"].append(block[0])
    return groups


def train_unet(model: nn.Module, x: torch.Tensor, y: torch.Tensor, fov: torch.Tensor, *, steps: int,
               patch: int = 128, batch: int = 8, lr: float = 3e-3, generator: torch.Generator | None = None,
               val: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None, eval_every: int = 25,
               progress: bool = True, bce_weight: float = 0.0,
               loss_fn: Callable | None = None) -> dict[str, list[float]]:
    """Train on random augmented ``patch``×``patch`` crops (Adam, one-cycle learning rate) for ``steps`` steps,
    minimising ``loss_fn`` (default: :func:`segmentation_loss` with ``bce_weight``).

    Returns the learning curves: ``step``, ``train_dice_loss`` (soft Dice loss of the training batches, mean
    since the last evaluation) and, with ``val``, ``val_dice_loss`` (on the full validation images, dropout
    off). Taught in chapter 4.
    """
    from tqdm.auto import tqdm

    from helpers.data.retina import augment, patch_sampler
    gen = generator or torch.Generator().manual_seed(0)
    if loss_fn is None:
        def loss_fn(out, target, fov):
            return segmentation_loss(out, target, fov, bce_weight=bce_weight)
    multiple = 2 ** (getattr(model, "levels", 5) - 1)
    patch = max(multiple, min(patch, min(x.shape[-2:]) // multiple * multiple))  # small images: smaller crops
    model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    curves: dict[str, list[float]] = {"step": [], "train_dice_loss": [], "val_dice_loss": []}
    running: list[float] = []
    sample = patch_sampler((x, y, fov), patch)
    bar = tqdm(range(1, steps + 1), desc="training", disable=config.no_progress(progress))
    for step in bar:
        model.train()
        xb, yb, fb = augment(sample(batch, gen), gen)
        out = model(xb.contiguous(memory_format=torch.channels_last))
        loss = loss_fn(out, yb, fb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            running.append(float(soft_dice_loss(torch.sigmoid(logits_of(out)), yb, mask=fb)))
        if step % eval_every == 0 or step == steps:
            curves["step"].append(step)
            curves["train_dice_loss"].append(sum(running) / len(running))
            running = []
            if val is not None:
                curves["val_dice_loss"].append(dice_loss_of(model, *val))
            bar.set_postfix(train=f"{curves['train_dice_loss'][-1]:.3f}",
                            val=f"{curves['val_dice_loss'][-1]:.3f}" if val is not None else "-")
    model.eval()
    return curves


@torch.no_grad()
def dice_loss_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor, fov: torch.Tensor) -> float:
    """Soft Dice loss of ``model`` (eval mode) on full images, averaged over images."""
    was = model.training
    model.eval()
    xp, (h, w) = pad_to_multiple(x, 2 ** (getattr(model, "levels", 5) - 1))
    probs = torch.cat([torch.sigmoid(logits_of(model(xp[i:i + 2])))[..., :h, :w] for i in range(0, len(x), 2)])
    model.train(was)
    return float(soft_dice_loss(probs, y, mask=fov))


__all__ = ["PLACEMENTS", "UNet", "conv_block", "dice_loss_of", "dropout_groups", "logits_of", "pad_to_multiple",
           "predict", "predict_flipped", "predict_images", "recipe", "save_checkpoint", "load_checkpoint",
           "segmentation_loss", "train_unet"]


def recipe(profile: str | None = None) -> dict:
    """The training recipe of chapter 4 and ``python -m helpers retina`` for the active profile: image
    ``scale``, ``steps`` of Adam on ``batch`` random ``patch``-pixel crops at learning rate ``lr``, the weight
    ``bce_weight`` of the cross-entropy term of :func:`segmentation_loss`, the U-Net's ``base`` width, dropout rate
    ``p`` and placement, ``T`` MC samples at test time, and the training ``seed``. Checkpoints store the recipe
    they were trained with (see :func:`load_checkpoint`)."""
    from helpers.config import pick

    return {"scale": pick(0.5, 1.0, profile), "steps": pick(300, 3000, profile), "patch": pick(128, 128, profile),
            "batch": 8, "lr": 3e-3, "bce_weight": 1.0, "base": 16, "p": 0.2, "dropout": "decoder",
            "T": pick(16, 32, profile), "seed": 0}


# ------------------------------------------------------------------------------------ whole images, checkpoints
@torch.no_grad()
def predict_images(model: nn.Module, samples: list, *, scale: float = 1.0, T: int = 20, chunk_size: int = 4,
                   progress: bool = False, flips: bool = False) -> list[dict[str, "np.ndarray"]]:
    """:func:`predict` for each :class:`~helpers.data.retina.RetinaImage`, run at ``scale`` and resized back to
    the image's own size (bilinear), as NumPy ``H×W`` maps; the MC ``samples`` are dropped. Metrics are then
    computed against the original, full-resolution masks. ``flips=True`` adds ``flipped``, the
    :func:`predict_flipped` probability. Taught in chapter 4."""
    from tqdm.auto import tqdm

    from helpers.data.retina import to_tensors

    device = next(model.parameters()).device
    out = []
    for s in tqdm(samples, desc="MC prediction", disable=config.no_progress(progress)):
        x, _, _ = to_tensors([s], scale)
        maps = predict(model, x.to(device), T=T, chunk_size=chunk_size)
        maps.pop("samples")
        if flips:  # test-time augmentation: the flip-averaged probability, dropout off
            maps["flipped"] = predict_flipped(model, x.to(device))
        out.append({k: F.interpolate(v.float().cpu(), size=s.shape, mode="bilinear", align_corners=False
                                     )[0, 0].numpy() for k, v in maps.items()})
    return out


def save_checkpoint(model: UNet, path, **meta) -> None:
    """Save a :class:`UNet`'s weights, its constructor arguments and ``meta`` (plain numbers and strings)."""
    from helpers.models.checkpoint import save_model

    config = {"base": model.down[0][1][0].out_channels, "levels": model.levels, "p": model.p,
              "dropout": model.placement, "log_var": model.has_log_var,
              "in_channels": model.down[0][1][0].in_channels}
    save_model(model, path, config, **meta)


def load_checkpoint(path, recipe: dict | None = None) -> tuple[UNet, dict]:
    """Load a checkpoint written by :func:`save_checkpoint` (``torch.load(weights_only=True)``: no code runs).
    With ``recipe``, a checkpoint whose stored ``recipe`` differs (or is missing) raises :class:`DataError`, so
    that a cache is never silently reused after the recipe changed."""
    from helpers.models.checkpoint import load_model

    return load_model(path, UNet, what="U-Net", recipe=recipe)
