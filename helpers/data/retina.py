"""Retinal fundus photographs with vessel masks: loaders for DRIVE, CHASE_DB1 and a folder of your own.

Taught in chapter 4. Every loader returns a list of :class:`RetinaImage` (the image as read, the vessel mask and
the field-of-view mask) and never modifies the files it reads. Problems a user can meet (an image without a mask,
a mask of another size, a mask that is not binary, an unreadable file, a wrong number of channels, a file over
Pillow's pixel limit, i.e. a decompression bomb) raise :class:`~helpers.errors.DataError` naming the file and saying
what to do.

Layouts
-------
``drive``   ``images/NN_training.tif``, ``1st_manual/NN_manual1.gif``, ``mask/NN_training_mask.gif``
            (``NN_test...`` alike): pass the ``training`` or ``test`` folder (Staal et al. 2004).
``chase``   ``Image_NNX.jpg`` with ``Image_NNX_1stHO.png`` (and ``_2ndHO``); no field of view is published, so
            it is derived by thresholding the image (:func:`fov_by_threshold`; Fraz et al. 2012).
``folder``  ``images/NAME.*``, ``masks/NAME.*`` (or ``masks/NAME_anything.*``) and optionally ``fov/NAME.*``,
            matched by name; without ``fov/`` the field of view is derived by thresholding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage import exposure, measure, transform

from helpers.data.images import pixel_limit
from helpers.errors import DataError
from helpers import config

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp", ".ppm")
LAYOUTS = ("drive", "chase", "folder")
#: What to do about an image over Pillow's pixel limit (see :mod:`helpers.data.images`).
TOO_LARGE_FIX = ("Replace it with the original file (DRIVE photographs are 565×584 pixels, CHASE_DB1 999×960) "
                 "or remove it from the folder; downscale a genuine photograph to a few thousand pixels a side.")
#: The standard CHASE_DB1 split: images 01L-10R for training, 11L-14R for testing.
CHASE_TEST_SUBJECTS = ("11", "12", "13", "14")


@dataclass(frozen=True)
class RetinaImage:
    """One fundus photograph: ``image`` H×W×3 uint8 (or H×W grey), ``vessels`` and ``fov`` H×W bool."""

    name: str
    image: np.ndarray
    vessels: np.ndarray
    fov: np.ndarray
    path: Path

    @property
    def shape(self) -> tuple[int, int]:
        return self.vessels.shape


# ---------------------------------------------------------------------------------------------------- reading
def read_image(path: Path) -> np.ndarray:
    """Read a fundus photograph as H×W×3 uint8 RGB (grey images are returned H×W); alpha is dropped."""
    from PIL import Image, UnidentifiedImageError

    try:
        with pixel_limit(path, "image", TOO_LARGE_FIX), Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "P", "CMYK", "YCbCr"):
                im = im.convert("RGB")
            elif im.mode in ("I;16", "I", "F"):
                arr = np.asarray(im, dtype=np.float64)
                return np.round(255 * (arr - arr.min()) / max(np.ptp(arr), 1e-12)).astype(np.uint8)
            arr = np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the image ({exc}); is it a valid image file?") from exc
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise DataError(f"{path}: {arr.shape[2] if arr.ndim == 3 else arr.ndim} channels; expected a grey or "
                        f"RGB image (1 or 3 channels)")
    return arr.astype(np.uint8) if arr.dtype != np.uint8 else arr


def read_mask(path: Path, shape: tuple[int, int] | None = None, what: str = "mask") -> np.ndarray:
    """Read a binary mask (two values, e.g. 0/255 or 0/1) as H×W bool; check its size against ``shape``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with pixel_limit(path, what, TOO_LARGE_FIX), Image.open(path) as im:
            im.load()
            arr = np.asarray(im.convert("L") if im.mode not in ("1", "L", "I", "I;16") else im)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the {what} ({exc}); is it a valid image file?") from exc
    if arr.ndim != 2:
        raise DataError(f"{path}: the {what} has {arr.shape[2]} channels; save it as a one-channel image")
    values = np.unique(arr)
    if values.size > 2 or (values.size == 2 and values[0] != 0):
        raise DataError(f"{path}: the {what} is not binary ({values.size} distinct values, e.g. "
                        f"{values[:4].tolist()}); save it as 0/255 PNG (JPEG compression adds grey levels)")
    if shape is not None and arr.shape != tuple(shape):
        raise DataError(f"{path}: the {what} is {arr.shape[1]}×{arr.shape[0]} pixels but its image is "
                        f"{shape[1]}×{shape[0]}; they must be the same size")
    return arr > 0


