"""Microscopy images of cells or nuclei with instance labels, dot annotations or counts: one loader per layout.

Taught in chapter 6. Every loader returns a list of :class:`CellImage`: the image as a grey ``float32`` array in
[0, 1] (8- or 16-bit, grey or RGB(A) files; colour is averaged to grey), and whatever the layout annotates:
``labels`` (an integer image, 0 = background, one value per nucleus), ``dots`` (the centre of each cell, ``[n, 2]``
row/column) and always ``count``. An image with no nuclei is valid data (count 0). Problems a user can meet raise
:class:`~helpers.errors.DataError` in one line naming the file and saying what to do.

Layouts (``LAYOUTS``)
---------------------
``dsb``     the Data Science Bowl 2018 / BBBC038 layout: ``<id>/images/<id>.png`` and ``<id>/masks/*.png``, one
            binary mask per nucleus (Caicedo et al. 2019). Pass ``stage1_train`` or any folder of ``<id>/``.
``labels``  ``images/NAME.*`` with ``labels/NAME.*`` or ``masks/NAME.*`` (or ``NAME_anything.*``), matched by
            name: a grey label image (each nucleus one integer), or a colour-indexed mask, where touching nuclei
            have different colours and the instances are the connected components of each colour.
``vgg``     the VGG synthetic cells: ``NNNcell.png`` with ``NNNdots.png``, one red pixel per cell (Lempitsky &
            Zisserman 2010).
``dots``    ``images/NAME.*`` with ``annotations/NAME.*`` or ``dots/NAME.*``: red dots on black, possibly JPEG-noisy,
            thresholded (R > 128 and R − max(G, B) > 64) into blobs, one per cell (the adipocyte layout).
``counts``  ``images/NAME.*`` and one CSV file beside ``images/`` with columns file name and count.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from helpers.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
LAYOUTS = ("dsb", "labels", "vgg", "dots", "counts")
#: Folder names a label image may live in, and a dot map.
LABEL_DIRS = ("labels", "masks")
DOT_DIRS = ("annotations", "dots")


@dataclass(frozen=True)
class CellImage:
    """One microscopy image: ``image`` H×W float32 in [0, 1]; ``labels`` H×W int32 (0 = background) or None;
    ``dots`` ``[n, 2]`` float (row, column) or None; ``count`` the number of cells."""

    name: str
    image: np.ndarray
    count: int
    labels: np.ndarray | None = None
    dots: np.ndarray | None = None
    path: Path | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]

    @property
    def centres(self) -> np.ndarray:
        """The cell centres ``[count, 2]``: the dots, else the centroids of the labelled nuclei."""
        if self.dots is not None:
            return self.dots
        if self.labels is None or self.count == 0:
            return np.zeros((0, 2))
        ids = np.unique(self.labels)
        ids = ids[ids > 0]
        return np.array(ndi.center_of_mass(np.ones_like(self.labels), self.labels, ids)).reshape(-1, 2)


# ---------------------------------------------------------------------------------------------------- reading
def _open(path: Path, what: str):
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the {what} file is empty; replace it with the exported image")
    from helpers.data.images import pixel_limit

    try:
        with pixel_limit(path, what, "Downscale it or remove it from the folder."):
            im = Image.open(path)
            im.load()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot read the {what} ({type(exc).__name__}); is it a valid image "
                        f"file?") from exc
    return im


def _array(im) -> np.ndarray:
    if im.mode in ("P", "CMYK", "YCbCr", "LA", "PA"):
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    if im.mode == "1":
        return np.asarray(im).astype(np.uint8)
    return np.asarray(im)


def read_image(path: str | Path) -> np.ndarray:
    """Read a microscopy image as H×W float32 in [0, 1]: 8-bit / 16-bit, grey or RGB(A) (alpha dropped, colour
    averaged). 8-bit files are divided by 255, 16-bit ones by 65535, float files by their maximum."""
    path = Path(path)
    arr = _array(_open(path, "image"))
    if arr.ndim == 3:
        if arr.shape[2] not in (3, 4):
            raise DataError(f"{path}: {arr.shape[2]} channels; expected a grey, RGB or RGBA image")
        scale = 255.0 if arr.dtype == np.uint8 else 65535.0
        return (arr[..., :3].astype(np.float32).mean(2) / scale).clip(0, 1)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype in (np.uint16, np.int32, np.uint32) or np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float32) / 65535.0
    peak = float(np.nanmax(arr)) if arr.size else 1.0
    return (arr.astype(np.float32) / (peak or 1.0)).clip(0, 1)


def _check_shape(path: Path, arr: np.ndarray, shape: tuple[int, int] | None, what: str) -> None:
    if shape is not None and arr.shape[:2] != tuple(shape):
        raise DataError(f"{path}: the {what} is {arr.shape[1]}×{arr.shape[0]} pixels but its image is "
                        f"{shape[1]}×{shape[0]}; they must be the same size")


def read_labels(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read an instance label image as H×W int32 (0 = background, one value per nucleus, relabelled 1..n).

    A grey image (8/16/32-bit) is taken as labels; an RGB(A) image as a colour-indexed mask: each instance is a
    connected component of one colour (black is background). A lossy (JPEG) file is accepted only if its values
    are clean labels (no value on fewer than 4 pixels); JPEG noise makes thin rims of stray values."""
    path = Path(path)
    im = _open(path, "label image")
    lossy = (im.format or "").upper() == "JPEG"
    arr = _array(im)
    _check_shape(path, arr, shape, "label image")
    if arr.ndim == 3:
        rgb = arr[..., :3].astype(np.int64)
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    else:
        code = arr.astype(np.int64)
    values, counts = np.unique(code, return_counts=True)
    if lossy and (values.size > 2 and (counts < 4).any()):
        raise DataError(f"{path}: a lossy (JPEG) label image whose values are not clean labels "
                        f"({int((counts < 4).sum())} values on fewer than 4 pixels); save labels as PNG or TIFF")
    if arr.ndim == 3:  # colour-indexed: the components of each colour are the instances
        labels = np.zeros(code.shape, np.int32)
        n = 0
        for v in values[values > 0]:
            comp, k = ndi.label(code == v)
            labels[comp > 0] = comp[comp > 0] + n
            n += k
        return labels
    out = np.zeros(code.shape, np.int32)
    fg = values[values > 0]
    if fg.size:
        lut = np.searchsorted(fg, code[code > 0]) + 1   # relabel 1..n in value order
        out[code > 0] = lut
    return out


