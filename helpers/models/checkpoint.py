"""Saving and loading the book's trained models, safely: one format and one loader for every model.

A checkpoint is a dict of tensors and plain values (``state_dict``, the constructor's ``config``, and ``meta``:
numbers, strings, lists, such as the training recipe). :func:`load_model` reads it with
``torch.load(weights_only=True)``, so a checkpoint cannot run code, and turns every way a file can be wrong
(missing, truncated, another model's, trained with another recipe) into a one-line
:class:`~helpers.errors.DataError` naming the file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from helpers.errors import DataError


def save_model(model: nn.Module, path: str | Path, config: dict, **meta) -> None:
    """Write ``model``'s weights, the keyword arguments ``config`` that rebuild it, and ``meta`` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "config": dict(config), "meta": meta}, path)


def recipe_difference(stored: dict | None, wanted: dict) -> list[str]:
    """The keys on which two training recipes differ (a missing recipe differs in every key)."""
    stored = stored or {}
    return sorted(k for k in set(wanted) | set(stored) if wanted.get(k) != stored.get(k))


def load_model(path: str | Path, build: Callable[..., nn.Module], *, what: str,
               recipe: dict | None = None) -> tuple[nn.Module, dict]:
    """Load a :func:`save_model` checkpoint as ``build(**config)`` in eval mode, with its ``meta``.

    ``what`` names the model in messages ("U-Net", "cell-counting network"). With ``recipe``, a checkpoint
    trained with another recipe is refused, so that a cache is never silently reused after the recipe changed.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        model = build(**ckpt["config"])
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in ckpt["state_dict"].items()})
    except FileNotFoundError as exc:
        raise DataError(f"{path}: checkpoint not found") from exc
    except (RuntimeError, KeyError, TypeError, ValueError, EOFError, AttributeError,
            pickle.UnpicklingError) as exc:
        raise DataError(f"{path}: not a {what} checkpoint of this book ({type(exc).__name__}); "
                        f"train again without --checkpoint") from exc
    meta = dict(ckpt.get("meta", {}))
    if recipe is not None and meta.get("recipe") != recipe:
        changed = recipe_difference(meta.get("recipe"), recipe)
        raise DataError(f"{path} was trained with another recipe (differs in: {', '.join(changed)})")
    return model.eval(), meta


__all__ = ["load_model", "recipe_difference", "save_model"]
