"""Paediatric chest X-rays, normal vs pneumonia (Kermany et al. 2018): find, split by patient, load.

Taught in chapter 3 (a shortcut in real data); reused by the chest X-ray chapter.

Two layouts are read:

- the book's sample, ``helpers.data.fetch("chest_xray")``: ``NORMAL/*.jpeg`` and ``PNEUMONIA/*.jpeg``;
- a user's copy of the original download (Mendeley, doi:10.17632/rscbjbr9sj): ``train|test|val/NORMAL|PNEUMONIA``.

File names carry the patient: ``personNNN_bacteria_K``, ``personNNN_virus_K`` (pneumonia), ``IM-NNNN-K[-K]`` and
``NORMAL2-IM-NNNN-K[-K]`` (normal). Several images come from one child, so the split is **by patient**: a child's
images all fall in the same split, which is decided by a hash of the patient id (deterministic, independent of the
order of the files and stable when files are added). The original train/test/val folders are ignored by the
split (they are recorded in ``Record.source``) because their sizes are very unequal (``val`` has 16 images).

A known trap (see the book's data README): the two classes come from originals of different sizes, squashed to
one size, so texture alone separates them; :func:`laplacian_energy` measures it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from helpers.errors import DataError

CLASSES: tuple[str, ...] = ("NORMAL", "PNEUMONIA")
SOURCE_SPLITS: tuple[str, ...] = ("train", "test", "val")
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
_PATTERNS = [
    re.compile(r"^(?P<pid>person\d+)_(?:bacteria|virus)_\d+$", re.IGNORECASE),
    re.compile(r"^(?P<pid>(?:NORMAL\d*-)?IM-\d+)(?:-\d+)+$", re.IGNORECASE),
]


@dataclass(frozen=True)
class Record:
    """One image: its ``path``, ``label`` (0 normal, 1 pneumonia), ``patient`` id and ``source`` folder
    (``"train"``/``"test"``/``"val"`` in the original layout, ``""`` in the book's sample)."""

    path: Path
    label: int
    patient: str
    source: str = ""


def parse_patient(filename: str) -> str:
    """The patient id in a Kermany file name: ``person1017_bacteria_2948.jpeg`` → ``person1017``,
    ``IM-0117-0001.jpeg`` → ``IM-0117``, ``NORMAL2-IM-1345-0001-0002.jpeg`` → ``NORMAL2-IM-1345``.

    ``IM-`` and ``NORMAL2-IM-`` are different numbering series, so their prefixes are kept.
    """
    stem = Path(filename).stem
    for pattern in _PATTERNS:
        match = pattern.match(stem)
        if match:
            pid = match.group("pid")
            return pid.lower() if pid.lower().startswith("person") else pid.upper()
    raise DataError(f"{filename}: cannot read a patient id from this file name (expected personNNN_bacteria_K, "
                    f"personNNN_virus_K, IM-NNNN-K or NORMAL2-IM-NNNN-K). Rename it or remove it from the folder.")


def _class_dirs(root: Path) -> list[tuple[Path, str]]:
    """``(folder, source)`` pairs holding NORMAL/PNEUMONIA sub-folders, for either layout."""
    if all((root / c).is_dir() for c in CLASSES):
        return [(root, "")]
    found = [(root / s, s) for s in SOURCE_SPLITS if all((root / s / c).is_dir() for c in CLASSES)]
    if not found and (root / "chest_xray").is_dir():  # the Mendeley zip unpacks into chest_xray/chest_xray
        return _class_dirs(root / "chest_xray")
    return found


def find_images(root: Path | str | None = None) -> list[Record]:
    """All images under ``root`` (default: the book's sample, fetched with :func:`helpers.data.fetch`),
    sorted by path. Raises :class:`~helpers.errors.DataError` naming the folder when neither layout is found.
    Taught in chapter 3.
    """
    if root is None:
        from helpers.data import fetch
        root = fetch("chest_xray")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder. Point it at the folder holding NORMAL/ and PNEUMONIA/ "
                        f"(or train/, test/, val/ of the original download).")
    dirs = _class_dirs(root)
    if not dirs:
        raise DataError(f"{root}: expected sub-folders NORMAL/ and PNEUMONIA/, or train|test|val/NORMAL|PNEUMONIA "
                        f"(the original Kermany layout); found {sorted(p.name for p in root.iterdir())[:8]}")
    records = []
    for folder, source in dirs:
        for label, cls in enumerate(CLASSES):
            for path in sorted((folder / cls).iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                    records.append(Record(path, label, parse_patient(path.name), source))
    if not records:
        raise DataError(f"{root}: the NORMAL/ and PNEUMONIA/ folders hold no .jpeg/.jpg/.png images")
    return sorted(records, key=lambda r: str(r.path))


def _unit_hash(text: str) -> float:
    """A number in [0, 1) from sha256 of ``text``: the same on every machine and Python version."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16) / 16 ** 15


def split_by_patient(records: Sequence[Record], fractions: Sequence[float] = (0.6, 0.2, 0.2), *,
                     names: Sequence[str] = ("train", "val", "test"), seed: int = 0) -> dict[str, list[Record]]:
    """Split ``records`` so that no patient is in two splits: each patient goes to the split its hashed id
    (with ``seed``) falls in, with the cumulative ``fractions``. Deterministic. Taught in chapter 3.

    The fractions hold for patients, approximately for images (some children have several images).
    """
    if len(fractions) != len(names) or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise DataError(f"fractions={tuple(fractions)}: need one non-negative fraction per split in {tuple(names)},"
                        f" summing to 1")
    edges = np.cumsum(fractions)
    out: dict[str, list[Record]] = {n: [] for n in names}
    for r in records:
        k = int(np.searchsorted(edges, _unit_hash(f"{seed}:{r.patient}"), side="right"))
        out[names[min(k, len(names) - 1)]].append(r)
    return out


def read_image(path: Path) -> np.ndarray:
    """One image as a grey ``uint8`` array ``[H, W]``; :class:`~helpers.errors.DataError` naming the file if it
    cannot be read or declares more pixels than Pillow's decompression-bomb limit."""
    from PIL import Image, UnidentifiedImageError

    from helpers.data.images import pixel_limit

    fix = ("Re-download it or delete it from the folder; downscale a genuine X-ray this large first (the book's "
           "sample is 224×224).")
    try:
        with pixel_limit(path, "X-ray", fix), Image.open(path) as im:
            return np.asarray(im.convert("L"))
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot read this image ({type(exc).__name__}: {exc}). Re-download it or delete "
                        f"it from the folder.") from exc


