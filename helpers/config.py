"""Settings every chapter reads through one place: profile, seed, device and data directory.

Taught in the tour (chapter 0): the ``BOOK_PROFILE`` switch.

Environment variables
---------------------
``BOOK_PROFILE``   ``quick`` (default: minutes on a laptop CPU; what the website and CI run) or ``full``
                   (published-quality numbers; slower, a GPU helps).
``BOOK_DATA_DIR``  a folder holding the book's sample data (``chase_db1/``, ``chest_xray/``, ``uci/``); by default
                   the ``data/`` folder of a repository checkout, else a download cache (see :mod:`helpers.data`).
``BOOK_DEVICE``    ``cpu``, ``cuda`` or ``mps``; by default the first available of cuda, mps, cpu.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from helpers.errors import BookError

Profile = Literal["quick", "full"]
PROFILES: tuple[str, ...] = ("quick", "full")
PROFILE_ENV = "BOOK_PROFILE"
DATA_DIR_ENV = "BOOK_DATA_DIR"
DEVICE_ENV = "BOOK_DEVICE"
#: The repository the book lives in. ``_config.yml`` is the source of truth; a test checks this copy agrees.
REPOSITORY_URL = "https://github.com/trustworthy-medimg/trustworthy-medimg-book"


def get_profile(profile: str | None = None) -> Profile:
    """Return the active profile: the argument if given, else ``$BOOK_PROFILE``, else ``"quick"``."""
    value = (profile or os.environ.get(PROFILE_ENV) or "quick").strip().lower()
    if value not in PROFILES:
        raise BookError(f"{PROFILE_ENV}={value!r}: unknown profile; use one of {', '.join(PROFILES)}")
    return value  # type: ignore[return-value]


def pick(quick, full, profile: str | None = None):
    """Return ``quick`` or ``full`` according to the active profile: ``epochs = pick(40, 400)``."""
    return full if get_profile(profile) == "full" else quick


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and GPU) and return a torch generator seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return torch.Generator().manual_seed(seed)


def get_device(device: str | None = None) -> torch.device:
    """Return the device to compute on: the argument, else ``$BOOK_DEVICE``, else cuda > mps > cpu."""
    name = device or os.environ.get(DEVICE_ENV)
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def repo_root() -> Path | None:
    """The repository checkout this package was installed from (editable install), or None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "_config.yml").is_file() and (root / "data").is_dir() else None


def data_dir() -> Path:
    """The folder the book's sample data is read from (it may not exist yet: see :func:`helpers.data.fetch`)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    root = repo_root()
    if root is not None:
        return root / "data"
    return cache_dir() / "data"


def cache_dir() -> Path:
    """Where downloads and trained checkpoints are cached (``$XDG_CACHE_HOME/trustworthy-medimg``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "trustworthy-medimg"


def no_progress(progress: bool = True) -> bool:
    """``disable=`` for a tqdm bar: off when the caller asks, or when ``$TQDM_DISABLE`` is set (the book's build
    sets it, so no bar reaches the website; an explicit ``disable=False`` would override tqdm's own reading)."""
    return (not progress) or os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false")
