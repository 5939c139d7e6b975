"""The first visible cell of every chapter: seed, style and a one-line report of what runs where."""

from __future__ import annotations

import torch

from helpers import config
from helpers.plots.style import use_book_style


def setup(seed: int = 0) -> None:
    """Seed everything, apply the book's figure style and print the profile, device and versions."""
    config.seed_everything(seed)
    use_book_style()
    line = (f"profile: {config.get_profile()} (set {config.PROFILE_ENV}=full for published-quality numbers) | "
            f"device: {config.get_device()} | torch {torch.__version__} | seed {seed}")
    print(line)
