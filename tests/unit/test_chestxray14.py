"""helpers.data.chestxray14: NIH ChestX-ray14, Kermany and folder-per-class layouts, image modes, and the
one-line errors for bad input (chapter 5 and ``python -m helpers cxr``)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from helpers.data.chestxray14 import (detect_layout, load_dataset, load_folder, load_grey, load_nih, read_grey,
                                      read_nih_csv)
from helpers.errors import DataError
from tests.conftest import shared_dataset

HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
          "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n")


def _png(path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)


def test_sixteen_bit_grey_and_rgb_load_to_the_same_grey(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    _png(tmp_path / "a16.png", ramp)
    a16 = read_grey(tmp_path / "a16.png")
    assert a16.dtype == np.float32 and a16.max() == pytest.approx(1.0) and a16.min() == 0.0
    assert len(np.unique(a16)) > 256, "16-bit values must not be clipped to 8 bits"
    grey8 = (ramp // 257).astype(np.uint8)
    _png(tmp_path / "g.png", grey8)
    _png(tmp_path / "rgb.png", np.repeat(grey8[..., None], 3, axis=2))
    _png(tmp_path / "rgba.png", np.concatenate([np.repeat(grey8[..., None], 3, 2),
                                                 np.full((64, 64, 1), 255, np.uint8)], 2))
    g, rgb, rgba = (read_grey(tmp_path / f) for f in ("g.png", "rgb.png", "rgba.png"))
    assert np.abs(g - rgb).max() <= 1 / 255 and np.abs(g - rgba).max() <= 1 / 255
    assert np.abs(a16 - g).max() < 2 / 255
    x = load_grey([tmp_path / "a16.png", tmp_path / "rgb.png"], 32)
    assert x.shape == (2, 1, 32, 32) and 0 <= x.min() and x.max() <= 1


def test_truncated_and_missing_images_name_the_file(tmp_path):
    _png(tmp_path / "ok.png", np.zeros((64, 64), np.uint8) + 7)
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("not an image")
    for name in ("cut.png", "text.png"):
        with pytest.raises(DataError, match=rf"{name}: cannot read this image"):
            read_grey(tmp_path / name)
    with pytest.raises(DataError, match="gone.png: image missing"):
        read_grey(tmp_path / "gone.png")


def _nih(root, rows, present):
    root.mkdir(parents=True, exist_ok=True)
    (root / "Data_Entry_2017.csv").write_text(HEADER + "".join(
        f"{name},{labels},0,{pid},58,M,PA,2682,2749,0.143,0.143\n" for name, labels, pid in rows))
    for name in present:
        _png(root / "images_001" / "images" / name, np.zeros((16, 16), np.uint8))


def test_nih_layout_labels_patients_and_exclusions(tmp_path):
    rows = [("a.png", "Pneumonia|Effusion", 1), ("b.png", "No Finding", 1), ("c.png", "Cardiomegaly", 2),
            ("d.png", "No Finding", 3), ("e.png", "pneumonia", 4)]
    _nih(tmp_path, rows, ["a.png", "b.png", "c.png", "d.png", "e.png"])
    assert detect_layout(tmp_path) == "nih"
    recs, classes = load_dataset(tmp_path, finding="pneumonia")
    assert classes == ("No Finding", "Pneumonia")
    got = {r.path.name: (r.label, r.patient) for r in recs}
    assert got == {"a.png": (1, "nih-1"), "b.png": (0, "nih-1"), "d.png": (0, "nih-3")}   # c, e left out
    recs, _ = load_nih(tmp_path, "Cardiomegaly")
    assert {r.path.name: r.label for r in recs} == {"c.png": 1, "b.png": 0, "d.png": 0}


@pytest.mark.parametrize("problem, message", [
    ("no_csv", "no Data_Entry_2017.csv"), ("bad_columns", "no column 'Patient ID'"),
    ("absent", "b.png is listed in Data_Entry_2017.csv but absent"), ("one_class", "has no images"),
    ("bad_finding", "finding 'Flu'")])
def test_nih_bad_input_is_one_clear_line(tmp_path, problem, message):
    rows = [("a.png", "Pneumonia", 1), ("b.png", "No Finding", 2)]
    _nih(tmp_path, rows, ["a.png", "b.png"])
    finding = "Pneumonia"
    if problem == "no_csv":
        (tmp_path / "Data_Entry_2017.csv").unlink()
    elif problem == "bad_columns":
        (tmp_path / "Data_Entry_2017.csv").write_text("Image Index,Finding Labels\na.png,Pneumonia\n")
    elif problem == "absent":
        (tmp_path / "images_001" / "images" / "b.png").unlink()
    elif problem == "one_class":
        _nih(tmp_path, [("a.png", "Pneumonia", 1)], ["a.png"])
    elif problem == "bad_finding":
        finding = "Flu"
    with pytest.raises(DataError, match=message) as err:
        load_nih(tmp_path, finding)
    assert "\n" not in str(err.value)


def test_nih_partial_download_can_be_skipped(tmp_path):
    _nih(tmp_path, [("a.png", "Pneumonia", 1), ("b.png", "No Finding", 2), ("z.png", "No Finding", 9)],
         ["a.png", "b.png"])
    recs, _ = load_nih(tmp_path, "Pneumonia", allow_missing=True)
    assert [r.path.name for r in recs] == ["a.png", "b.png"]


def test_folder_layout_any_names_and_errors(tmp_path):
    for cls, n in (("healthy", 3), ("tb", 2)):
        for i in range(n):
            _png(tmp_path / "ok" / cls / f"scan{i}.png", np.zeros((8, 8), np.uint8))
    recs, classes = load_folder(tmp_path / "ok")
    assert classes == ("healthy", "tb") and sum(r.label for r in recs) == 2
    assert len({r.patient for r in recs}) == 3            # no patient in the names: one per stem
    (tmp_path / "one" / "healthy").mkdir(parents=True)
    with pytest.raises(DataError, match="two are needed"):
        load_folder(tmp_path / "one")
    (tmp_path / "one" / "tb").mkdir()
    _png(tmp_path / "one" / "healthy" / "x.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="class 'tb' has no images"):
        load_folder(tmp_path / "one")
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(tmp_path / "absent")


def test_kermany_download_layout(tmp_path):
    for split, cls, name in (("train", "NORMAL", "IM-0001-0001.jpeg"), ("train", "PNEUMONIA",
                             "person1_virus_1.jpeg"), ("test", "NORMAL", "IM-0002-0001.jpeg"),
                             ("test", "PNEUMONIA", "person2_bacteria_3.jpeg")):
        _png(tmp_path / split / cls / name, np.zeros((8, 8), np.uint8))
    assert detect_layout(tmp_path) == "kermany"
    recs, classes = load_dataset(tmp_path)
    assert classes == ("NORMAL", "PNEUMONIA") and [r.label for r in recs].count(1) == 2
    assert {r.patient for r in recs} == {"IM-0001", "IM-0002", "person1", "person2"}


def test_real_chestxray14_sample_files(tmp_path):
    src = shared_dataset("chest_xray14_sample")
    rows = read_nih_csv(src / "Data_Entry_2017.csv")
    assert [r["Image Index"] for r in rows] == ["00000001_000.png", "00000002_000.png", "00000013_003.png"]
    recs, _ = load_nih(src, "Cardiomegaly", csv_path=src / "Data_Entry_2017.csv")
    assert {r.path.name: (r.label, r.patient) for r in recs} == {"00000001_000.png": (1, "nih-1"),
                                                                 "00000002_000.png": (0, "nih-2")}
    x = load_grey([r.path for r in recs], 64)
    assert x.shape == (2, 1, 64, 64) and 0.05 < x.mean() < 0.95
    assert read_grey(recs[0].path).shape == (1024, 1024)
    sample = read_nih_csv(src / "sample_labels.csv")
    assert len(sample) == 5600   # the data README says 5,606 rows; the file holds 5,600 and all(r["Patient ID"].strip() for r in sample)
    findings = {f for r in sample for f in r["Finding Labels"].split("|")}
    assert "No Finding" in findings and "Pneumonia" in findings and len(findings) == 15
    with pytest.raises(DataError, match="listed in sample_labels.csv but absent"):
        load_nih(src, "Pneumonia", csv_path=src / "sample_labels.csv")
    # the original layout: images_001/images/ beside the CSV
    shutil.copy(src / "Data_Entry_2017.csv", tmp_path / "Data_Entry_2017.csv")
    (tmp_path / "images_001" / "images").mkdir(parents=True)
    for r in rows:
        shutil.copy(src / "images" / r["Image Index"], tmp_path / "images_001" / "images")
    recs2, _ = load_dataset(tmp_path, "auto", finding="Cardiomegaly")
    assert len(recs2) == 2


def test_a_decompression_bomb_is_a_one_line_error_naming_the_file(tmp_path):
    from tests.unit.test_retina import bomb_png

    bomb = bomb_png(tmp_path / "00000001_000.png")
    before = bomb.read_bytes()
    with pytest.raises(DataError, match=r"00000001_000\.png: the X-ray declares 400,000,000 pixels") as info:
        read_grey(bomb)
    assert "\n" not in str(info.value) and bomb.read_bytes() == before