def _binary_mask(path: Path, shape: tuple[int, int] | None) -> np.ndarray:
    arr = _array(_open(path, "mask"))
    if arr.ndim == 3:
        arr = arr[..., :3].max(2)
    _check_shape(path, arr, shape, "mask")
    return arr > (arr.max() // 2 if arr.max() > 1 else 0)


def read_dots(path: str | Path, shape: tuple[int, int] | None = None, *, blobs: bool = True) -> np.ndarray:
    """Cell centres ``[n, 2]`` (row, column) of a red dot map. Red pixels are R > 128 and R − max(G, B) > 64 (so
    JPEG noise is thresholded away); ``blobs=True`` takes each connected blob as one cell (its centre), ``False``
    each red pixel (the VGG cells, where two cells' dots may touch). A grey dot map: any non-zero pixel."""
    path = Path(path)
    arr = _array(_open(path, "dot map")).astype(np.int64)
    _check_shape(path, arr, shape, "dot map")
    if arr.ndim == 3:
        r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
        red = (r > 128) & (r - np.maximum(g, b) > 64)
    else:
        red = arr > arr.max() / 2 if arr.max() > 0 else np.zeros(arr.shape, bool)
    if not blobs:
        return np.argwhere(red).astype(float)
    comp, n = ndi.label(red)
    if n == 0:
        return np.zeros((0, 2))
    return np.array(ndi.center_of_mass(red, comp, range(1, n + 1))).reshape(-1, 2)


def read_counts(path: str | Path) -> dict[str, int]:
    """A CSV of file name and count (a header row is allowed): ``{name: count}``. Missing, non-integer or
    negative counts raise :class:`DataError` naming the row."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(f"{path}: the counts file is missing or empty; write one row 'file name,count' per image")
    counts: dict[str, int] = {}
    with open(path, newline="") as f:
        for i, row in enumerate(csv.reader(f), 1):
            if not row or not any(c.strip() for c in row):
                continue
            name = row[0].strip()
            value = row[1].strip() if len(row) > 1 else ""
            if i == 1 and value and not re.fullmatch(r"[-+]?[\d.eE+-]+", value):
                continue  # header
            if not value:
                raise DataError(f"{path}, row {i}: no count for {name}; give every image a count")
            try:
                number = float(value)
            except ValueError:
                raise DataError(f"{path}, row {i}: count {value!r} of {name} is not a number") from None
            if number < 0 or number != int(number):
                raise DataError(f"{path}, row {i}: count {value} of {name} must be a whole number ≥ 0")
            counts[Path(name).stem] = int(number)
    if not counts:
        raise DataError(f"{path}: no counts found; write one row 'file name,count' per image")
    return counts


# ---------------------------------------------------------------------------------------------------- layouts
def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _match(stem: str, candidates: list[Path]) -> Path | None:
    exact = [p for p in candidates if p.stem == stem]
    loose = [p for p in candidates if p.stem.startswith(stem + "_")]
    return (exact or loose or [None])[0]


def _first_dir(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def _labelled(name: str, image_path: Path, labels: np.ndarray, image: np.ndarray | None = None) -> CellImage:
    image = read_image(image_path) if image is None else image
    return CellImage(name, image, int(len(np.unique(labels)) - (labels == 0).any()), labels=labels,
                     path=image_path)


def load_dsb(root: str | Path) -> list[CellImage]:
    """The Data Science Bowl 2018 / BBBC038 layout: ``<id>/images/<id>.png``, ``<id>/masks/*.png`` (one binary
    mask per nucleus; an empty ``masks/`` means no nuclei). Taught in chapter 6."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    if (root / "stage1_train").is_dir() and not (root / "images").is_dir():
        root = root / "stage1_train"
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        img = d / "images" / f"{d.name}.png"
        if not img.is_file():
            found = _images_in(d / "images") if (d / "images").is_dir() else []
            if not found:
                raise DataError(f"{d}: no image (expected images/{d.name}.png)")
            img = found[0]
        if not (d / "masks").is_dir():
            raise DataError(f"{d}: no masks/ folder for {img.name}; add one binary PNG per nucleus "
                            f"(an empty masks/ folder means no nuclei)")
        image = read_image(img)
        labels = np.zeros(image.shape, np.int32)
        for k, m in enumerate(_images_in(d / "masks"), 1):
            labels[_binary_mask(m, image.shape)] = k
        labels = read_labels_array(labels)
        out.append(_labelled(d.name, img, labels, image))
    if not out:
        raise DataError(f"{root}: no <id>/images/<id>.png folders found (the Data Science Bowl layout)")
    return out


def read_labels_array(labels: np.ndarray) -> np.ndarray:
    """Relabel an integer image 1..n in value order (drops values covered entirely by later masks)."""
    values = np.unique(labels)
    values = values[values > 0]
    out = np.zeros(labels.shape, np.int32)
    out[labels > 0] = np.searchsorted(values, labels[labels > 0]) + 1
    return out


def load_labels(root: str | Path) -> list[CellImage]:
    """``images/NAME.*`` with ``labels/NAME.*`` or ``masks/NAME.*`` (or ``NAME_*.*``): label images or
    colour-indexed masks (see :func:`read_labels`). The book's shipped subset uses this layout. Chapter 6."""
    root = Path(root)
    label_dir = _first_dir(root, LABEL_DIRS)
    if label_dir is None:
        raise DataError(f"{root}: no labels/ or masks/ folder beside images/")
    candidates = _images_in(label_dir)
    out = []
    for img in _images_in(root / "images"):
        lab = _match(img.stem, candidates)
        if lab is None:
            raise DataError(f"{label_dir}: no label image for {img.name} (expected {img.stem}.png); an image "
                            f"without nuclei needs an all-zero label image")
        image = read_image(img)
        out.append(_labelled(img.stem, img, read_labels(lab, image.shape), image))
    if not out:
        raise DataError(f"{root / 'images'}: no images found")
    return out


def load_vgg(root: str | Path, numbers: range | list[int] | None = None) -> list[CellImage]:
    """VGG synthetic cells: ``NNNcell.png`` with ``NNNdots.png`` (one red pixel per cell). ``numbers`` selects
    images (the usual protocol: 1–100 training pool, 101–200 test). Chapter 6."""
    root = Path(root)
    cells = [p for p in _images_in(root) if re.fullmatch(r"\d+cell", p.stem)]
    if numbers is not None:
        keep = set(numbers)
        cells = [p for p in cells if int(p.stem[:-4]) in keep]
    if not cells:
        raise DataError(f"{root}: no VGG cell images (NNNcell.png) found")
    out = []
    for img in cells:
        dots_path = img.with_name(img.stem[:-4] + "dots" + img.suffix)
        if not dots_path.is_file():
            raise DataError(f"{root}: no dot annotation for {img.name} (expected {dots_path.name})")
        image = read_image(img)
        dots = read_dots(dots_path, image.shape, blobs=False)
        out.append(CellImage(img.stem, image, len(dots), dots=dots, path=img))
    return out


def load_dots(root: str | Path) -> list[CellImage]:
    """``images/NAME.*`` with dot maps ``annotations/NAME.*`` or ``dots/NAME.*`` (red dots, JPEG noise
    thresholded away by :func:`read_dots`). Chapter 6."""
    root = Path(root)
    dot_dir = _first_dir(root, DOT_DIRS)
    if dot_dir is None:
        raise DataError(f"{root}: no annotations/ or dots/ folder beside images/")
    candidates = _images_in(dot_dir)
    out = []
    for img in _images_in(root / "images"):
        ann = _match(img.stem, candidates)
        if ann is None:
            raise DataError(f"{dot_dir}: no dot map for {img.name} (expected {img.stem}.png); an image without "
                            f"cells needs an all-black dot map")
        image = read_image(img)
        dots = read_dots(ann, image.shape)
        out.append(CellImage(img.stem, image, len(dots), dots=dots, path=img))
    if not out:
        raise DataError(f"{root / 'images'}: no images found")
    return out


def load_counts(root: str | Path) -> list[CellImage]:
    """``images/NAME.*`` with a CSV file (name, count) beside ``images/``: counts only. Chapter 6."""
    root = Path(root)
    csvs = sorted(root.glob("*.csv"))
    if len(csvs) != 1:
        raise DataError(f"{root}: expected one CSV file of 'file name,count' beside images/, found {len(csvs)}")
    counts = read_counts(csvs[0])
    out = []
    for img in _images_in(root / "images"):
        if img.stem not in counts:
            raise DataError(f"{csvs[0]}: no count for {img.name}; add a row '{img.name},N'")
        out.append(CellImage(img.stem, read_image(img), counts[img.stem], path=img))
    if not out:
        raise DataError(f"{root / 'images'}: no images found")
    return out


def detect_layout(root: str | Path) -> str:
    """The layout of ``root`` from the files present (raises :class:`DataError` when none fits)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    if (root / "images").is_dir():
        if _first_dir(root, LABEL_DIRS):
            return "labels"
        if _first_dir(root, DOT_DIRS):
            return "dots"
        if any(root.glob("*.csv")):
            return "counts"
    if any(re.fullmatch(r"\d+cell", p.stem) for p in root.iterdir() if p.is_file()):
        return "vgg"
    sub = root / "stage1_train" if (root / "stage1_train").is_dir() else root
    if any((d / "images").is_dir() for d in sub.iterdir() if d.is_dir()):
        return "dsb"
    raise DataError(f"{root}: unknown layout; use <id>/images + <id>/masks (dsb), images/ + labels/ (labels), "
                    f"NNNcell.png + NNNdots.png (vgg), images/ + annotations/ (dots) or images/ + a CSV (counts)")


def load_cells(root: str | Path, layout: str = "auto") -> list[CellImage]:
    """Load any of the :data:`LAYOUTS` (``"auto"``: :func:`detect_layout`). Chapter 6 and ``python -m helpers
    cells``."""
    layout = detect_layout(root) if layout == "auto" else layout
    loaders = {"dsb": load_dsb, "labels": load_labels, "vgg": load_vgg, "dots": load_dots, "counts": load_counts}
    if layout not in loaders:
        raise DataError(f"layout {layout!r}: use one of auto, {', '.join(LAYOUTS)}")
    return loaders[layout](root)


def split_names(names: list[str], fractions: tuple[float, ...] = (0.5, 0.2, 0.3)) -> list[list[str]]:
    """Split image names into parts of the given fractions, by a stable hash of each name (the same split on
    every machine and whatever the order of the files)."""
    import hashlib

    def u(n: str) -> float:
        return int(hashlib.sha256(n.encode()).hexdigest()[:12], 16) / 16 ** 12

    order = sorted(names, key=u)
    edges = np.round(np.cumsum((0,) + tuple(fractions)) / sum(fractions) * len(order)).astype(int)
    return [order[a:b] for a, b in zip(edges[:-1], edges[1:])]


__all__ = ["CellImage", "LAYOUTS", "detect_layout", "load_cells", "load_counts", "load_dots", "load_dsb",
           "load_labels", "load_vgg", "read_counts", "read_dots", "read_image", "read_labels", "split_names"]