def fov_by_threshold(image: np.ndarray, threshold: float = 20.0) -> np.ndarray:
    """Field of view of a fundus photograph: the red (or grey) channel above ``threshold``, holes filled, the
    largest connected region kept, eroded by 2 pixels to drop the dark rim. Taught in chapter 4 (CHASE_DB1)."""
    channel = image[..., 0] if image.ndim == 3 else image
    fov = ndi.binary_fill_holes(ndi.gaussian_filter(channel.astype(np.float32), 2.0) > threshold)
    labels = measure.label(fov)
    if labels.max() == 0:
        return np.zeros(channel.shape, dtype=bool)
    largest = np.argmax(np.bincount(labels.ravel())[1:]) + 1
    return ndi.binary_erosion(labels == largest, iterations=2)


def _sample(name: str, image_path: Path, mask_path: Path, fov_path: Path | None) -> RetinaImage:
    image = read_image(image_path)
    shape = image.shape[:2]
    vessels = read_mask(mask_path, shape, "vessel mask")
    fov = read_mask(fov_path, shape, "field-of-view mask") if fov_path else fov_by_threshold(image)
    if not fov.any():
        raise DataError(f"{fov_path or image_path}: the field of view is empty; check the image or the FOV mask")
    return RetinaImage(name, image, vessels, fov, image_path)


def _loading(items: list, desc: str, progress: bool):
    """A progress bar over ``items`` (stderr, shown after a second, cleared when done or on an error) to use as
    ``with _loading(...) as bar: for item in bar: ...``."""
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="image", disable=config.no_progress(progress), leave=False, delay=1.0)


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


# ---------------------------------------------------------------------------------------------------- layouts
def load_drive(root: str | Path, progress: bool = False) -> list[RetinaImage]:
    """DRIVE ``training`` or ``test`` folder: ``images/NN_<split>.tif``, ``1st_manual/NN_manual1.gif``,
    ``mask/NN_<split>_mask.gif`` (Staal et al. 2004). Taught in chapter 4."""
    root = Path(root)
    if not (root / "images").is_dir() and (root / "training" / "images").is_dir():
        raise DataError(f"{root}: this is the DRIVE root; pass {root / 'training'} or {root / 'test'}")
    samples = []
    with _loading(_images_in(root / "images"), f"loading {root.name}", progress) as bar:
        for img in bar:
            m = re.match(r"(\d+)_(training|test)$", img.stem)
            if m is None:
                raise DataError(f"{img}: not a DRIVE image name (expected NN_training.tif or NN_test.tif)")
            manual = root / "1st_manual" / f"{m.group(1)}_manual1.gif"
            fov = root / "mask" / f"{img.stem}_mask.gif"
            if not manual.is_file():
                raise DataError(f"{root / '1st_manual'}: no mask for {img.name} (expected {manual.name})")
            samples.append(_sample(img.stem, img, manual, fov if fov.is_file() else None))
    if not samples:
        raise DataError(f"{root / 'images'}: no images found")
    return samples


def load_chase(root: str | Path, observer: int = 1, progress: bool = False) -> list[RetinaImage]:
    """CHASE_DB1 as published: ``Image_NNX.jpg`` with ``Image_NNX_1stHO.png`` (``observer=2``: ``_2ndHO``);
    the field of view by :func:`fov_by_threshold` (Fraz et al. 2012). Taught in chapter 4."""
    root = Path(root)
    tag = {1: "1stHO", 2: "2ndHO"}.get(observer)
    if tag is None:
        raise DataError(f"observer={observer}: CHASE_DB1 has observers 1 and 2")
    images = [p for p in _images_in(root) if re.match(r"Image_\d+[LR]$", p.stem)]
    if not images:
        raise DataError(f"{root}: no CHASE_DB1 images (Image_NNX.jpg) found")
    samples = []
    with _loading(images, f"loading {root.name}", progress) as bar:
        for img in bar:
            mask = root / f"{img.stem}_{tag}.png"
            if not mask.is_file():
                raise DataError(f"{root}: no mask for {img.name} (expected {mask.name})")
            samples.append(_sample(img.stem, img, mask, None))
    return samples


