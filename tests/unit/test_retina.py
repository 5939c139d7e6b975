"""Retinal loaders of chapter 4: the public layouts, a user's folder, and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.data.retina import (augment, chase_split, detect_layout, fov_by_threshold, load_drive, load_folder,
                                 load_retina, patch_sampler, preprocess, random_patches, read_mask, rescale, to_tensors)
from helpers.errors import DataError
from tests.conftest import shared_dataset


def fundus(h=64, w=72, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic fundus: a bright disc on black with dark vertical 'vessels'."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 2 - 3) ** 2
    vessels = disc & (xx % 12 < 2)
    img = np.zeros((h, w, 3), np.uint8)
    img[disc] = (180, 90, 40)
    img[vessels] = (120, 40, 20)
    return np.clip(img + rng.integers(0, 5, img.shape), 0, 255).astype(np.uint8), vessels


def write_folder(root, n=2, fov=False):
    for d in ("images", "masks") + (("fov",) if fov else ()):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, ves = fundus(seed=i)
        Image.fromarray(img).save(root / "images" / f"eye{i}.png")
        Image.fromarray(ves.astype(np.uint8) * 255).save(root / "masks" / f"eye{i}_vessels.png")
        if fov:
            Image.fromarray(np.full(ves.shape, 255, np.uint8)).save(root / "fov" / f"eye{i}.png")
    return root


def test_folder_layout_matches_by_name_and_derives_fov(tmp_path):
    root = write_folder(tmp_path / "mine")
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.png")}
    samples = load_retina(root)
    assert detect_layout(root) == "folder" and [s.name for s in samples] == ["eye0", "eye1"]
    s = samples[0]
    assert s.image.shape == (64, 72, 3) and s.vessels.dtype == bool and s.vessels.sum() > 0
    assert s.fov[32, 36] and not s.fov[0, 0]           # thresholded disc, black corner outside
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.png")} == before  # files untouched
    assert load_folder(write_folder(tmp_path / "withfov", fov=True))[0].fov.all()


def test_image_without_mask_names_the_file(tmp_path):
    root = write_folder(tmp_path)
    (root / "masks" / "eye1_vessels.png").unlink()
    with pytest.raises(DataError, match=r"no mask for eye1\.png"):
        load_folder(root)


def test_size_mismatch_nonbinary_and_unreadable(tmp_path):
    root = write_folder(tmp_path)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "masks" / "eye0_vessels.png")
    with pytest.raises(DataError, match=r"eye0_vessels\.png.*10×10.*72×64"):
        load_folder(root)
    Image.fromarray((np.arange(64 * 72).reshape(64, 72) % 7 * 30).astype(np.uint8)).save(
        root / "masks" / "eye0_vessels.png")
    with pytest.raises(DataError, match="not binary"):
        load_folder(root)
    (root / "images" / "eye0.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"eye0\.png: cannot read"):
        load_folder(root)


def test_wrong_channel_count(tmp_path):
    root = write_folder(tmp_path, n=1)
    Image.fromarray(np.zeros((64, 72, 2), np.uint8), mode="LA").save(root / "images" / "eye0.png")
    with pytest.raises(DataError, match=r"eye0\.png: 2 channels"):
        load_folder(root)


def test_unknown_layout_is_explained(tmp_path):
    with pytest.raises(DataError, match="not a DRIVE split"):
        load_retina(tmp_path)


def test_preprocess_green_clahe_and_fov():
    img, _ = fundus()
    fov = fov_by_threshold(img)
    x = preprocess(img, fov)
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    assert (x[~fov] == 0).all() and x[fov].std() > 0
    assert not np.allclose(preprocess(img, fov, clahe=False), x)


def test_tensors_patches_and_augment_keep_masks_aligned():
    img, ves = fundus(64, 64)
    from helpers.data.retina import RetinaImage
    s = RetinaImage("a", img, ves, fov_by_threshold(img), None)
    x, y, fov = to_tensors([s, rescale(s, 0.5)])
    assert x.shape == (2, 1, 64, 64) and y[1, 0, 32:].sum() == 0  # second image padded
    g = torch.Generator().manual_seed(0)
    xb, yb, fb = random_patches((x, y, fov), 24, 6, g)
    assert xb.shape == (6, 1, 24, 24) and (fb[:, :, 12, 12] == 1).all()  # centred inside the FOV
    xa, ya, _ = augment((xb, yb, fb), g)
    dark = (xa < 0.5) & (xa > 0)  # vessel pixels are darker: the labels moved with the image
    assert ya[dark].mean() > ya[~dark].mean()
    assert sorted(xa.flatten().tolist()) == pytest.approx(sorted(xb.flatten().tolist()))


def test_patch_sampler_draws_the_crops_of_a_search_at_every_draw():
    """Reference: the centres searched anew for each draw (``nonzero`` over the whole FOV, row-major)."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((3, 1, 40, 50), dtype=np.float32))
    fov = (torch.from_numpy(rng.random((3, 1, 40, 50))) > 0.7).float()
    size, half = 16, 8
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    sample = patch_sampler((x, fov), size)
    for n in (1, 7, 4):
        got = sample(n, g1)
        inside = fov[:, 0, half:40 - size + half + 1, half:50 - size + half + 1].nonzero()
        pick = inside[torch.randint(len(inside), (n,), generator=g2)]
        want = [torch.stack([t[i, :, r:r + size, c:c + size] for i, r, c in pick.tolist()]) for t in (x, fov)]
        assert all(torch.equal(a, b) for a, b in zip(got, want))
        assert (got[1][:, 0, half, half] == 1).all()
    with pytest.raises(DataError, match="no 16×16 patch"):
        patch_sampler((x, torch.zeros_like(fov)), size)


