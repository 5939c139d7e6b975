"""helpers.data.xray: patient ids, a split by patient, both folder layouts, clear errors (chapters 3 and 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.data.xray import (find_images, laplacian_energy, load_images, parse_patient, read_image,
                               split_by_patient)
from helpers.errors import DataError
from tests.conftest import shared_dataset


@pytest.mark.parametrize("name, patient", [
    ("person1017_bacteria_2948.jpeg", "person1017"), ("person26_virus_60.jpeg", "person26"),
    ("IM-0117-0001.jpeg", "IM-0117"), ("IM-0001-0001-0001.jpeg", "IM-0001"),
    ("NORMAL2-IM-1345-0001-0002.jpeg", "NORMAL2-IM-1345"), ("NORMAL2-IM-0012-0001.jpeg", "NORMAL2-IM-0012")])
def test_patient_id_from_file_name(name, patient):
    assert parse_patient(name) == patient


def test_unknown_file_name_is_a_clear_error():
    with pytest.raises(DataError, match="scan01.jpeg: cannot read a patient id"):
        parse_patient("scan01.jpeg")


def _fake(root, names_by_folder):
    for folder, names in names_by_folder.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            Image.fromarray(np.full((20, 24), 10 * i, dtype=np.uint8)).save(root / folder / name)


def test_original_kermany_layout_and_errors(tmp_path):
    _fake(tmp_path, {"train/NORMAL": ["IM-0001-0001.jpeg", "NORMAL2-IM-0001-0001.jpeg"],
                     "train/PNEUMONIA": ["person1_bacteria_1.jpeg", "person1_virus_2.jpeg"],
                     "test/NORMAL": ["IM-0002-0001.jpeg"], "test/PNEUMONIA": ["person3_virus_5.jpeg"],
                     "val/NORMAL": [], "val/PNEUMONIA": []})
    (tmp_path / "train/NORMAL/.DS_Store").write_text("junk")
    recs = find_images(tmp_path)
    assert [r.source for r in recs].count("train") == 4 and len(recs) == 6
    assert {r.patient for r in recs} == {"IM-0001", "NORMAL2-IM-0001", "IM-0002", "person1", "person3"}
    x, y = load_images(recs, size=16)
    assert x.shape == (6, 1, 16, 16) and y.tolist() == [r.label for r in recs]
    with pytest.raises(DataError, match="different sizes"):
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "test/NORMAL/IM-0009-0001.jpeg")
        load_images(find_images(tmp_path))
    (tmp_path / "test/NORMAL/IM-0010-0001.jpeg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="IM-0010-0001.jpeg: cannot read this image"):
        read_image(tmp_path / "test/NORMAL/IM-0010-0001.jpeg")
    with pytest.raises(DataError, match="expected sub-folders NORMAL"):
        find_images(tmp_path / "train" / "NORMAL")
    with pytest.raises(DataError, match="no such folder"):
        find_images(tmp_path / "nowhere")


def test_book_sample_split_has_no_patient_in_two_splits():
    recs = find_images()  # the book's shipped sample (data/chest_xray)
    assert len(recs) == 1023 and sum(r.label for r in recs) == 769
    splits = split_by_patient(recs, seed=0)
    patients = [{r.patient for r in part} for part in splits.values()]
    for i in range(len(patients)):
        for j in range(i + 1, len(patients)):
            assert not patients[i] & patients[j]
    assert sum(len(p) for p in splits.values()) == len(recs)
    assert split_by_patient(list(reversed(recs)), seed=0)["test"] == sorted(
        splits["test"], key=lambda r: str(r.path), reverse=True)  # order-independent
    assert 0.1 < len(splits["test"]) / len(recs) < 0.3
    assert split_by_patient(recs, seed=1)["test"] != splits["test"]


def test_shared_kermany_copy_reads_and_splits():
    root = shared_dataset("chest_xray_kermany")
    recs = find_images(root)
    assert len(recs) > 1000
    splits = split_by_patient(recs)
    assert not {r.patient for r in splits["train"]} & {r.patient for r in splits["test"]}


def test_laplacian_energy_is_zero_on_a_linear_ramp_and_grows_with_noise():
    ramp = torch.linspace(0, 1, 32).expand(32, 32)[None, None].clone()
    assert laplacian_energy(ramp).item() == pytest.approx(0.0, abs=1e-6)
    noisy = ramp + 0.05 * torch.randn_like(ramp)
    assert laplacian_energy(noisy).item() > 0.05


def test_a_decompression_bomb_xray_is_a_one_line_error(tmp_path, monkeypatch):
    """A PNG declaring 20000×20000 pixels (0.4 MB on disk), or one just over Pillow's warning limit: a
    one-line DataError naming the file, from read_image and from load_images; the file is left as it was."""
    from tests.unit.test_retina import bomb_png

    folder = tmp_path / "NORMAL"
    folder.mkdir()
    bomb = bomb_png(folder / "IM-0001-0001.png")
    before = bomb.read_bytes()
    for read in (lambda: read_image(bomb), lambda: load_images(find_images_in(tmp_path))):
        with pytest.raises(DataError, match=r"IM-0001-0001\.png: the X-ray declares 400,000,000 pixels") as err:
            read()
        assert "\n" not in str(err.value)
    assert bomb.read_bytes() == before
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(small)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1200 pixels: Pillow would only warn
    with pytest.raises(DataError, match=r"small\.png: the X-ray declares 1,200 pixels"):
        read_image(small)


def find_images_in(root):
    """Records for every image in ``root/NORMAL`` (label 0), without the patient-name rules."""
    from helpers.data.xray import Record

    return [Record(p, 0, p.stem) for p in sorted((root / "NORMAL").iterdir())]


# ---------------------------------------------------------------------------------------------------------- the tour
def test_tour_mc_on_the_head_equals_mc_on_the_whole_cnn():
    """The tour samples only SmallCNN's mc_head (pooled features computed once): the same numbers as whole passes,
    and the channel dropout after pooling is the same network as before pooling (same seed, same masks)."""
    from torch import nn

    from helpers.models.cnn import SmallCNN
    from helpers.uncertainty import mc_predict

    torch.manual_seed(0)
    for pool in ("max", "avg"):
        model = SmallCNN(in_channels=1, width=8, depth=3, p=0.3, p_conv=0.5, pool=pool).eval()
        x = torch.rand(6, 1, 32, 32)
        torch.manual_seed(1)
        whole = mc_predict(model, x, T=16, chunk_size=96, return_samples=True)["samples"]
        for part, inputs in [(model.head, model.features), (model.mc_head, model.pooled_features)]:
            torch.manual_seed(1)
            with torch.no_grad():
                sampled = mc_predict(part, inputs(x), T=16, chunk_size=96, return_samples=True)["samples"]
            torch.testing.assert_close(whole, sampled)
        assert not any(m.training for m in model.modules()), "mc_predict restores eval mode"
        pool_layer, drop2d, *rest = model.head
        before = nn.Sequential(model.features, drop2d, pool_layer, *rest)   # dropout before pooling
        torch.manual_seed(2)
        a = mc_predict(before, x, T=16, chunk_size=96, return_samples=True)["samples"]
        torch.manual_seed(2)
        b = mc_predict(model, x, T=16, chunk_size=96, return_samples=True)["samples"]
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(a[0], a[1]), "the masks must differ between passes"


def test_tour_validation_split_supports_its_choices():
    """The tour fits its referral threshold and the texture score's direction on the validation patients of the
    book's sample: both classes must be there in numbers, and the texture direction must agree with test."""
    from sklearn.metrics import roc_auc_score

    splits = split_by_patient(find_images())
    for part in ("val", "test"):
        labels = [r.label for r in splits[part]]
        assert min(labels.count(0), labels.count(1)) >= 30, f"{part}: too few of one class for an AUC"
    tex = {}
    for part in ("val", "test"):
        x, y = load_images(splits[part], 64)
        tex[part] = roc_auc_score(y.numpy(), laplacian_energy(x).numpy())
    assert (tex["val"] - 0.5) * (tex["test"] - 0.5) > 0, tex
    assert abs(tex["val"] - 0.5) > 0.25, f"texture should separate the validation classes: AUC {tex['val']:.3f}"
