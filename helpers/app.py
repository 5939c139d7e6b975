"""The book's local app: upload an image, get the prediction, its uncertainty and a saliency map. Taught on the
page "Try it on your own image" (``chapters/07_app.ipynb``; ``make app`` serves it with Voila on localhost).

:func:`analyze` is the whole logic, a plain function of the uploaded file's bytes and a task named like the
command line: ``"retina"`` (chapter 4's U-Net), ``"cxr"`` (chapter 5's VGG16 with its top layer) or ``"cells"``
(chapter 6's counting network). It

1. decodes the bytes in memory (:func:`decode`: PNG, JPEG, TIFF with 8 or 16 bits, DICOM through
   :mod:`helpers.data.dicom`) and refuses, with one line saying what is wrong and what to do
   (:class:`~helpers.errors.DataError`), an empty, truncated or unreadable file, one over :data:`MAX_BYTES`, a
   decompression bomb (Pillow's pixel limit, :func:`helpers.data.images.pixel_limit`), a 1-bit or 32-bit image, a
   wrong number of channels, a DICOM file without pixels or with a compression it cannot decode;
2. checks that the image looks like the task's images (:func:`input_warnings`: colour for an X-ray, grey or
   borderless for a fundus photograph, a bright background for fluorescence nuclei) and warns;
3. runs the task's model with MC dropout and returns an :class:`AppResult`: the prediction, epistemic and
   aleatoric uncertainty as numbers and maps, a plain-language reading that refers the image to a human when
   the epistemic uncertainty is above what the model showed on its *validation* images, a saliency map (chapter
   3's integrated gradients or Grad-CAM), and :meth:`AppResult.report_pdf`, a one-page PDF report.

Models come from :func:`load_bundle`: the chapter's cached checkpoint when there is one trained with the
chapter's recipe, else the app's own (``app_*`` in the book's cache), else the app trains it once with the quick
profile (a progress bar and a message say so), or a checkpoint the user points to (``torch.load(weights_only=True)``:
loading runs no code). Nothing is written except those cache files: the uploaded bytes stay in memory.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from helpers import config
from helpers.errors import BookError, DataError

#: The app's tasks, named like the command line, with what each reads.
TASKS: dict[str, str] = {"retina": "retinal vessels in a fundus photograph (chapter 4's U-Net)",
                         "cxr": "pneumonia in a paediatric chest X-ray (chapter 5's VGG16 and top layer)",
                         "cells": "nuclei in a fluorescence microscopy image (chapter 6's counting network)"}
#: Largest upload accepted, in bytes.
MAX_BYTES = 40 * 2 ** 20
#: Smallest side, in pixels, the models can read.
MIN_SIDE = 32
#: Largest side of a nuclei image (the count is per image; larger images should be cut into tiles).
MAX_CELLS_SIDE = 1024
#: The width the retina model works at: CHASE_DB1's 999 pixels times the recipe's scale.
CHASE_WIDTH = 999
#: Referral: an image is referred when its epistemic score exceeds this quantile of the validation images'.
REFER_QUANTILE = 0.95
#: With fewer than 20 validation images (chapter 4 has two), the threshold is this multiple of the largest score.
REFER_MARGIN = 2.0
CAVEAT = ("Not a medical device. This report comes from teaching models trained on small public data sets; it has "
          "not been validated for any clinical use and must not guide the care of a patient.")
DICOM_REMINDER = ("DICOM files can carry patient data (name, birth date, identifiers) in their header. The app reads "
                  "only the pixels, keeps the file in memory and sends nothing anywhere; de-identify files before "
                  "you copy or share them.")
FORMATS = "PNG, JPEG, TIFF (8 or 16 bit) or DICOM"


# =================================================================================================== decoding
@dataclass
class Decoded:
    """An uploaded image in memory: ``image`` float32 in [0, 1], ``H×W`` (grey) or ``H×W×3`` (RGB), the file
    ``format``, ``bits`` per sample, ``dicom`` (whether it was one) and ``notes`` on what decoding changed."""

    image: np.ndarray
    format: str
    bits: int
    dicom: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def describe(self) -> str:
        h, w = self.image.shape[:2]
        kind = "RGB" if self.image.ndim == 3 else "grey"
        return f"{self.format}, {w}×{h} pixels, {kind}, {self.bits} bit"


def _as_bytes(data) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise DataError(f"got {type(data).__name__}, not the bytes of a file: pass the uploaded file's content")


def decode(data: bytes, name: str = "the file") -> Decoded:
    """Decode uploaded bytes (see the module docstring for what is refused and why). Nothing touches disk."""
    data = _as_bytes(data)
    if not data:
        raise DataError(f"{name} is empty (0 bytes): choose the image file again, or export it again")
    if len(data) > MAX_BYTES:
        raise DataError(f"{name} is {len(data) / 2 ** 20:.0f} MB, over the app's limit of "
                        f"{MAX_BYTES / 2 ** 20:.0f} MB: downscale it or save it as PNG or JPEG")
    from helpers.data.dicom import is_dicom, read_dicom

    if is_dicom(data):
        d = read_dicom(data, name)
        notes = [f"DICOM {d.modality or 'image'}, {d.photometric}, values mapped by {d.windowed}"]
        if d.frames > 1:
            notes.append(f"first of {d.frames} frames")
        dec = Decoded(d.image, "DICOM", d.bits, True, notes)
    else:
        dec = _decode_pillow(data, name)
    h, w = dec.image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise DataError(f"{name} is {w}×{h} pixels, too small to read (at least {MIN_SIDE} a side): upload the "
                        "original image, not a thumbnail")
    return dec


def _decode_pillow(data: bytes, name: str) -> Decoded:
    from PIL import Image, UnidentifiedImageError

    from helpers.data.images import pixel_limit

    fix = "Downscale it (a few thousand pixels a side is plenty) and upload it again."
    try:
        with pixel_limit(name, "image", fix), Image.open(io.BytesIO(data)) as im:
            fmt, frames = im.format or "image", getattr(im, "n_frames", 1)
            im.load()
            image, bits, notes = _pillow_array(im, name)
    except UnidentifiedImageError as exc:
        raise DataError(f"{name} is not an image the app can read: upload {FORMATS}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"{name} is truncated or damaged ({exc}): upload it again or export it again") from exc
    if frames > 1:
        notes.append(f"first of {frames} frames")
    return Decoded(image, fmt, bits, False, notes)


def _pillow_array(im, name: str) -> tuple[np.ndarray, int, list[str]]:
    """The pixels of an opened Pillow image as float32 in [0, 1], its bit depth and what was changed."""
    notes: list[str] = []
    mode = im.mode
    if mode == "1":
        raise DataError(f"{name} is a 1-bit (black and white) image: upload the original 8- or 16-bit image, "
                        "not a mask")
    if mode == "F" or mode.startswith("I;32") or mode == "I;32F":
        raise DataError(f"{name} holds 32-bit floating-point values: save it as an 8- or 16-bit image")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.float32) / 65535.0, 16, notes
    if mode == "I":
        arr = np.asarray(im)
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
            raise DataError(f"{name} holds 32-bit integer values: save it as an 8- or 16-bit image")
        return arr.astype(np.float32) / 65535.0, 16, notes
    if mode in ("LA", "PA", "RGBA"):
        notes.append("transparency dropped")
        im = im.convert("L" if mode == "LA" else "RGB")
    elif mode in ("P", "CMYK", "YCbCr", "LAB", "HSV"):
        notes.append(f"{mode} converted to RGB")
        im = im.convert("RGB")
    if im.mode not in ("L", "RGB"):
        raise DataError(f"{name}: Pillow mode {im.mode} ({len(im.getbands())} channels) is not supported: upload "
                        "a grey or RGB image with 8 or 16 bits")
    arr = np.asarray(im, dtype=np.float32) / 255.0
    if arr.ndim == 3 and np.ptp(arr, axis=2).max(initial=0) == 0:
        arr = arr[..., 0]            # an RGB file with three equal channels is a grey image
        notes.append("three equal channels read as grey")
    return arr, 8, notes


def grey(image: np.ndarray) -> np.ndarray:
    """The mean of the channels of an RGB image (a grey image unchanged)."""
    return image.mean(2) if image.ndim == 3 else image


def colourfulness(image: np.ndarray) -> float:
    """Mean over pixels of the spread between the largest and smallest channel (0 for a grey image)."""
    return float(np.ptp(image, axis=2).mean()) if image.ndim == 3 else 0.0


def input_warnings(image: np.ndarray, task: str) -> list[str]:
    """Simple checks that the image looks like the task's training images; each failed check is a warning."""
    out = []
    colour = colourfulness(image)
    g = grey(image)
    if task == "cxr" and colour > 0.05:
        out.append("This is a colour image; chest X-rays are grey. The X-ray model answers anyway, but its answer "
                   "says nothing about a photograph: check the task.")
    if task == "retina":
        if image.ndim == 2 or colour < 0.02:
            out.append("This image is grey; fundus photographs are in colour and the model reads their green "
                       "channel. Check that it is a fundus photograph.")
        dark = float((g < 20 / 255).mean())
        if dark < 0.03:
            out.append("The image has no dark border around a round field of view, as fundus photographs have: "
                       "it may not be one, or it was cropped.")
    if task == "cells":
        if colour > 0.05:
            out.append("This is a colour image; the nuclei model was trained on grey fluorescence images. Its "
                       "channels are averaged.")
        lo, med, hi = np.percentile(g, [1, 50, 99])
        if med - lo > 0.5 * max(hi - lo, 1e-6):
            out.append("The background is not dark: the model was trained on bright nuclei on a dark background "
                       "(fluorescence); brightfield or stained tissue images are unlike its training data.")
    return out


