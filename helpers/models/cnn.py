"""A small convolutional classifier for 1-channel (or RGB) medical images, with dropout for MC dropout.

Taught in chapter 3 (the model whose saliency maps we check; section "Saliency meets uncertainty" uses its
dropout modules with :func:`helpers.uncertainty.mc_dropout`).
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
    the Grad-CAM layer (see :attr:`cam_layer`), ``nn.Dropout2d`` (rate ``p_conv``) after the last block and
    ``nn.Dropout`` (rate ``p``) before the classifier give MC dropout something to sample. Output: logits ``[N, C]``.
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
        self.head = nn.Sequential(nn.Dropout2d(p_conv), _POOLS[pool](1), nn.Flatten(), nn.Dropout(p),
                                  nn.Linear(c_in, n_classes))

    @property
    def cam_layer(self) -> nn.Module:
        """Grad-CAM's layer: the last block's ReLU (rectified feature maps, as Selvaraju et al. use), unpooled,
        so its maps are H / 2^(depth−1) pixels high."""
        return [m for m in self.features if isinstance(m, nn.ReLU)][-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


__all__ = ["SmallCNN"]
