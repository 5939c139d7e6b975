"""The first visible cell of every chapter: seed, style and a one-line report of what runs where."""

from __future__ import annotations

import torch

from helpers import config
from helpers.plots.style import use_book_style


def _quiet_progress_bars() -> None:
    """When ``$TQDM_DISABLE`` is set (the book's build), switch every tqdm bar off, the notebook's widget bars
    included: tqdm reads the variable in plain Python but not in ``tqdm.notebook``, whose bars would otherwise
    reach the website as dead widgets."""
    if not config.no_progress(True):
        return
    import tqdm.notebook
    import tqdm.std

    for cls in (tqdm.std.tqdm, tqdm.notebook.tqdm_notebook):
        if cls.__dict__.get("_book_quiet"):
            continue
        original = cls.__init__

        def init(self, *args, _original=original, **kwargs):
            kwargs["disable"] = True
            _original(self, *args, **kwargs)

        cls.__init__ = init
        cls._book_quiet = True


def setup(seed: int = 0) -> None:
    """Seed everything, apply the book's figure style and print the profile, device and versions."""
    _quiet_progress_bars()
    config.seed_everything(seed)
    use_book_style()
    line = (f"profile: {config.get_profile()} (set {config.PROFILE_ENV}=full for published-quality numbers) | "
            f"device: {config.get_device()} | torch {torch.__version__} | seed {seed}")
    print(line)
