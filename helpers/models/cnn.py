"""A small convolutional classifier for 1-channel (or RGB) medical images, with dropout for MC dropout.

Taught in the tour (the chest X-ray classifier, sampled with MC dropout on its head only) and in chapter 3 (the
model whose saliency maps we check; section "Saliency meets uncertainty" uses its dropout modules with
:func:`helpers.uncertainty.mc_dropout`).
"""

from __future__ import annotations

import torch
from torch import nn

from helpers.errors import BookError


_POOLS = {"max": nn.AdaptiveMaxPool2d, "avg": nn.AdaptiveAvgPool2d}


class SmallCNN(nn.Module):
    """``depth`` blocks of Conv3×3 → BatchNorm → ReLU → MaxPool2, global pooling, dropout, linear.

    Global max pooling (default) suits "is there a finding anywhere?" tasks and trains fast; ``pool="avg"`` is
    the usual global average pooling.

    Every ReLU is an ``nn.ReLU`` module (guided backpropagation needs modules), the last block's ReLU is
    the Grad-CAM layer (see :attr:`cam_layer`), channel dropout ``nn.Dropout2d`` (rate ``p_conv``) on the last
    block's feature maps and ``nn.Dropout`` (rate ``p``) before the classifier give MC dropout something to
    sample. Output: logits ``[N, C]``.

    All dropout sits in :attr:`head`, after the global pooling, so MC dropout only needs to sample
    :attr:`mc_head`: ``mc_predict(model.mc_head, model.pooled_features(x), T)`` equals
    ``mc_predict(model, x, T)`` (the same masks under the same seed, the same numbers) for the cost of one pass
    through the convolutions (``mc_predict(model.head, model.features(x), T)`` too, at more cost). The channel
    dropout runs *after* the global pooling: dropping channel c multiplies its map by 0 or 1/(1 − p_conv), which
    commutes with max and mean pooling, so this is the network with dropout before pooling (the same random
    draws, one per image and channel), applied to ``[N, C, 1, 1]`` instead of ``[N, C, H, W]``.
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 2, width: int = 16, depth: int = 3,
                 p: float = 0.3, p_conv: float = 0.1, pool: str = "max") -> None:
        super().__init__()
        if pool not in _POOLS:
            raise BookError(f"pool={pool!r}: use 'max' (detecting a local finding) or 'avg'")
        blocks: list[nn.Module] = []
        c_in = in_channels
        for i in range(depth):
            c_out = width * 2 ** i
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            if i < depth - 1:
                blocks.append(nn.MaxPool2d(2))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(_POOLS[pool](1), nn.Dropout2d(p_conv), nn.Flatten(), nn.Dropout(p),
                                  nn.Linear(c_in, n_classes))

    @property
    def cam_layer(self) -> nn.Module:
        """Grad-CAM's layer: the last block's ReLU (rectified feature maps, as Selvaraju et al. use), unpooled,
        so its maps are H / 2^(depth−1) pixels high."""
        return [m for m in self.features if isinstance(m, nn.ReLU)][-1]

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic part of the network: features after global pooling, ``[N, C, 1, 1]``."""
        return self.head[0](self.features(x))

    @property
    def mc_head(self) -> nn.Sequential:
        """The part MC dropout samples (channel dropout, dropout, linear), applied to :meth:`pooled_features`;
        it shares its modules with :attr:`head`. Taught in the tour."""
        return self.head[1:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


__all__ = ["SmallCNN"]
