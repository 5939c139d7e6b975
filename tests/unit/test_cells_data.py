"""Cell loaders of chapter 6: every layout of the issue, 8/16-bit grey/RGB(A), and one-line errors on bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from helpers.data.cells import (detect_layout, load_cells, load_counts, load_dots, load_dsb, load_labels, load_vgg,
                                read_counts, read_image, read_labels, split_names)
from helpers.errors import DataError
from tests.conftest import shared_dataset


def blobs(h=40, w=48):
    """Three square nuclei, two of them touching (labels 1 and 2 share an edge)."""
    lab = np.zeros((h, w), np.uint16)
    lab[5:15, 5:15] = 1
    lab[5:15, 15:25] = 2
    lab[25:35, 30:40] = 3
    img = (lab > 0) * 200 + 10
    return img.astype(np.uint8), lab


def write_labels(root, n=2, dirname="labels", bits=16):
    (root / "images").mkdir(parents=True)
    (root / dirname).mkdir()
    for i in range(n):
        img, lab = blobs()
        Image.fromarray(img).save(root / "images" / f"im{i}.png")
        Image.fromarray(lab if bits == 16 else lab.astype(np.uint8)).save(root / dirname / f"im{i}.png")
    return root


def test_label_folder_8_and_16_bit(tmp_path):
    for bits in (8, 16):
        root = write_labels(tmp_path / str(bits), bits=bits, dirname="masks" if bits == 8 else "labels")
        cells = load_cells(root)
        assert detect_layout(root) == "labels" and [c.name for c in cells] == ["im0", "im1"]
        c = cells[0]
        assert c.count == 3 and c.labels.max() == 3 and c.image.dtype == np.float32
        assert abs(c.image.max() - 210 / 255) < 1e-6
        assert np.allclose(c.centres[0], (9.5, 9.5))


def test_colour_indexed_masks_split_touching_and_reuse_colours(tmp_path):
    img, lab = blobs()
    colour = np.zeros(lab.shape + (3,), np.uint8)
    colour[lab == 1] = (255, 0, 0)
    colour[lab == 2] = (0, 255, 0)      # touching nucleus: another colour
    colour[lab == 3] = (255, 0, 0)      # a colour reused far away: another instance
    path = tmp_path / "m.png"
    Image.fromarray(colour).save(path)
    labels = read_labels(path)
    assert labels.max() == 3 and len(np.unique(labels[lab == 1])) == 1
    assert labels[10, 10] != labels[10, 20] and labels[10, 10] != labels[30, 35]


def test_images_16_bit_and_rgba(tmp_path):
    a = (np.arange(20 * 30).reshape(20, 30) * 100).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "g16.png")
    assert np.isclose(read_image(tmp_path / "g16.png").max(), a.max() / 65535)
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = 51
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(tmp_path / "c.png")
    out = read_image(tmp_path / "c.png")
    assert out.shape == (20, 30) and np.allclose(out, 0.2)


def test_image_without_labels_size_mismatch_empty_unreadable(tmp_path):
    root = write_labels(tmp_path / "a")
    (root / "labels" / "im1.png").unlink()
    with pytest.raises(DataError, match=r"no label image for im1\.png"):
        load_labels(root)
    root = write_labels(tmp_path / "b")
    Image.fromarray(np.zeros((10, 12), np.uint16)).save(root / "labels" / "im0.png")
    with pytest.raises(DataError, match=r"im0\.png: the label image is 12×10 pixels but its image is 48×40"):
        load_labels(root)
    (root / "labels" / "im0.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"im0\.png: the label image file is empty"):
        load_labels(root)
    (root / "images" / "im0.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"im0\.png: cannot read the image"):
        load_labels(root)


def test_jpeg_label_image_is_refused(tmp_path):
    img, lab = blobs()
    root = write_labels(tmp_path)
    (root / "labels" / "im0.png").unlink()
    Image.fromarray((lab * 60).astype(np.uint8)).save(root / "labels" / "im0.jpg", quality=75)
    with pytest.raises(DataError, match=r"im0\.jpg: a lossy \(JPEG\) label image.*save labels as PNG"):
        load_labels(root)


def test_image_without_nuclei_is_count_zero(tmp_path):
    root = write_labels(tmp_path)
    Image.fromarray(np.zeros((40, 48), np.uint16)).save(root / "labels" / "im0.png")
    c = load_labels(root)[0]
    assert c.count == 0 and c.centres.shape == (0, 2)


def dsb_folder(root, n_masks=(2, 0)):
    for k, n in enumerate(n_masks):
        d = root / f"id{k}"
        (d / "images").mkdir(parents=True)
        (d / "masks").mkdir()
        img, lab = blobs()
        rgba = np.stack([img] * 3 + [np.full_like(img, 255)], -1)
        Image.fromarray(rgba).save(d / "images" / f"id{k}.png")
        for j in range(1, n + 1):
            Image.fromarray(((lab == j) * 255).astype(np.uint8)).save(d / "masks" / f"m{j}.png")
    return root


def test_dsb_layout_and_errors(tmp_path):
    root = dsb_folder(tmp_path / "stage1_train")
    cells = load_dsb(tmp_path)          # the parent of stage1_train works too
    assert detect_layout(tmp_path) == "dsb" and [c.count for c in cells] == [2, 0]
    assert set(np.unique(cells[0].labels)) == {0, 1, 2}
    shutil.rmtree(root / "id1" / "masks")
    with pytest.raises(DataError, match=r"id1: no masks/ folder for id1\.png"):
        load_dsb(root)


def test_vgg_and_dot_layouts(tmp_path):
    img, _ = blobs()
    dots = np.zeros((40, 48, 3), np.uint8)
    dots[10, 10] = dots[10, 11] = dots[30, 35] = (255, 0, 0)   # two touching dots: two cells in VGG
    Image.fromarray(np.stack([img] * 3, -1)).save(tmp_path / "001cell.png")
    Image.fromarray(dots).save(tmp_path / "001dots.png")
    assert detect_layout(tmp_path) == "vgg" and load_vgg(tmp_path)[0].count == 3
    Image.fromarray(np.stack([img] * 3, -1)).save(tmp_path / "002cell.png")
    with pytest.raises(DataError, match=r"no dot annotation for 002cell\.png"):
        load_vgg(tmp_path)
    root = tmp_path / "ad"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    Image.fromarray(np.stack([img] * 3, -1)).save(root / "images" / "a.jpg")
    big = np.zeros((40, 48, 3), np.uint8)
    big[8:12, 8:12] = (250, 20, 20)
    big[28:32, 33:37] = (250, 20, 20)
    big[20, 20] = (150, 120, 120)                                # JPEG-like noise: not red enough
    Image.fromarray(big).save(root / "annotations" / "a.jpg", quality=90)
    c = load_cells(root)[0]
    assert detect_layout(root) == "dots" and c.count == 2


def test_counts_csv_and_its_errors(tmp_path):
    root = write_labels(tmp_path)
    shutil.rmtree(root / "labels")
    (root / "counts.csv").write_text("file,count\nim0.png,3\nim1.png,0\n")
    assert detect_layout(root) == "counts" and [c.count for c in load_counts(root)] == [3, 0]
    for text, message in [("file,count\nim0.png,3\nim1.png,\n", r"row 3: no count for im1\.png"),
                          ("im0.png,3\nim1.png,-2\n", r"row 2: count -2 of im1\.png must be a whole number"),
                          ("file,count\nim0.png,3\n", r"no count for im1\.png")]:
        (root / "counts.csv").write_text(text)
        with pytest.raises(DataError, match=message):
            load_counts(root)
    (root / "counts.csv").write_text("")
    with pytest.raises(DataError, match="missing or empty"):
        read_counts(root / "counts.csv")


def test_unknown_layout_and_split(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(DataError, match="unknown layout"):
        detect_layout(tmp_path / "x")
    parts = split_names([f"n{i}" for i in range(100)], (0.5, 0.2, 0.3))
    assert [len(p) for p in parts] == [50, 20, 30] and len(set(sum(parts, []))) == 100
    assert split_names([f"n{i}" for i in range(99, -1, -1)], (0.5, 0.2, 0.3)) == parts


def test_shipped_subset_matches_the_original_layout():
    """The shipped label images are the original per-nucleus masks of the same BBBC038 images."""
    from helpers.data import fetch

    root = shared_dataset("cells", "bbbc038", "stage1_train")
    shipped = {c.name: c for c in load_labels(fetch("cells"))}
    assert len(shipped) == 160
    tmp_ids = sorted(p.name for p in root.iterdir())[:3]
    for full in tmp_ids:
        d = root / full
        image = read_image(d / "images" / f"{full}.png")
        c = shipped[full[:12]]
        assert np.allclose(c.image, image) and c.count == len(list((d / "masks").glob("*.png")))


def test_real_layouts_vgg_and_adipocyte():
    vgg = load_vgg(shared_dataset("cells", "vgg_cells"), range(1, 4))
    assert [c.count for c in vgg] == [135, 233, 82] and vgg[0].image.shape == (256, 256)
    ad = load_dots(shared_dataset("cells", "adipocyte"))
    assert len(ad) == 200 and ad[0].count == 142 and ad[0].image.shape == (150, 150)


def test_a_decompression_bomb_is_a_one_line_error_naming_the_file(tmp_path):
    from helpers.data.cells import read_image
    from tests.unit.test_retina import bomb_png

    bomb = bomb_png(tmp_path / "plate_01.png")
    before = bomb.read_bytes()
    with pytest.raises(DataError, match=r"plate_01\.png: the image declares 400,000,000 pixels") as info:
        read_image(bomb)
    assert "\n" not in str(info.value) and bomb.read_bytes() == before