def suggest_task(image: np.ndarray) -> str:
    """A guess of the task from the image alone: colour with a dark border is a fundus photograph, grey with a
    dark background a fluorescence image, anything else a chest X-ray. The user can always choose."""
    g = grey(image)
    if colourfulness(image) > 0.05 and (g < 20 / 255).mean() > 0.05:
        return "retina"
    lo, med, hi = np.percentile(g, [1, 50, 99])
    if colourfulness(image) <= 0.05 and med - lo < 0.25 * max(hi - lo, 1e-6):
        return "cells"
    return "cxr"


# =================================================================================================== models
@dataclass
class Bundle:
    """A task's model with what :func:`analyze` needs: ``model``, ``T`` MC samples, ``params`` (task-specific:
    working scale or input size, decision threshold, calibration counts), ``reference`` (the validation images'
    epistemic scores and the referral threshold, or empty when unknown) and ``source``, in words."""

    task: str
    model: torch.nn.Module
    T: int
    source: str
    params: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)


_BUNDLES: dict[tuple, Bundle] = {}


def _say(msg: str) -> None:
    print(msg, flush=True)


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _cached_json(name: str, key: str, compute: Callable[[], dict]) -> dict:
    """``compute()`` once per ``key``, kept in ``cache_dir()/name`` (small JSON: validation summaries)."""
    file = config.cache_dir() / name
    try:
        stored = json.loads(file.read_text())
        if stored.get("key") == key:
            return stored["value"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    value = compute()
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps({"key": key, "value": value}))
    return value


def _reference(scores: list[float], what: str) -> dict:
    """The referral threshold from the validation images' epistemic scores: their :data:`REFER_QUANTILE`
    quantile when there are at least 20, else :data:`REFER_MARGIN` times the largest (a quantile of a handful of
    images means little)."""
    s = np.asarray(scores, dtype=float)
    if len(s) >= 20:
        q, rule = float(np.quantile(s, REFER_QUANTILE)), f"the {REFER_QUANTILE:.0%} quantile"
    else:
        q, rule = float(REFER_MARGIN * s.max()), f"{REFER_MARGIN:g} times the largest"
    return {"threshold": q, "n": int(len(s)), "rule": rule, "what": what, "median": float(np.median(s))}


def load_bundle(task: str, checkpoint: str | Path | None = None, train_if_missing: bool = True,
                progress: bool = True, say: Callable[[str], None] = _say) -> Bundle:
    """The model of ``task`` for :func:`analyze`, kept in memory after the first call (see the module
    docstring for where it comes from). ``checkpoint``: a file of the chapter's format to load instead.
    ``train_if_missing=False`` raises :class:`~helpers.errors.DataError` instead of training."""
    if task not in TASKS:
        raise DataError(f"task {task!r}: choose one of {', '.join(TASKS)}")
    key = (task, str(checkpoint) if checkpoint else None, config.get_profile())
    if key not in _BUNDLES:
        if checkpoint is not None and not Path(checkpoint).expanduser().is_file():
            raise DataError(f"{Path(checkpoint).name}: no such checkpoint file; give the path of a .pt file "
                            "saved by the book, or leave it empty to use the book's model")
        loader = {"retina": _retina_bundle, "cxr": _cxr_bundle, "cells": _cells_bundle}[task]
        _BUNDLES[key] = loader(None if checkpoint is None else Path(checkpoint).expanduser(), train_if_missing,
                               progress, say)
    return _BUNDLES[key]