def load_folder(root: str | Path, progress: bool = False) -> list[RetinaImage]:
    """Your own data: ``images/NAME.*``, ``masks/NAME.*`` or ``masks/NAME_*.*``, optional ``fov/NAME.*``
    (without it the field of view is derived by :func:`fov_by_threshold`). Taught in chapter 4."""
    root = Path(root)
    masks = _images_in(root / "masks")
    fovs = _images_in(root / "fov") if (root / "fov").is_dir() else []

    def match(stem: str, candidates: list[Path]) -> Path | None:
        exact = [p for p in candidates if p.stem == stem]
        loose = [p for p in candidates if p.stem.startswith(stem + "_")]
        return (exact or loose or [None])[0]

    samples = []
    with _loading(_images_in(root / "images"), f"loading {root.name}", progress) as bar:
        for img in bar:
            mask = match(img.stem, masks)
            if mask is None:
                raise DataError(f"{root / 'masks'}: no mask for {img.name} (expected {img.stem}.png or "
                                f"{img.stem}_<anything>.png)")
            samples.append(_sample(img.stem, img, mask, match(img.stem, fovs)))
    if not samples:
        raise DataError(f"{root / 'images'}: no images found")
    return samples


def detect_layout(root: str | Path) -> str:
    """``drive``, ``chase`` or ``folder`` from the files present (raises :class:`DataError` if none fits)."""
    root = Path(root)
    if (root / "images").is_dir() and (root / "1st_manual").is_dir():
        return "drive"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "folder"
    if root.is_dir() and any(re.match(r"Image_\d+[LR]_1stHO$", p.stem) for p in root.iterdir()):
        return "chase"
    raise DataError(f"{root}: not a DRIVE split (images/, 1st_manual/), a CHASE_DB1 folder (Image_NNX.jpg) "
                    f"or a folder with images/ and masks/; see helpers.data.retina for the layouts")


def load_retina(root: str | Path, layout: str = "auto", progress: bool = False) -> list[RetinaImage]:
    """Load any supported layout (``auto`` detects it); ``progress``: a bar on stderr. Taught in chapter 4."""
    layout = detect_layout(root) if layout == "auto" else layout
    loaders = {"drive": load_drive, "chase": load_chase, "folder": load_folder}
    if layout not in loaders:
        raise DataError(f"layout={layout!r}: use one of {', '.join(LAYOUTS)} or auto")
    return loaders[layout](root, progress=progress)


def chase_split(samples: list[RetinaImage]) -> tuple[list[RetinaImage], list[RetinaImage]]:
    """The standard CHASE_DB1 split: (images 01L-10R, images 11L-14R)."""
    test = [s for s in samples if s.name[6:8] in CHASE_TEST_SUBJECTS]
    return [s for s in samples if s not in test], test


# ---------------------------------------------------------------------------------------------- preprocessing
def preprocess(image: np.ndarray, fov: np.ndarray, channel: str = "green", clahe: bool = True,
               clip_limit: float = 0.01) -> np.ndarray:
    """The network's input: the green channel (or the grey mean), contrast-limited adaptive histogram
    equalisation (CLAHE, scikit-image), scaled to [0, 1] and set to 0 outside the field of view. Taught in
    chapter 4: vessels contrast best in the green channel."""
    if image.ndim == 2:
        grey = image.astype(np.float32) / 255
    elif channel == "green":
        grey = image[..., 1].astype(np.float32) / 255
    elif channel == "grey":
        grey = image.astype(np.float32).mean(-1) / 255
    else:
        raise DataError(f"channel={channel!r}: use 'green' or 'grey'")
    if clahe:
        grey = exposure.equalize_adapthist(grey, clip_limit=clip_limit).astype(np.float32)
    return np.where(fov, grey, 0.0).astype(np.float32)


def rescale(sample: RetinaImage, scale: float) -> RetinaImage:
    """Resize image and masks by ``scale`` (anti-aliased image; masks by area average > 0.5)."""
    if scale == 1.0:
        return sample
    h, w = sample.shape
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    img = transform.resize(sample.image, size + sample.image.shape[2:], anti_aliasing=True, preserve_range=True)
    masks = [transform.resize(m.astype(np.float32), size, anti_aliasing=True) > 0.5
             for m in (sample.vessels, sample.fov)]
    return replace(sample, image=np.round(img).astype(np.uint8), vessels=masks[0], fov=masks[1])


