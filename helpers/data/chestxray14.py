"""Chest X-ray data sets in the layouts a user downloads them in: NIH ChestX-ray14, Kermany, a folder per class.

Taught in chapter 5 (and behind ``python -m helpers cxr``). Every loader returns
:class:`helpers.data.xray.Record` objects (path, label 0/1, patient id, source) and the two class names, so that
splitting by patient (:func:`helpers.data.xray.split_by_patient`) works the same on every layout:

- ``"nih"``: NIH ChestX-ray14 (Wang et al. 2017) as downloaded: ``images_001/images/*.png`` …
  ``images_012/images/*.png`` (or one ``images/`` folder) beside ``Data_Entry_2017.csv`` (or the 5 % sample's
  ``sample_labels.csv``). ``Finding Labels`` holds ``|``-separated findings or ``No Finding``; one ``finding``
  (e.g. ``Pneumonia``) is label 1, ``No Finding`` label 0, images with other findings only are left out.
  The patient is the ``Patient ID`` column (a patient has many follow-up images).
- ``"kermany"``: the original Kermany et al. (2018) download, ``train|test|val/NORMAL|PNEUMONIA``, or the book's
  ``NORMAL/`` + ``PNEUMONIA/`` (:func:`helpers.data.xray.find_images`).
- ``"folder"``: one sub-folder per class, any two names (sorted; the second is label 1). The patient is read from
  Kermany-style file names when possible, else each image is its own patient.

Images may be 8- or 16-bit grey, grey with alpha, RGB or RGBA PNG/JPEG: :func:`read_grey` returns grey in [0, 1]
(16-bit values are divided by 65535, not clipped to 8 bits). Bad input raises a one-line
:class:`helpers.errors.DataError` that names the file and what to do.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from helpers.data.xray import IMAGE_SUFFIXES, Record, find_images, parse_patient
from helpers.errors import DataError

LAYOUTS: tuple[str, ...] = ("auto", "folder", "kermany", "nih")
NIH_CSV_NAMES: tuple[str, ...] = ("Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv", "sample_labels.csv")
NIH_COLUMNS: tuple[str, ...] = ("Image Index", "Finding Labels", "Patient ID")
NO_FINDING = "No Finding"
#: The 14 findings of ChestX-ray14 (Wang et al. 2017, with Summers' 2017 update).
NIH_FINDINGS: tuple[str, ...] = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule",
                                 "Pneumonia", "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis",
                                 "Pleural_Thickening", "Hernia")


# --------------------------------------------------------------------------------------------------- images
def read_grey(path: Path | str) -> np.ndarray:
    """One image as grey ``float32 [H, W]`` in [0, 1]: 8-bit, 16-bit (``I;16``, ``I``), grey+alpha, RGB(A),
    palette. :class:`DataError` naming the file if it is missing, unreadable or truncated."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image missing. Restore the file or remove it from the list/folder.")
    from helpers.data.images import pixel_limit

    try:
        with pixel_limit(path, "X-ray", "Downscale it or delete it from the folder."), Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                return np.asarray(im, dtype=np.float32) / 65535.0
            if mode == "I":     # 32-bit int: how PIL often opens 16-bit grey PNGs
                arr = np.asarray(im, dtype=np.float32)
                return arr / (65535.0 if arr.max(initial=0) > 255 else 255.0)
            if mode == "F":
                arr = np.asarray(im, dtype=np.float32)
                return arr / max(float(arr.max(initial=0)), 1.0) if arr.max(initial=0) > 1 else arr
            if mode in ("RGBA", "LA", "P", "PA", "CMYK", "YCbCr", "1"):
                im = im.convert("RGB") if mode != "LA" else im.convert("L")
            return np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: cannot read this image ({type(exc).__name__}: {exc}). Re-download it or "
                        "delete it from the folder.") from exc


def load_grey(paths: Sequence[Path | str], size: int) -> torch.Tensor:
    """Images ``[N, 1, size, size]`` in [0, 1], each resized with antialiasing (aspect ratio not kept)."""
    out = []
    for p in paths:
        x = torch.from_numpy(read_grey(p).copy())[None, None]
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(x)
    return torch.cat(out).clamp(0, 1) if out else torch.empty(0, 1, size, size)


# --------------------------------------------------------------------------------------------------- layouts
def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def _patient(name: str) -> str:
    try:
        return parse_patient(name)
    except DataError:
        return Path(name).stem


def _check_two_classes(root: Path, records: list[Record], classes: Sequence[str]) -> None:
    counts = [sum(r.label == k for r in records) for k in range(len(classes))]
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if empty:
        raise DataError(f"{root}: class {empty[0]!r} has no images; both classes need examples")


