"""Pooled features of a frozen network, computed once and cached on disk.

Taught in chapter 5: a frozen trunk computes the same 512 numbers for an image every time, so the chest X-ray
chapter computes them once and trains (and MC-dropout samples) only the top layer on them. The cache key is a
sha256 of everything the numbers depend on:

- the trunk's weights (:attr:`helpers.models.vgg.Weights.digest`) and their preprocessing;
- the image files (each file's sha256, in order);
- the preprocessing of this run: image size and ``transform_key`` (a name for any change made to the images,
  e.g. ``"blank-centre-0.5"``; give a new name whenever ``transform`` changes).

Files live in ``helpers.config.cache_dir() / "features"`` and are read with ``torch.load(weights_only=True)``.
Delete the folder to recompute everything.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from helpers import config

#: Version of the extraction code: bump it when the way features are computed changes.
FEATURES_VERSION = 1


def file_digest(path: Path | str) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(weights_digest: str, preprocessing: str, paths: Sequence[Path | str], size: int,
              transform_key: str = "") -> str:
    """The sha256 that names a feature file (see the module docstring for what enters it)."""
    h = hashlib.sha256(f"v{FEATURES_VERSION}|{weights_digest}|{preprocessing}|{size}|{transform_key}|".encode())
    for p in paths:
        h.update(file_digest(p).encode())
    return h.hexdigest()


def extract_features(model, paths: Sequence[Path | str], load: Callable[[Sequence[Path]], torch.Tensor], *,
                     size: int, transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     transform_key: str = "", batch_size: int = 32, cache: bool = True,
                     desc: str = "VGG16 features", progress: bool | None = None) -> torch.Tensor:
    """``model.pooled(x)`` for the images at ``paths``, ``[N, F]``, from the cache when it has them.

    ``model``: a :class:`helpers.models.vgg.VGG16Classifier` (any module with ``pooled`` and ``weights_info``);
    ``load(paths) -> [n, C, size, size]`` reads a batch of images in [0, 1]; ``transform`` (named by
    ``transform_key``) is applied to each batch before the network. A progress bar goes to stderr
    (``tqdm.auto``; ``progress=None`` shows it unless ``TQDM_DISABLE`` is set).
    """
    paths = [Path(p) for p in paths]
    if transform is not None and not transform_key:
        raise ValueError("give transform_key= a name for the transform: it is part of the cache key")
    info = model.weights_info
    key = cache_key(info.digest, info.preprocessing, paths, size, transform_key)
    file = config.cache_dir() / "features" / f"{key}.pt"
    if cache and file.is_file():
        return torch.load(file, map_location="cpu", weights_only=True)
    model.eval()
    net = model.to(memory_format=torch.channels_last)   # about 1.3x faster on CPUs
    out = []
    quiet = {"disable": True} if progress is False else {}   # else tqdm honours TQDM_DISABLE
    bar = tqdm(range(0, len(paths), batch_size), desc=desc, file=sys.stderr, **quiet)
    with torch.no_grad():
        for i in bar:
            x = load(paths[i:i + batch_size])
            if transform is not None:
                x = transform(x)
            out.append(net.pooled(x.contiguous(memory_format=torch.channels_last)).float())
    feats = torch.cat(out) if out else torch.empty(0, 0)
    if cache:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp")
        torch.save(feats, tmp)
        tmp.replace(file)
    return feats


__all__ = ["FEATURES_VERSION", "cache_key", "extract_features", "file_digest"]