def to_tensors(samples: list[RetinaImage], scale: float = 1.0, *, progress: bool = False, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Preprocessed inputs ``x``, vessel masks ``y`` and field-of-view masks ``fov``, each ``[N, 1, H, W]``
    float32, at ``scale``; images of different sizes are zero-padded to the largest (outside the FOV).
    ``kwargs`` go to :func:`preprocess`; ``progress``: a bar on stderr."""
    if not samples:
        raise DataError("no images to convert")
    resized, inputs = [], []
    with _loading(samples, "preprocessing", progress) as bar:
        for sample in bar:
            resized.append(rescale(sample, scale))
            inputs.append(preprocess(resized[-1].image, resized[-1].fov, **kwargs))
    h = max(s.shape[0] for s in resized)
    w = max(s.shape[1] for s in resized)
    out = torch.zeros(3, len(resized), 1, h, w)
    for i, (s, x) in enumerate(zip(resized, inputs)):
        sh, sw = s.shape
        out[0, i, 0, :sh, :sw] = torch.from_numpy(x)
        out[1, i, 0, :sh, :sw] = torch.from_numpy(s.vessels.astype(np.float32))
        out[2, i, 0, :sh, :sw] = torch.from_numpy(s.fov.astype(np.float32))
    return out[0], out[1], out[2]


# ------------------------------------------------------------------------------------------ patches, augment
def patch_sampler(tensors: tuple[torch.Tensor, ...], size: int, fov_index: int = -1
                  ) -> Callable[[int, torch.Generator], tuple[torch.Tensor, ...]]:
    """A function ``sample(n, generator)`` that returns ``n`` random ``size``×``size`` crops at the same places
    in every tensor of ``tensors`` (each ``[N, C, H, W]``), centred inside the field of view
    ``tensors[fov_index]``. The admissible centres are found once, here, not at every draw: on CHASE_DB1's 18
    full-size training images that search costs about 90 ms, half as much as a whole training step."""
    fov = tensors[fov_index]
    N, _, H, W = fov.shape
    if size > min(H, W):
        raise DataError(f"patch size {size} is larger than the images ({H}×{W})")
    half = size // 2
    window = fov[:, 0, half:H - size + half + 1, half:W - size + half + 1]  # crop corners whose centre is...
    h, w = window.shape[-2:]
    inside = window.reshape(-1).nonzero().squeeze(1)                        # ...inside the FOV, row-major
    if len(inside) == 0:
        raise DataError(f"no {size}×{size} patch is centred inside the field of view")
    if inside[-1] < 2 ** 31:
        inside = inside.to(torch.int32)  # half the memory on large training sets

    def sample(n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        pick = inside[torch.randint(len(inside), (n,), generator=generator)].long()
        corners = list(zip((pick // (h * w)).tolist(), (pick // w % h).tolist(), (pick % w).tolist()))
        return tuple(torch.stack([t[i, :, r:r + size, c:c + size] for i, r, c in corners]) for t in tensors)

    return sample


def random_patches(tensors: tuple[torch.Tensor, ...], size: int, n: int, generator: torch.Generator,
                   fov_index: int = -1) -> tuple[torch.Tensor, ...]:
    """``n`` random ``size``×``size`` crops at the same places in every tensor of ``tensors`` (each
    ``[N, C, H, W]``); crops are centred inside the field of view ``tensors[fov_index]``. To draw many batches
    from the same images, build a :func:`patch_sampler` once."""
    return patch_sampler(tensors, size, fov_index)(n, generator)


def augment(tensors: tuple[torch.Tensor, ...], generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """A random flip and quarter-turn rotation (the 8 symmetries of a square) per sample, the same for every
    tensor of ``tensors`` (each ``[N, C, H, W]``). Non-square tensors are only flipped."""
    n = tensors[0].shape[0]
    ks = torch.randint(4, (n,), generator=generator).tolist()
    flips = torch.randint(2, (n,), generator=generator).tolist()
    square = tensors[0].shape[-1] == tensors[0].shape[-2]
    out = []
    for t in tensors:
        rows = []
        for i in range(n):
            r = t[i].flip(-1) if flips[i] else t[i]
            rows.append(torch.rot90(r, ks[i], dims=(-2, -1)) if square else r)
        out.append(torch.stack(rows).contiguous())
    return tuple(out)


__all__ = ["CHASE_TEST_SUBJECTS", "LAYOUTS", "RetinaImage", "TOO_LARGE_FIX", "augment", "chase_split", "detect_layout",
           "fov_by_threshold", "load_chase", "load_drive", "load_folder", "load_retina", "patch_sampler", "preprocess",
           "random_patches", "read_image", "read_mask", "rescale", "to_tensors"]