def clear_bundles() -> None:
    """Forget the models kept in memory (the next :func:`load_bundle` loads them again)."""
    _BUNDLES.clear()


def _missing(task: str, chapter: str) -> DataError:
    return DataError(f"no cached {task} model: run {chapter} once (it caches its model), or allow the app to "
                     "train one with the quick profile, or give a checkpoint")


# ------------------------------------------------------------------------------------------------- retina
def _first_cached(load: Callable, candidates) -> tuple | None:
    """The first of ``(path, recipe, source)`` whose checkpoint ``load(path, recipe=recipe)`` accepts, as
    ``(model, meta, path, recipe, source)``; None when every one is missing or was trained with another recipe."""
    for path, rec, source in candidates:
        try:
            return load(path, recipe=rec) + (path, rec, source)
        except DataError:
            continue
    return None


def _retina_bundle(checkpoint, train_if_missing, progress, say) -> Bundle:
    from helpers.data import fetch
    from helpers.data.retina import chase_split, load_chase, to_tensors
    from helpers.models.unet import UNet, load_checkpoint, recipe, save_checkpoint, train_unet

    profile = config.get_profile()
    rec = recipe(profile)
    if checkpoint is not None:
        model, meta = load_checkpoint(checkpoint)
        path, source = checkpoint, f"your checkpoint {checkpoint.name}"
        rec = {**rec, **(meta.get("recipe") or {}), "scale": meta.get("scale", rec["scale"])}
    else:
        found = _first_cached(load_checkpoint, (
            (config.cache_dir() / f"retina_unet_{profile}.pt", rec, f"chapter 4's cached {profile}-profile U-Net"),
            (config.cache_dir() / "app_retina_unet_quick.pt", recipe("quick"),
             "the U-Net the app trained with chapter 4's quick recipe")))
        if found is None:
            if not train_if_missing:
                raise _missing("retina", "chapter 4")
            rec, path = recipe("quick"), config.cache_dir() / "app_retina_unet_quick.pt"
            train_all, _ = chase_split(load_chase(fetch("chase_db1")))
            train = train_all[:-2]
            say(f"No cached retina model: training chapter 4's U-Net once with the quick profile ({rec['steps']} "
                f"steps on {len(train)} CHASE_DB1 images; minutes on a CPU). It is cached for the next time.")
            x, y, fov = to_tensors(train, rec["scale"])
            torch.manual_seed(rec["seed"])
            model = UNet(base=rec["base"], p=rec["p"], dropout=rec["dropout"])
            train_unet(model, x, y, fov, steps=rec["steps"], patch=rec["patch"], batch=rec["batch"], lr=rec["lr"],
                       bce_weight=rec["bce_weight"], generator=torch.Generator().manual_seed(rec["seed"]),
                       progress=progress)
            save_checkpoint(model, path, scale=rec["scale"], n_train=len(train), recipe=rec)
            meta, source = {"scale": rec["scale"]}, "the U-Net the app trained with chapter 4's quick recipe"
        else:
            model, meta, path, rec, source = found
    model.eval()
    scale = float(meta.get("scale", rec["scale"]))
    bundle = Bundle("retina", model, int(rec.get("T", 16)), source, {"scale": scale})

    def compute() -> dict:   # chapter 4's two validation images (Image_10L, Image_10R)
        train_all, _ = chase_split(load_chase(fetch("chase_db1")))
        return {"scores": [_retina_maps(bundle, s.image)["epistemic_score"] for s in train_all[-2:]]}

    if checkpoint is not None:   # the book's validation photographs say nothing about a model trained on yours
        return bundle
    ref = _cached_json(f"app_reference_retina_{_digest(path)}.json", f"T{bundle.T}-s{scale}", compute)
    bundle.reference = _reference(ref["scores"], "mean mutual information in the field of view (nats)")
    return bundle


def _retina_maps(bundle: Bundle, image: np.ndarray, saliency: bool = False) -> dict:
    """Chapter 4's prediction of one fundus photograph (H×W×3 in [0, 1] or uint8), resized to the width the
    model was trained at; MC dropout with ``bundle.T`` samples (masks seeded)."""
    from skimage.transform import resize

    from helpers.data.retina import fov_by_threshold, preprocess
    from helpers.models.unet import predict

    img = image if image.dtype == np.uint8 else np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    h, w = img.shape[:2]
    width = round(CHASE_WIDTH * bundle.params["scale"])
    size = (max(MIN_SIDE, round(h * width / w)), width)
    small = np.round(resize(img, size + img.shape[2:], anti_aliasing=True, preserve_range=True)).astype(np.uint8)
    fov = fov_by_threshold(small)
    no_fov = fov.mean() < 0.05
    if no_fov:
        fov = np.ones(size, bool)
    x = torch.from_numpy(preprocess(small, fov))[None, None]
    torch.manual_seed(0)
    m = predict(bundle.model, x, T=bundle.T, chunk_size=1)
    probs, mi = m["probs"][0, 0].numpy(), m["mutual_information"][0, 0].numpy()
    ale = m["aleatoric"][0, 0].numpy() if "aleatoric" in m else np.zeros_like(probs)
    out = {"image": small, "fov": fov, "no_fov": no_fov, "probs": probs, "mi": mi, "aleatoric": ale,
           "epistemic_score": float(mi[fov].mean()), "aleatoric_score": float(ale[fov].mean())}
    if saliency:
        out.update(_retina_saliency(bundle.model, x, mi, fov, probs))
    return out