def load_folder(root: Path | str) -> tuple[list[Record], tuple[str, str]]:
    """A folder with exactly two class sub-folders of images (sorted names; the second is label 1)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder. Give a folder holding one sub-folder of images per class.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{root}: found {len(classes)} class folder(s) {classes}; two are needed (e.g. "
                        "normal/ and disease/), one image per file")
    if len(classes) > 2:
        raise DataError(f"{root}: found {len(classes)} class folders {classes[:5]}; this pipeline is binary: "
                        "keep two")
    records = [Record(p, k, _patient(p.name), c) for k, c in enumerate(classes) for p in _images_in(root / c)]
    _check_two_classes(root, records, classes)
    return records, (classes[0], classes[1])


def load_kermany(root: Path | str) -> tuple[list[Record], tuple[str, str]]:
    """Kermany et al. (2018): ``train|test|val/NORMAL|PNEUMONIA`` or ``NORMAL/`` + ``PNEUMONIA/``."""
    records = find_images(root)
    _check_two_classes(Path(root), records, ("NORMAL", "PNEUMONIA"))
    return records, ("NORMAL", "PNEUMONIA")


def find_nih_csv(root: Path) -> Path:
    """The label file of a ChestX-ray14 folder (:data:`NIH_CSV_NAMES`, or the only ``*.csv``)."""
    for name in NIH_CSV_NAMES:
        if (root / name).is_file():
            return root / name
    csvs = sorted(root.glob("*.csv"))
    if len(csvs) == 1:
        return csvs[0]
    raise DataError(f"{root}: no Data_Entry_2017.csv (the ChestX-ray14 label file). Download it from the NIH "
                    "page into this folder.")


def nih_image_index(root: Path) -> dict[str, Path]:
    """File name -> path for every PNG in ``images_*/images/``, ``images_*/``, ``images/`` or ``root``."""
    found: dict[str, Path] = {}
    for pattern in ("images_*/images/*.png", "images_*/*.png", "images/*.png", "*.png"):
        for p in root.glob(pattern):
            found.setdefault(p.name, p)
    return found


def read_nih_csv(csv_path: Path) -> list[dict[str, str]]:
    """Rows of a ChestX-ray14 label file (the original trailing comma is tolerated)."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h for h in (reader.fieldnames or []) if h]
            missing = [c for c in NIH_COLUMNS if c not in header]
            if missing:
                raise DataError(f"{csv_path}: no column {missing[0]!r} (found {header[:6]}); expected the "
                                f"ChestX-ray14 header with {', '.join(NIH_COLUMNS)}")
            return [row for row in reader if row.get("Image Index")]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{csv_path}: cannot read this CSV ({type(exc).__name__}: {exc})") from exc


def load_nih(root: Path | str, finding: str = "Pneumonia", *, csv_path: Path | str | None = None,
             allow_missing: bool = False) -> tuple[list[Record], tuple[str, str]]:
    """NIH ChestX-ray14: images with ``finding`` (label 1) against ``No Finding`` (label 0).

    ``allow_missing=True`` skips listed images that are not on disk (a partial download) instead of stopping.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder. Give the ChestX-ray14 folder holding Data_Entry_2017.csv and "
                        "images_001/ ... images_012/.")
    csv_file = Path(csv_path) if csv_path is not None else find_nih_csv(root)
    if not csv_file.is_file():
        raise DataError(f"{csv_file}: no such CSV file")
    known = {f.lower(): f for f in NIH_FINDINGS}
    if finding is None or finding.lower() not in known:
        raise DataError(f"finding {finding!r}: choose one of {', '.join(NIH_FINDINGS)}")
    finding = known[finding.lower()]
    index = nih_image_index(root)
    records, missing = [], []
    for row in read_nih_csv(csv_file):
        labels = {s.strip() for s in row["Finding Labels"].split("|")}
        label = 1 if finding in labels else (0 if labels == {NO_FINDING} else None)
        if label is None:
            continue
        path = index.get(row["Image Index"].strip())
        if path is None:
            missing.append(row["Image Index"].strip())
            continue
        records.append(Record(path, label, f"nih-{row['Patient ID'].strip()}", csv_file.name))
    if missing and not allow_missing:
        raise DataError(f"{root}: {missing[0]} is listed in {csv_file.name} but absent from images_*/images/ "
                        f"({len(missing)} listed images absent). Download all image archives, or pass "
                        "--skip-missing to use the images present.")
    if not records:
        raise DataError(f"{root}: no image on disk is labelled {finding!r} or {NO_FINDING!r}")
    _check_two_classes(root, records, (NO_FINDING, finding))
    return sorted(records, key=lambda r: str(r.path)), (NO_FINDING, finding)


def detect_layout(root: Path | str) -> str:
    """``"nih"`` if a ChestX-ray14 label file is there, ``"kermany"`` if NORMAL/PNEUMONIA folders are, else
    ``"folder"``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    if any((root / n).is_file() for n in NIH_CSV_NAMES):
        return "nih"
    names = {p.name for p in root.iterdir()}
    if {"NORMAL", "PNEUMONIA"} <= names or any(
            (root / s / "NORMAL").is_dir() for s in ("train", "test", "val", "chest_xray")):
        return "kermany"
    return "folder"


def load_dataset(root: Path | str, layout: str = "auto", *, finding: str | None = None,
                 allow_missing: bool = False) -> tuple[list[Record], tuple[str, str]]:
    """Records and class names of ``root`` in ``layout`` (:data:`LAYOUTS`; ``"auto"`` detects it)."""
    if layout not in LAYOUTS:
        raise DataError(f"layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "nih":
        return load_nih(root, finding or "Pneumonia", allow_missing=allow_missing)
    if layout == "kermany":
        return load_kermany(root)
    return load_folder(root)


__all__ = ["LAYOUTS", "NIH_COLUMNS", "NIH_FINDINGS", "NO_FINDING", "detect_layout", "find_nih_csv",
           "load_dataset", "load_folder", "load_grey", "load_kermany", "load_nih", "nih_image_index",
           "read_grey", "read_nih_csv"]