def load_images(records: Sequence[Record], size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[N, 1, S, S]`` (float in [0, 1]) and labels ``[N]`` for ``records``.

    ``size``: resize every image to ``size × size`` with antialiasing (None: keep the files' size, which must then
    all be equal, as in the book's 224-px sample). Taught in chapter 3.
    """
    imgs = []
    for r in records:
        arr = torch.from_numpy(read_image(r.path).copy()).float()[None, None] / 255.0
        if size is not None and arr.shape[-2:] != (size, size):
            arr = F.interpolate(arr, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        imgs.append(arr)
    shapes = {tuple(a.shape) for a in imgs}
    if len(shapes) > 1:
        raise DataError(f"images of different sizes {sorted(shapes)[:3]}: pass size= to resize them")
    x = torch.cat(imgs) if imgs else torch.empty(0, 1, size or 0, size or 0)
    return x.clamp(0, 1), torch.tensor([r.label for r in records], dtype=torch.long)


def laplacian_energy(x: torch.Tensor) -> torch.Tensor:
    """The mean absolute Laplacian of each image ``[N, 1, H, W]`` → ``[N]``: a one-number texture measure
    (fine detail and noise), no anatomy. On the Kermany images it separates the classes by itself.
    Taught in chapter 3.
    """
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=x.dtype)[None, None]
    return F.conv2d(x, kernel).abs().mean((1, 2, 3))


__all__ = ["CLASSES", "Record", "find_images", "laplacian_energy", "load_images", "parse_patient", "read_image",
           "split_by_patient"]