def _retina_saliency(model, x: torch.Tensor, mi: np.ndarray, fov: np.ndarray, probs: np.ndarray) -> dict:
    """Chapter 4's saliency: integrated gradients (blurred baseline) of the mean vessel logit of the predicted
    vessel pixels at the centre of a 128-pixel crop, placed where the epistemic uncertainty is highest."""
    from scipy import ndimage as ndi

    from helpers.saliency import attribute, make_baseline, region_score

    h, w = mi.shape
    k = min(128, h, w) // 16 * 16
    inner = ndi.binary_erosion(fov, iterations=k // 2) if fov.sum() > 4 * k * k else fov
    smooth = np.where(inner, ndi.uniform_filter(np.where(fov, mi, 0), 32), -1.0)
    r, c = np.unravel_index(np.argmax(smooth), smooth.shape)
    r0, c0 = int(np.clip(r - k // 2, 0, h - k)), int(np.clip(c - k // 2, 0, w - k))
    crop = x[..., r0:r0 + k, c0:c0 + k]
    q = k // 4
    region = torch.zeros(k, k, dtype=torch.bool)
    region[q:3 * q, q:3 * q] = torch.from_numpy(probs[r0 + q:r0 + 3 * q, c0 + q:c0 + 3 * q] > 0.5)
    if not region.any():
        region[q:3 * q, q:3 * q] = True
    attr = attribute(region_score(model, region), crop, 0, "integrated_gradients",
                     baseline=make_baseline(crop, "blur"), n_steps=16, internal_batch_size=8)
    return {"saliency": attr[0, 0].numpy(), "saliency_box": (r0, c0, k), "saliency_region": region.numpy()}


# ------------------------------------------------------------------------------------------------- chest X-ray
def _cxr_bundle(checkpoint, train_if_missing, progress, say) -> Bundle:
    from helpers.models.vgg import (VGG16Classifier, WeightsUnavailable, imagenet_weights, load_head,
                                    random_weights)

    profile = config.get_profile()
    size = config.pick(96, 224)
    notes = []
    try:
        weights = imagenet_weights(fetch=train_if_missing)
    except WeightsUnavailable:
        if not train_if_missing:
            raise _missing("chest X-ray", "chapter 5") from None
        weights = random_weights(seed=1)
        notes.append("the ImageNet weights could not be fetched: RANDOM trunk weights stand in, so the "
                     "prediction is meaningless")
    net = VGG16Classifier(weights)
    candidates = [checkpoint] if checkpoint is not None else [
        config.cache_dir() / f"cxr_head_{profile}.pt", config.cache_dir() / f"app_cxr_head_{profile}.pt"]
    head = meta = None
    for path in candidates:
        try:
            head, meta = load_head(path)
        except DataError:
            if checkpoint is not None:
                raise
            continue
        if checkpoint is None and meta.get("weights") not in (None, weights.digest):
            head = None              # fitted on the features of other trunk weights
            continue
        source = (f"your top layer {path.name}" if checkpoint is not None
                  else "chapter 5's VGG16 with the top layer the app fitted as chapter 5 does (cached)"
                  if path.name.startswith("app_") else "chapter 5's VGG16 with its cached top layer")
        break
    if head is None:
        if not train_if_missing:
            raise _missing("chest X-ray", "chapter 5")
        head, meta = _train_cxr_head(net, size, progress, say)
        source = "chapter 5's VGG16 with a top layer the app fitted as chapter 5 does"
    net.head = head.eval()
    params = {"size": int(meta.get("size", size)), "threshold": float(meta.get("threshold", 0.5)),
              "notes": notes}
    ref = {}
    if meta.get("val_mi"):
        ref = _reference(meta["val_mi"], "mutual information of the top layer (nats)")
    return Bundle("cxr", net, 50, source + (f" ({weights.source})" if weights.name == "imagenet" else ""),
                  params, ref)


def _train_cxr_head(net, size: int, progress: bool, say) -> tuple:
    from sklearn.metrics import roc_curve

    from helpers.data.chestxray14 import load_grey
    from helpers.data.xray import find_images, split_by_patient
    from helpers.features import extract_features
    from helpers.models.vgg import save_head, select_top_layer
    from helpers.uncertainty import mc_predict

    profile = config.get_profile()
    split = config.pick((0.3, 0.3, 0.2, 0.2), (0.6, 0.0, 0.2, 0.2))
    splits = split_by_patient(find_images(), split, names=("train", "unused", "val", "test"))
    say("No cached chest X-ray top layer: fitting it once as chapter 5 does (VGG16 features of the training and "
        "validation patients, cached; then seconds).")
    feats = {k: extract_features(net, [r.path for r in splits[k]], lambda p: load_grey(p, size), size=size,
                                 desc=f"{k} features", progress=None if progress else False)
             for k in ("train", "val")}
    y = {k: torch.tensor([r.label for r in splits[k]]) for k in ("train", "val")}
    head, choice = select_top_layer(feats["train"], y["train"], feats["val"], y["val"],
                                    epochs=config.pick(60, 150))
    torch.manual_seed(0)
    mc = mc_predict(head, feats["val"], T=50)
    fpr, tpr, thr = roc_curve(y["val"].numpy(), mc["mean"][:, 1].numpy())
    meta = {"size": size, "threshold": float(thr[np.argmax(tpr - fpr)]), "p": choice["p"],
            "weight_decay": choice["weight_decay"], "weights": net.weights_info.digest,
            "val_mi": [float(v) for v in mc["mutual_information"]]}
    save_head(head, config.cache_dir() / f"app_cxr_head_{profile}.pt", **meta)
    return head, meta


def _cxr_maps(bundle: Bundle, image: np.ndarray) -> dict:
    """The chest X-ray prediction: ``T`` MC samples of the top layer on the frozen features (chapter 5), and
    Grad-CAM (chapter 3) of the pneumonia logit for 8 of the MC networks (chapter 3's one-mask-per-network
    ``frozen_dropout``): their mean is the saliency map, their spread the epistemic map. Dropout sits only in the
    top layer, so the trunk runs once and each network costs one backward pass through the last layers."""
    from torch.nn import functional as F

    from helpers.models.vgg import FEATURE_INDICES
    from helpers.uncertainty import frozen_dropout, mask_seeds, mc_predict

    size = bundle.params["size"]
    x = torch.from_numpy(np.ascontiguousarray(grey(image), dtype=np.float32))[None, None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    net = bundle.model
    last = FEATURE_INDICES[-1]                       # the last convolution: Grad-CAM's layer (net.cam_layer)
    with torch.enable_grad():
        a = net.trunk[:last + 1](net.preprocess(x)).detach().requires_grad_(True)
        f = net.pool(net.trunk[last + 1:](a.clone()))   # its ReLU works in place
        cams = []
        for s in mask_seeds(0, 8):
            with frozen_dropout(net.head, s):
                z = net.head(f)[0, 1]
            (g,) = torch.autograd.grad(z, a, retain_graph=True)
            cams.append(F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True)).detach())
    maps = F.interpolate(torch.cat(cams), size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()
    torch.manual_seed(0)
    mc = mc_predict(net.head, f.detach(), T=bundle.T, return_samples=True)
    return {"image": x[0, 0].numpy(), "p": float(mc["mean"][0, 1]),
            "epistemic_score": float(mc["mutual_information"][0]),
            "aleatoric_score": float(mc["expected_entropy"][0]),
            "saliency": maps.mean(0), "epistemic_map": maps.std(0),
            "samples": mc["samples"][:, 0, 1].numpy()}


# ------------------------------------------------------------------------------------------------- cells
def _cells_bundle(checkpoint, train_if_missing, progress, say) -> Bundle:
    from helpers.data import fetch
    from helpers.data.cells import load_labels, split_names
    from helpers.models.counting import (CountingUNet, load_counter, predict_counts, normalise, prepare, recipe,
                                         save_counter, train_counter)

    profile = config.get_profile()
    rec = recipe(profile)
    cells = {c.name: c for c in load_labels(fetch("cells"))}
    train_names, val_names, _ = split_names(sorted(cells), (0.5, 0.2, 0.3))   # chapter 6's split
    if checkpoint is not None:
        model, meta = load_counter(checkpoint)
        path, source = checkpoint, f"your checkpoint {checkpoint.name}"
        rec = {**rec, **(meta.get("recipe") or {})}
    else:
        found = _first_cached(load_counter, (
            (config.cache_dir() / f"cells_counter_{profile}.pt", rec,
             f"chapter 6's cached {profile}-profile counting network"),
            (config.cache_dir() / "app_cells_counter_quick.pt", recipe("quick"),
             "the counting network the app trained with chapter 6's quick recipe")))
        if found is None:
            if not train_if_missing:
                raise _missing("nuclei", "chapter 6")
            rec, path = recipe("quick"), config.cache_dir() / "app_cells_counter_quick.pt"
            train = [cells[n] for n in sorted(train_names)]
            say(f"No cached nuclei model: training chapter 6's network once with the quick profile "
                f"({rec['steps']} steps on {len(train)} images). It is cached for the next time.")
            torch.manual_seed(rec["seed"])
            model = CountingUNet(base=rec["base"], levels=rec["levels"], p=rec["p"], dropout=rec["dropout"])
            train_counter(model, prepare(train, rec["sigma"]), steps=rec["steps"], crop=rec["crop"],
                          batch=rec["batch"], lr=rec["lr"], seed=rec["seed"], progress=progress)
            save_counter(model, path, recipe=rec, n_train=len(train))
            source = "the counting network the app trained with chapter 6's quick recipe"
        else:
            model, _, path, rec, source = found
    model.eval()
    T = int(rec.get("T", 8))

    def compute() -> dict:   # chapter 6's validation images calibrate the interval (split conformal)
        val = [cells[n] for n in sorted(val_names)]
        torch.manual_seed(0)
        preds = predict_counts(model, [normalise(c.image) for c in val], T=T)
        return {"y": [float(c.count) for c in val], "mean": [p.count for p in preds],
                "std": [p.std for p in preds],
                "scores": [float(np.sqrt(p.var_epistemic)) / max(p.count, 1.0) for p in preds]}

    cal = _cached_json(f"app_calibration_cells_{_digest(path)}.json", f"T{T}", compute)
    notes = [] if checkpoint is None else [
        "With your checkpoint, the interval and the referral are calibrated on the book's validation images, not "
        "on yours: calibrate on your own images with `python -m helpers cells --calibrate`."]
    return Bundle("cells", model, T, source, {"cal": (np.array(cal["y"]), np.array(cal["mean"]),
                                                      np.array(cal["std"])), "notes": notes},
                  _reference(cal["scores"], "epistemic standard deviation of the count / count"))


def _cells_maps(bundle: Bundle, image: np.ndarray) -> dict:
    """Chapter 6's count with MC dropout, its 90 % split-conformal interval (calibrated on chapter 6's validation
    images) and integrated gradients of the count (chapter 6's ``CountScore``)."""
    from helpers.conformal import conformal_interval
    from helpers.models.counting import CountScore, normalise, predict_counts
    from helpers.models.unet import pad_to_multiple
    from helpers.saliency import attribute

    g = normalise(grey(image).astype(np.float32))
    torch.manual_seed(0)
    p = predict_counts(bundle.model, [g], T=bundle.T)[0]
    lo, hi = conformal_interval(np.array([p.count]), np.array([max(p.std, 1e-6)]), *bundle.params["cal"],
                                level=0.9)
    x, (h, w) = pad_to_multiple(torch.from_numpy(g)[None, None], 2 ** (bundle.model.levels - 1))
    attr = attribute(CountScore(bundle.model).eval(), x, 0, "integrated_gradients", n_steps=16,
                     internal_batch_size=8)[0, 0, :h, :w].numpy()
    return {"image": np.clip(g, 0, 1), "count": p.count, "low": float(lo[0]), "high": float(hi[0]),
            "instances": p.instances, "density": p.density, "epistemic_map": p.epistemic,
            "aleatoric_map": p.aleatoric, "std_epistemic": float(np.sqrt(p.var_epistemic)),
            "std_aleatoric": float(np.sqrt(p.var_aleatoric)), "seg_count": p.seg_count,
            "epistemic_score": float(np.sqrt(p.var_epistemic)) / max(p.count, 1.0), "saliency": attr}


# =================================================================================================== analyze
@dataclass
class AppResult:
    """What :func:`analyze` found for one image. ``headline``: the prediction in one line; ``prediction``: its
    numbers; ``epistemic`` and ``aleatoric``: one number each, with ``units``; ``maps``: name -> (title, H×W
    array, colour-bar label, signed?) for the prediction, the two uncertainties and the saliency; ``reading``:
    the plain-language reading; ``refer``: whether it says to refer; ``warnings``; ``details`` on the input and
    the model; ``seconds`` from the bytes to the result."""

    task: str
    name: str
    image: np.ndarray
    headline: str
    prediction: dict
    epistemic: float
    aleatoric: float
    units: dict
    maps: dict
    reading: str
    refer: bool
    warnings: list[str]
    details: list[str]
    seconds: float = 0.0
    overlay: dict = field(default_factory=dict)

    def figure(self, width: float = 7.5):
        """The input and the four maps, two rows of at most three panels, ``width`` inches wide."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 3, figsize=(width, width * 0.68), layout="constrained")
        self._draw(axes.ravel())
        fig.suptitle(f"{self.name}: {self.headline}")
        return fig

    def _draw(self, axes) -> None:
        from matplotlib.patches import Rectangle

        from helpers.plots.style import show_image

        show_image(axes[0], self.image, "input")
        box = self.overlay.get("box")
        if box is not None:
            r0, c0, k = box
            axes[0].add_patch(Rectangle((c0, r0), k, k, fill=False, edgecolor="#E69F00", lw=1.2))
        if self.overlay.get("instances") is not None:
            axes[0].contour(self.overlay["instances"] > 0, [0.5], colors="#E69F00", linewidths=0.5)
        order = [axes[1], axes[2], axes[3], axes[4]]
        for ax, key in zip(order, ("prediction", "saliency", "epistemic", "aleatoric")):
            title, arr, label, signed = self.maps[key]
            if arr is None:          # a number without a map: say so in the panel
                ax.axis("off")
                ax.text(0.5, 0.5, label, ha="center", va="center", transform=ax.transAxes)
            elif np.ndim(arr) == 1:  # MC samples of a probability, with the decision threshold
                ax.hist(arr, bins=np.linspace(0, 1, 21), color="#0072B2")
                ax.axvline(self.prediction.get("threshold", 0.5), color="#D55E00", ls="--", lw=1.2,
                           label="threshold")
                ax.set(xlabel=label, ylabel="MC samples", xlim=(0, 1))
                ax.legend(loc="upper left")
            else:
                show_image(ax, arr, "", signed=signed, colorbar=label, **({} if signed else {"vmin": 0.0}))
                if key == "saliency" and self.overlay.get("region") is not None:
                    ax.contour(self.overlay["region"], [0.5], colors="#009E73", linewidths=0.8)
            ax.set_title(title)
        ax = axes[5]
        ax.axis("off")
        verdict = "REFER: the model is unsure" if self.refer else "within the validation range"
        # Each number with its unit: the tasks measure the two parts in different units (e.g. a relative SD
        # beside an SD in nuclei), so bare numbers invite a wrong comparison.
        parts = [textwrap.fill(f"{k}: {getattr(self, k):.3g} {self.units.get(k, '')}".strip(), 34,
                               subsequent_indent="  ") for k in ("epistemic", "aleatoric")]
        ax.text(0.0, 0.95, "\n".join(parts) + f"\n\n{verdict}"
                + (f"\n{len(self.warnings)} warning(s)" if self.warnings else ""),
                va="top", ha="left", transform=ax.transAxes, fontsize=10,
                color="#D55E00" if self.refer else "black")
        ax.set_title("uncertainty")

    def png(self, dpi: int = 110) -> bytes:
        """:meth:`figure` as PNG bytes (what the app shows)."""
        import matplotlib.pyplot as plt

        fig = self.figure()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
        return buf.getvalue()

    def report_pdf(self) -> bytes:
        """A one-page A4 PDF report: the input, the numbers, the reading, the warnings, the maps and the caveat
        that this is not a medical device. Made in memory (matplotlib); nothing is written to disk."""
        import textwrap

        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(8.27, 11.69))
        lines = [("Trustworthy deep learning for medical imaging: what the book's model sees", 13, "bold"),
                 (f"File: {self.name}   |   task: {TASKS[self.task]}", 9, "normal"),
                 (f"Result: {self.headline}", 11, "bold"),
                 (f"Epistemic uncertainty: {self.epistemic:.4g} {self.units['epistemic']}   |   aleatoric: "
                  f"{self.aleatoric:.4g} {self.units['aleatoric']}", 9, "normal")]
        lines += [(t, 9, "normal") for t in textwrap.wrap("Reading: " + self.reading, 110)]
        for w in self.warnings:
            lines += [(t, 9, "normal") for t in textwrap.wrap("Warning: " + w, 110)]
        for d in self.details:
            lines += [(t, 9, "normal") for t in textwrap.wrap(d, 110)]
        y = 0.975
        for text, size, weight in lines:
            fig.text(0.06, y, text, fontsize=size, weight=weight, va="top")
            y -= 0.0125 * size / 8
        grid = fig.add_gridspec(2, 3, left=0.06, right=0.94, bottom=0.1, top=min(y - 0.02, 0.62),
                                hspace=0.35, wspace=0.45)
        self._draw([fig.add_subplot(grid[i, j]) for i in range(2) for j in range(3)])
        for i, t in enumerate(textwrap.wrap(CAVEAT, 105)):
            fig.text(0.06, 0.06 - i * 0.015, t, fontsize=9, weight="bold", color="#D55E00")
        buf = io.BytesIO()
        fig.savefig(buf, format="pdf", metadata={"Title": f"Report for {self.name}", "Creator": "helpers.app"})
        plt.close(fig)
        return buf.getvalue()

    def report_link(self, text: str = "Download the PDF report") -> str:
        """An HTML link that downloads :meth:`report_pdf` from a data URL (nothing is sent anywhere)."""
        stem = Path(self.name).stem or "image"
        data = base64.b64encode(self.report_pdf()).decode()
        return (f'<a class="app-report" download="{stem}_report.pdf" '
                f'href="data:application/pdf;base64,{data}">{text}</a>')


def _reading(refer_by_model: bool, ref: dict, score: float, what_fine: str) -> str:
    if not ref:
        return (f"{what_fine} No validation reference is stored for this model, so the app cannot say whether "
                "its uncertainty is unusual: treat the result with care.")
    if refer_by_model:
        return (f"The model is unsure: refer. Its epistemic uncertainty ({score:.3g}) is above {ref['rule']} of "
                f"its {ref['n']} validation images ({ref['threshold']:.3g}): the image is unlike what it learned "
                "from, so its answer should not be used.")
    return (f"{what_fine} Its epistemic uncertainty ({score:.3g}) is within the range of its {ref['n']} "
            f"validation images ({ref['rule']}: {ref['threshold']:.3g}).")


def analyze(file_bytes: bytes, task: str, *, name: str = "the file", checkpoint: str | Path | None = None,
            bundle: Bundle | None = None, train_if_missing: bool = True, progress: bool = True,
            say: Callable[[str], None] = _say) -> AppResult:
    """Decode ``file_bytes`` and run ``task``'s model on it (see the module docstring). ``task``: ``"retina"``,
    ``"cxr"``, ``"cells"`` or ``"auto"`` (:func:`suggest_task`). ``bundle``: a model to use instead of
    :func:`load_bundle`'s (tests inject small ones). Raises :class:`~helpers.errors.DataError` with one line for
    bad input."""
    start = time.perf_counter()
    task = (task or "").strip().lower()
    if task not in TASKS and task != "auto":
        raise DataError(f"task {task!r}: choose one of {', '.join(TASKS)}")
    dec = decode(file_bytes, name)
    warnings_: list[str] = [DICOM_REMINDER] if dec.dicom else []
    details = [f"Input: {dec.describe}" + (f" ({'; '.join(dec.notes)})" if dec.notes else "")]
    if task == "auto":
        task = suggest_task(dec.image)
        details.append(f"Task suggested from the image: {task}")
    h, w = dec.image.shape[:2]
    if task == "cells" and max(h, w) > MAX_CELLS_SIDE:
        raise DataError(f"{name} is {w}×{h} pixels; the nuclei model counts images up to {MAX_CELLS_SIDE} "
                        "pixels a side: cut it into tiles and count each")
    warnings_ += input_warnings(dec.image, task)
    if bundle is None:
        bundle = load_bundle(task, checkpoint, train_if_missing, progress, say)
    elif bundle.task != task:
        raise BookError(f"the bundle is for {bundle.task!r}, not {task!r}")
    details.append(f"Model: {bundle.source}; MC dropout with T = {bundle.T} samples")
    warnings_ += bundle.params.get("notes", [])
    ref = bundle.reference
    if task == "retina":
        m = _retina_maps(bundle, dec.image, saliency=True)
        if m["no_fov"]:
            warnings_.append("No field of view was found (the image is too dark): the whole image was read.")
        share = float((m["probs"][m["fov"]] > 0.5).mean())
        score = m["epistemic_score"]
        refer = bool(ref) and score > ref["threshold"]
        headline = f"vessels cover {share:.1%} of the field of view"
        maps = {"prediction": ("vessel probability", m["probs"], "probability", False),
                "saliency": ("saliency (IG, box)", m["saliency"], "attribution", True),
                "epistemic": ("epistemic (MI)", m["mi"], "nats", False),
                "aleatoric": ("aleatoric (head)", m["aleatoric"], "variance", False)}
        result = AppResult("retina", name, m["image"], headline, {"vessel_fraction": share}, score,
                           m["aleatoric_score"], {"epistemic": "nats (mean mutual information in the field of view)",
                                                  "aleatoric": "(mean predicted probability variance)"},
                           maps, _reading(refer, ref, score, "The vessel map is within what the model knows."),
                           refer, warnings_, details,
                           overlay={"box": m["saliency_box"], "region": m["saliency_region"]})
    elif task == "cxr":
        m = _cxr_maps(bundle, dec.image)
        thr = bundle.params["threshold"]
        label = "pneumonia" if m["p"] >= thr else "normal"
        score = m["epistemic_score"]
        refer = bool(ref) and score > ref["threshold"]
        headline = f"{label} (probability of pneumonia {m['p']:.2f}, threshold {thr:.2f})"
        fine = (f"The model reads {label}: the probability {m['p']:.2f} is "
                f"{'at or above' if m['p'] >= thr else 'below'} the threshold {thr:.2f} chosen on validation "
                "patients.")
        maps = {"prediction": ("MC probabilities", m["samples"], "probability", False),
                "saliency": ("Grad-CAM (pneumonia)", m["saliency"], "evidence", False),
                "epistemic": ("epistemic: CAM spread", m["epistemic_map"], "std over MC", False),
                "aleatoric": ("aleatoric", None, f"expected entropy\n{m['aleatoric_score']:.3f} nats\n"
                              "(one number per image)", False)}
        result = AppResult("cxr", name, m["image"], headline, {"probability": m["p"], "threshold": thr,
                                                                "label": label}, score, m["aleatoric_score"],
                           {"epistemic": "nats (mutual information)", "aleatoric": "nats (expected entropy)"},
                           maps, _reading(refer, ref, score, fine), refer, warnings_, details)
    else:
        m = _cells_maps(bundle, dec.image)
        score = m["epistemic_score"]
        refer = bool(ref) and score > ref["threshold"]
        headline = f"{m['count']:.1f} nuclei (90 % interval {m['low']:.1f}–{m['high']:.1f})"
        fine = (f"The count is {m['count']:.1f}, with a 90 % interval of {m['low']:.1f} to {m['high']:.1f} "
                "calibrated on validation images; it holds for images like those.")
        maps = {"prediction": ("density", m["density"] * 1e3, "×1e-3 cells/px", False),
                "saliency": ("saliency (IG of count)", m["saliency"], "attribution", True),
                "epistemic": ("epistemic (variance)", m["epistemic_map"] * 1e6, "×1e-6", False),
                "aleatoric": ("aleatoric (e^s)", m["aleatoric_map"] * 1e4, "×1e-4 cells²", False)}
        result = AppResult("cells", name, m["image"], headline,
                           {"count": m["count"], "low": m["low"], "high": m["high"], "nuclei_segmented":
                            m["seg_count"]}, score, m["std_aleatoric"],
                           {"epistemic": "(epistemic std of the count / count)",
                            "aleatoric": "nuclei (aleatoric std of the count)"},
                           maps, _reading(refer, ref, score, fine), refer, warnings_, details,
                           overlay={"instances": m["instances"]})
    if refer:
        result.warnings.append("The model's uncertainty says this image is unlike its validation images: refer "
                               "it to a person; do not use the prediction.")
    result.seconds = time.perf_counter() - start
    return result



# =================================================================================================== the widget
class AppWidget:
    """The app's page: a file upload, a task menu, an optional checkpoint path, and the result (figure, numbers,
    reading, warnings, PDF link) or the one-line message of a bad input. ``AppWidget().view`` is what the page
    displays (ipywidgets only, so it runs in Jupyter, Colab and Voila). ``bundles``: task -> :class:`Bundle` to
    use instead of :func:`load_bundle` (tests). The last upload is kept in memory only, so that changing the task
    reads it again."""

    def __init__(self, bundles: dict[str, Bundle] | None = None) -> None:
        import ipywidgets as w

        self.bundles = dict(bundles or {})
        self.upload = w.FileUpload(accept=".png,.jpg,.jpeg,.tif,.tiff,.dcm,.dicom,image/*,application/dicom",
                                   multiple=False, description="Upload image")
        self.task = w.Dropdown(options=[("suggest from the image", "auto"), ("retinal vessels (ch. 4)", "retina"),
                                        ("chest X-ray (ch. 5)", "cxr"), ("nuclei count (ch. 6)", "cells")],
                               value="auto", description="Task")
        self.checkpoint = w.Text(placeholder="optional: path of your own checkpoint (.pt)",
                                 description="Checkpoint", layout=w.Layout(width="32em"))
        self.status = w.HTML("<p class='app-status'>Choose a task, then upload an image ("
                             f"{FORMATS}). Nothing leaves this computer.</p>")
        self.log = w.Output()
        self.figure = w.Image(format="png", layout=w.Layout(max_width="100%", display="none"))
        self.numbers = w.HTML()
        self.report = w.HTML()
        self.result: AppResult | None = None
        self.error: str | None = None
        self._last: tuple[str, bytes] | None = None
        self.upload.observe(self._on_upload, names="value")
        self.task.observe(lambda _: self.run(), names="value")
        self.view = w.VBox([w.HBox([self.task, self.upload]), self.checkpoint, self.status, self.log,
                            self.numbers, self.figure, self.report])

    def _on_upload(self, change) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0] if isinstance(files, (list, tuple)) else next(iter(files.values()))
        self._last = (str(f.get("name", "upload")), bytes(f["content"]))
        self.run()

    def run(self) -> AppResult | None:
        """Analyse the last upload with the chosen task and show the result or the message."""
        import html

        if self._last is None:
            return None
        name, data = self._last
        self.status.value = f"<p class='app-status'>Reading {html.escape(name)} ...</p>"
        self.figure.layout.display = "none"
        self.numbers.value = self.report.value = ""
        self.result, self.error = None, None
        self.log.clear_output()
        task = self.task.value
        result, problem = None, None
        with self.log:   # messages and progress bars of a first training; an Output swallows exceptions, so
            try:         # they are caught inside it
                if task == "auto":
                    task = suggest_task(decode(data, name).image)
                bundle = self.bundles.get(task)
                ckpt = self.checkpoint.value.strip() or None
                result = analyze(data, task, name=name, bundle=bundle, checkpoint=None if bundle else ckpt)
            except BookError as exc:
                problem = ("Cannot read this file.", str(exc), "")
            except Exception as exc:  # noqa: BLE001 - the app must never show a traceback; say what happened
                problem = ("Something went wrong.", f"{type(exc).__name__}: {exc}",
                           " Try another file; the next upload works.")
        if result is None:
            title, self.error, hint = problem
            self.status.value = (f"<p class='app-error' style='color:#D55E00'><b>{title}</b> "
                                 f"{html.escape(self.error)}{hint}</p>")
            return None
        self.result = result
        items = [f"<b>{html.escape(result.headline)}</b>",
                 f"{html.escape(result.reading)}",
                 f"epistemic uncertainty {result.epistemic:.3g} {html.escape(result.units['epistemic'])}; "
                 f"aleatoric {result.aleatoric:.3g} {html.escape(result.units['aleatoric'])}"]
        items += [f"<span style='color:#D55E00'>Warning: {html.escape(x)}</span>" for x in result.warnings]
        items += [f"<small>{html.escape(d)}</small>" for d in result.details]
        self.numbers.value = ("<div class='app-result'><ul>" + "".join(f"<li>{i}</li>" for i in items)
                              + f"</ul><p><small>{html.escape(CAVEAT)}</small></p></div>")
        self.figure.value = result.png()
        self.figure.layout.display = ""
        self.report.value = result.report_link()
        self.status.value = (f"<p class='app-status'>Done in {result.seconds:.1f} s: {html.escape(name)} "
                             f"({TASKS[result.task]}).</p>")
        return result



# =================================================================================================== serving
def app_notebook(page: str | Path) -> "object":
    """The app as ``make app`` serves it: the page's title cell, its setup cell and its live-widget cell (the code
    cell that builds :class:`AppWidget`), without the worked examples that the website shows. Voila executes a
    notebook before showing it, so the app is ready in seconds instead of after every example has run."""
    import nbformat

    nb = nbformat.read(str(page), as_version=4)
    keep = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown" and not keep:
            keep.append(cell)                      # the title and the introduction
        elif cell.cell_type == "code" and "remove-cell" not in tags and (
                "helpers.notebook import setup" in cell.source or "AppWidget(" in cell.source):
            keep.append(cell)
            if "AppWidget(" in cell.source:
                break
    if not any(c.cell_type == "code" and "AppWidget(" in c.source for c in keep):
        raise BookError(f"{page}: no cell builds app.AppWidget(); is this the app page?")
    nb.cells = keep
    return nb


def serve(page: str | Path | None = None, port: int = 8866, voila_args: tuple[str, ...] = ()) -> int:
    """Serve :func:`app_notebook` of ``page`` (default: the repository's ``chapters/07_app.ipynb``) with Voila on
    ``http://127.0.0.1:PORT`` only, without a token and without opening a browser; with the book's offline
    template (``book/voila``: no style sheet from a CDN) when the repository is there. Blocks until Ctrl-C."""
    import os
    import signal
    import subprocess
    import sys
    import tempfile

    import nbformat

    root = config.repo_root()
    page = Path(page) if page is not None else (root / "chapters" / "07_app.ipynb" if root else None)
    if page is None or not Path(page).is_file():
        raise BookError("the app page chapters/07_app.ipynb was not found: run this from the book's repository")
    voila = Path(sys.executable).with_name("voila")
    if not voila.is_file():
        raise BookError("voila is not installed: pip install 'voila==0.5.13' (make app installs it)")
    env = dict(os.environ)
    args = [str(voila), "", f"--port={port}", "--no-browser", "--Voila.ip=127.0.0.1",
            "--VoilaConfiguration.show_tracebacks=False"]
    if root is not None and (root / "book" / "voila" / "templates" / "offline").is_dir():
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(root / "book"), env.get("JUPYTER_PATH")]))
        args.append("--template=offline")
    with tempfile.TemporaryDirectory(prefix="book-app-") as tmp:
        path = Path(tmp) / "app.ipynb"
        nbformat.write(app_notebook(page), str(path))
        args[1] = str(path)
        print(f"The app: http://127.0.0.1:{port} (this computer only; Ctrl-C stops it)", flush=True)
        proc = subprocess.Popen(args + list(voila_args), env=env, cwd=str(root or Path(page).parent))

        def stop(*_):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)  # a `kill` stops Voila and its kernel too, not only this process
        try:
            return proc.wait()
        except KeyboardInterrupt:      # Voila shuts its kernel down on SIGTERM
            proc.terminate()
            try:
                return proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                return proc.wait()

__all__ = ["CAVEAT", "DICOM_REMINDER", "MAX_BYTES", "TASKS", "AppResult", "AppWidget", "Bundle", "Decoded", "analyze",
           "app_notebook", "clear_bundles", "colourfulness", "decode", "input_warnings", "load_bundle", "serve",
           "suggest_task"]


if __name__ == "__main__":   # python -m helpers.app [--port 8866]: what `make app` runs
    import argparse

    parser = argparse.ArgumentParser(description="Serve the book's app on this computer only (Voila).")
    parser.add_argument("--port", type=int, default=8866)
    raise SystemExit(serve(port=parser.parse_args().port))