def test_chase_from_the_book_data():
    from helpers.data import fetch

    from helpers.data.retina import load_chase
    samples = load_chase(fetch("chase_db1"))
    train, test = chase_split(samples)
    assert len(train) == 20 and len(test) == 8 and test[0].name == "Image_11L"
    s = test[0]
    assert s.image.shape == (960, 999, 3) and s.fov.shape == s.vessels.shape
    assert 0.6 < s.fov.mean() < 0.8                      # the round field of view
    assert s.vessels[s.fov].mean() > 0.05                 # vessels lie inside it
    assert (s.vessels & ~s.fov).sum() < 0.01 * s.vessels.sum()


def test_drive_training_layout():
    root = shared_dataset("DRIVE", "training")
    samples = load_drive(root)
    assert len(samples) == 20 and samples[0].name == "21_training"
    assert samples[0].image.shape == (584, 565, 3) and 0.6 < samples[0].fov.mean() < 0.75
    with pytest.raises(DataError, match="DRIVE root"):
        load_drive(root.parent)


@pytest.fixture
def one_thread():
    """Tiny tensors: on a busy CPU, more threads only wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_command_line_on_a_folder(tmp_path, capsys, one_thread):
    import json

    from helpers.cli import main

    root = write_folder(tmp_path / "eyes", n=2)
    code = main(["retina", "--train", str(root), "--test", str(root), "--steps", "2",
                 "--checkpoint", str(tmp_path / "m.pt"), "--out", str(tmp_path / "maps")])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["n_train"] == 2 and out["n_test"] == 2
    for key in ("dice", "auc", "accuracy", "sensitivity", "specificity", "uncertainty_error_overlap", "ece",
                "dice_referred_10pct", "seconds"):
        assert key in out
    assert (tmp_path / "m.pt").is_file() and (tmp_path / "maps" / "eye0_entropy.png").is_file()
    # the checkpoint is loaded (weights_only) without --train
    assert main(["retina", "--test", str(root), "--checkpoint", str(tmp_path / "m.pt")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["dice"] == out["dice"]
    (root / "masks" / "eye1_vessels.png").unlink()
    assert main(["retina", "--train", str(root), "--test", str(root), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "eye1.png" in err and "Traceback" not in err


def test_read_mask_accepts_0_1_and_0_255_and_checks_size(tmp_path):
    m = np.zeros((6, 8), np.uint8)
    m[2:4, 3:6] = 1
    Image.fromarray(m).save(tmp_path / "a.png")
    Image.fromarray(m * 255).save(tmp_path / "b.png")
    a = read_mask(tmp_path / "a.png")
    assert a.dtype == bool and a.sum() == 6 and (a == read_mask(tmp_path / "b.png")).all()
    with pytest.raises(DataError, match=r"b\.png.*8×6"):
        read_mask(tmp_path / "b.png", shape=(8, 6))


# ------------------------------------------------------------------------------------------ decompression bombs
def _deflated_zeros(n: int, block: int) -> bytes:
    """A zlib stream of ``n`` zero bytes, built from one compressed ``block`` (a full flush resets the history,
    so every block compresses to the same bytes): 400 MB of zeros in about 400 kB, in milliseconds."""
    import struct
    import zlib

    assert n % block == 0
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(bytes(block)) + c.flush(zlib.Z_FULL_FLUSH)
    return b"\x78\xda" + piece * (n // block) + c.flush() + struct.pack(">I", (n % 65521) << 16 | 1)


def bomb_png(path, w: int = 20000, h: int = 20000):
    """A valid grey PNG of w×h black pixels (20000×20000: 400 megapixels in a file of about 0.4 MB)."""
    import math
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    data = _deflated_zeros(h * (w + 1), (w + 1) * math.gcd(h, 1000))  # each row: filter byte 0, then pixels
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def bomb_tiff(path, w: int = 20000, h: int = 20000):
    """A valid grey, deflate-compressed TIFF of w×h black pixels, one strip."""
    import math
    import struct

    data = _deflated_zeros(w * h, w * math.gcd(h, 1000))
    tags = [(256, 4, w), (257, 4, h), (258, 3, 8), (259, 3, 8), (262, 3, 1), (273, 4, 8), (277, 3, 1),
            (278, 4, h), (279, 4, len(data))]  # width, height, 8 bits, deflate, black is 0, strip, 1 sample
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", v, 0) if kind == 3 else struct.pack("<I", v))
        for tag, kind, v in tags) + struct.pack("<I", 0)
    path.write_bytes(b"II*\0" + struct.pack("<I", 8 + len(data)) + data + ifd)
    return path


def bomb_gif(path, w: int = 20000, h: int = 20000):
    """A valid GIF whose canvas is w×h (one 1×1 frame on it): Pillow decodes it to the whole canvas."""
    import struct

    path.write_bytes(b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
                     + b"," + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00" + b";")
    return path


def test_the_bomb_files_are_real_images(tmp_path, monkeypatch):
    """The same writers at a small size decode to black images of the declared size."""
    for write in (bomb_png, bomb_tiff):
        with Image.open(write(tmp_path / f"small{write.__name__}", 40, 30)) as im:
            assert im.size == (40, 30) and not np.asarray(im).any()
    with Image.open(bomb_gif(tmp_path / "small.gif", 40, 30)) as im:
        assert im.size == (40, 30)
        im.load()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    for write in (bomb_png, bomb_tiff, bomb_gif):
        with Image.open(write(tmp_path / f"big{write.__name__}")) as im:  # header only: nothing is decoded
            assert im.size == (20000, 20000)


@pytest.mark.parametrize("write", [bomb_tiff, bomb_png, bomb_gif])
def test_a_decompression_bomb_image_or_mask_is_a_one_line_error(tmp_path, write):
    from helpers.data.retina import read_image

    path = write(tmp_path / "21_training.tif")
    before = (path.stat().st_mtime_ns, path.read_bytes())
    for read, what in ((read_image, "image"), (read_mask, "mask")):
        with pytest.raises(DataError, match=r"21_training\.tif: the [a-z ]*declares 400,000,000 pixels") as err:
            read(path)
        assert "\n" not in str(err.value) and "decompression bomb" in str(err.value) and what in str(err.value)
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before  # the user's file is left as it was


def test_an_image_over_the_warning_limit_is_refused_too(tmp_path, monkeypatch):
    """Above MAX_IMAGE_PIXELS Pillow only warns (up to twice the limit); the loaders refuse it as well."""
    from helpers.data.retina import read_image

    img, ves = fundus(h=30, w=40)
    Image.fromarray(img).save(tmp_path / "eye.png")
    Image.fromarray(ves.astype(np.uint8) * 255).save(tmp_path / "ves.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1200 pixels: a warning, not an error, in Pillow
    with pytest.raises(DataError, match=r"eye\.png: the image declares 1,200 pixels \(the limit is 1,000"):
        read_image(tmp_path / "eye.png")
    with pytest.raises(DataError, match=r"ves\.png: the vessel mask declares 1,200 pixels"):
        read_mask(tmp_path / "ves.png", what="vessel mask")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1200)
    assert read_image(tmp_path / "eye.png").shape == (30, 40, 3) and read_mask(tmp_path / "ves.png").any()


def test_a_bomb_in_a_drive_folder_names_the_file(tmp_path):
    root = tmp_path / "training"
    write_drive(root, n=2)
    bomb_tiff(root / "images" / "22_training.tif")
    with pytest.raises(DataError, match=r"22_training\.tif: the image declares 400,000,000 pixels"):
        load_retina(root, "drive")
    write_drive(root, n=2)  # a small image again: now the vessel mask is the bomb
    bomb_gif(root / "1st_manual" / "22_manual1.gif")
    with pytest.raises(DataError, match=r"22_manual1\.gif: the vessel mask declares 400,000,000 pixels"):
        load_retina(root)


def write_drive(root, n: int = 2):
    """A DRIVE-style ``training`` folder of synthetic fundus images 21, 22, ... (TIFF, GIF masks)."""
    for d in ("images", "1st_manual", "mask"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img, ves = fundus(seed=i)
        Image.fromarray(img).save(root / "images" / f"{21 + i}_training.tif")
        Image.fromarray(ves.astype(np.uint8) * 255).save(root / "1st_manual" / f"{21 + i}_manual1.gif")
        Image.fromarray(np.full(ves.shape, 255, np.uint8)).save(root / "mask" / f"{21 + i}_training_mask.gif")
    return root
