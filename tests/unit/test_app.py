"""The app's logic (helpers.app.analyze) and its widget, without a browser: every task on a shipped sample image
with tiny untrained models (the plumbing, the shapes, the report), every bad input the issue lists (one-line
DataError, nothing else), DICOM decoding, and the widget driven by setting the upload's value. One test uses the
chapters' cached models when they are there and skips, saying why, when they are not."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import app
from helpers.data.dicom import read_dicom
from helpers.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
RETINA = DATA / "chase_db1" / "Image_11L.jpg"
CXR = sorted((DATA / "chest_xray" / "PNEUMONIA").iterdir())[0]
CELLS = sorted((DATA / "cells" / "images").iterdir())[0]
REF = {"threshold": 1.0, "n": 30, "rule": "the 95% quantile", "what": "test", "median": 0.1}


# ----------------------------------------------------------------------------------------------- tiny bundles
@pytest.fixture(scope="module")
def bundles() -> dict[str, app.Bundle]:
    """Untrained models of each task's architecture, small enough to run in a second on a CPU."""
    from helpers.models.counting import CountingUNet
    from helpers.models.unet import UNet
    from helpers.models.vgg import VGG16Classifier, random_weights

    torch.manual_seed(0)
    retina = app.Bundle("retina", UNet(base=4, p=0.2, log_var=True).eval(), 2, "tiny U-Net",
                        {"scale": 0.2}, dict(REF))
    net = VGG16Classifier(random_weights(0), p=0.5)
    cxr = app.Bundle("cxr", net, 4, "random VGG16", {"size": 32, "threshold": 0.5}, dict(REF))
    cal = (np.array([10.0, 20, 30, 40, 50] * 4), np.array([11.0, 19, 33, 38, 52] * 4), np.full(20, 2.0))
    cells = app.Bundle("cells", CountingUNet(base=4, levels=3).eval(), 2, "tiny counter", {"cal": cal}, dict(REF))
    return {"retina": retina, "cxr": cxr, "cells": cells}


def png_bytes(arr: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format=fmt) if mode else Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------- every task
@pytest.mark.parametrize("task, path", [("retina", RETINA), ("cxr", CXR), ("cells", CELLS)])
def test_analyze_each_task_on_a_shipped_sample(bundles, task, path):
    r = app.analyze(path.read_bytes(), task, name=path.name, bundle=bundles[task])
    assert r.task == task and r.name == path.name
    assert np.isfinite(r.epistemic) and r.epistemic >= 0 and np.isfinite(r.aleatoric) and r.aleatoric >= 0
    for key in ("prediction", "saliency", "epistemic", "aleatoric"):
        assert key in r.maps
    for key in ("saliency", "epistemic"):
        arr = r.maps[key][1]
        assert arr.ndim == 2 and np.isfinite(arr).all()
    assert r.reading and r.headline and r.details[0].startswith("Input: ")
    assert ("refer" in r.reading) == r.refer
    if task == "cells":
        assert r.prediction["low"] <= r.prediction["count"] <= r.prediction["high"]
    if task == "cxr":
        assert 0 <= r.prediction["probability"] <= 1 and r.prediction["label"] in ("pneumonia", "normal")
    if task == "retina":
        assert 0 <= r.prediction["vessel_fraction"] <= 1
        assert r.maps["prediction"][1].shape == r.image.shape[:2]
    pdf = r.report_pdf()
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    assert 'href="data:application/pdf;base64,' in r.report_link()
    assert r.png().startswith(b"\x89PNG")


def test_analyze_is_deterministic(bundles):
    data = CXR.read_bytes()
    a, b = (app.analyze(data, "cxr", bundle=bundles["cxr"]) for _ in range(2))
    assert a.prediction == b.prediction and a.epistemic == b.epistemic


def test_the_referral_follows_the_validation_threshold(bundles):
    low = app.Bundle(**{**bundles["cxr"].__dict__, "reference": {**REF, "threshold": -1.0}})
    r = app.analyze(CXR.read_bytes(), "cxr", bundle=low)
    assert r.refer and r.reading.startswith("The model is unsure: refer")
    assert any("refer it to a person" in w for w in r.warnings)
    none = app.Bundle(**{**bundles["cxr"].__dict__, "reference": {}})
    assert "No validation reference" in app.analyze(CXR.read_bytes(), "cxr", bundle=none).reading


def test_reference_uses_a_quantile_only_with_enough_images():
    assert app._reference(list(np.linspace(0, 1, 101)), "x")["threshold"] == pytest.approx(0.95)
    small = app._reference([0.1, 0.2], "x")
    assert small["threshold"] == pytest.approx(app.REFER_MARGIN * 0.2) and "largest" in small["rule"]


def test_auto_task_suggests_from_the_image():
    assert app.suggest_task(app.decode(RETINA.read_bytes()).image) == "retina"
    assert app.suggest_task(app.decode(CELLS.read_bytes()).image) == "cells"
    assert app.suggest_task(app.decode(CXR.read_bytes()).image) == "cxr"


# ----------------------------------------------------------------------------------------------- decoding
def test_16_bit_tiff_and_png_keep_their_depth():
    arr = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    for fmt in ("TIFF", "PNG"):
        d = app.decode(png_bytes(arr, fmt=fmt))
        assert d.bits == 16 and d.image.dtype == np.float32
        assert d.image.max() == pytest.approx(1.0) and d.image.min() == 0.0


def test_rgba_and_equal_channels():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    d = app.decode(png_bytes(rgba))
    assert d.image.shape == (40, 40, 3) and "transparency dropped" in d.notes
    grey3 = np.repeat(np.arange(40, dtype=np.uint8)[None, :, None], 40, 0).repeat(3, 2)
    assert app.decode(png_bytes(grey3)).image.ndim == 2


# ----------------------------------------------------------------------------------------------- bad inputs
def one_line_error(data, task="cxr", bundles=None, match=""):
    with pytest.raises(DataError) as info:
        app.analyze(data, task, name="upload.png", bundle=(bundles or {}).get(task))
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg and len(msg) < 400
    assert match.lower() in msg.lower(), msg
    return msg


def test_empty_file():
    one_line_error(b"", match="empty")


def test_file_over_the_size_limit(monkeypatch):
    monkeypatch.setattr(app, "MAX_BYTES", 1000)
    one_line_error(CXR.read_bytes(), match="over the app's limit")


def test_unreadable_and_truncated_files():
    one_line_error(b"this is not an image at all" * 10, match="not an image the app can read")
    data = png_bytes(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    one_line_error(data[: len(data) // 2], match="truncated or damaged")
    jpeg = CXR.read_bytes()
    one_line_error(jpeg[: len(jpeg) // 3], match="truncated")


def test_decompression_bomb(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    msg = one_line_error(png_bytes(np.zeros((100, 100), np.uint8)), match="decompression bomb")
    assert "10,000 pixels" in msg
    one_line_error(png_bytes(np.zeros((40, 40), np.uint8)), match="decompression bomb")   # the warning zone


def test_bit_depth_and_channels():
    one_line_error(png_bytes(np.zeros((64, 64), bool), "1"), match="1-bit")
    one_line_error(png_bytes(np.zeros((64, 64), np.float32), fmt="TIFF"), match="32-bit floating-point")
    one_line_error(png_bytes(np.full((64, 64), 2 ** 20, np.int32), "I", fmt="TIFF"), match="32-bit integer")
    one_line_error(dicom_bytes(np.zeros((64, 64, 2), np.uint8), samples=2), match="2 samples per pixel")
    one_line_error(dicom_bytes(np.zeros((64, 64), np.uint8))[:-100], match="cannot be decoded")


def test_too_small_too_large_and_unknown_task(bundles):
    one_line_error(png_bytes(np.zeros((10, 10), np.uint8)), match="too small")
    one_line_error(png_bytes(np.zeros((1100, 300), np.uint8)), task="cells", match="tiles")
    with pytest.raises(DataError, match="choose one of retina, cxr, cells"):
        app.analyze(CXR.read_bytes(), "mri")
    with pytest.raises(DataError, match="no such checkpoint"):
        app.load_bundle("cxr", checkpoint=ROOT / "no_such_file.pt")


def test_not_bytes():
    with pytest.raises(DataError, match="not the bytes of a file"):
        app.decode("a/path/as/text.png")


def test_an_image_unlike_the_task_warns(bundles):
    photo = np.zeros((96, 96, 3), np.uint8)
    photo[..., 0], photo[..., 1], photo[..., 2] = 220, 120, 40
    photo[20:60, 30:70] = (30, 160, 220)
    r = app.analyze(png_bytes(photo), "cxr", bundle=bundles["cxr"])
    assert any("colour image; chest X-rays are grey" in w for w in r.warnings)
    r = app.analyze(CXR.read_bytes(), "retina", bundle=bundles["retina"])
    assert any("grey" in w for w in r.warnings)
    r = app.analyze(CXR.read_bytes(), "cells", bundle=bundles["cells"])
    assert any("background is not dark" in w for w in r.warnings)
    assert not app.input_warnings(app.decode(RETINA.read_bytes()).image, "retina")
    assert not app.input_warnings(app.decode(CELLS.read_bytes()).image, "cells")
    assert not app.input_warnings(app.decode(CXR.read_bytes()).image, "cxr")


# ----------------------------------------------------------------------------------------------- DICOM
def dicom_bytes(pixels: np.ndarray, *, photometric: str = "MONOCHROME2", slope: float | None = None,
                intercept: float | None = None, window: tuple[float, float] | None = None, samples: int = 1,
                pixel_data: bool = True, syntax: str | None = None) -> bytes:
    """A DICOM Part 10 file in memory (uncompressed unless ``syntax`` says otherwise)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax or ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.Modality = "Test^Patient", "DX"
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, photometric
    if samples > 1:
        ds.PlanarConfiguration = 0
    bits = 16 if pixels.dtype == np.uint16 else 8
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit, ds.PixelRepresentation = bits - 1, 0
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept or 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if pixel_data:
        if syntax is None:
            ds.PixelData = pixels.tobytes()
        else:   # an encapsulated (compressed) frame holding junk
            from pydicom.encaps import encapsulate
            ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 64])
            ds["PixelData"].VR = "OB"
            ds.NumberOfFrames = 1
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_dicom_monochrome2_with_window_and_rescale():
    ramp = np.tile(np.arange(0, 4096, 64, dtype=np.uint16), (64, 1))     # 64 × 64, 0 .. 4032
    d = read_dicom(dicom_bytes(ramp))                                    # no window: percentiles
    assert d.image.min() == 0 and d.image.max() == 1 and d.image[0, -1] > d.image[0, 0]
    # rescale slope 2, intercept -1000: values -1000 .. 7064; window centre 1000, width 2000 -> 0 .. 2000
    d = read_dicom(dicom_bytes(ramp, slope=2, intercept=-1000, window=(1000, 2000)))
    v = ramp[0].astype(float) * 2 - 1000
    expected = np.clip((v - 999.5) / 1999 + 0.5, 0, 1)
    assert np.allclose(d.image[0], expected, atol=1e-6)
    assert d.windowed == "the window of the file"


def test_dicom_monochrome1_is_inverted():
    ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))
    m2 = read_dicom(dicom_bytes(ramp)).image
    m1 = read_dicom(dicom_bytes(ramp, photometric="MONOCHROME1")).image
    assert np.allclose(m1, 1 - m2)


def test_dicom_upload_runs_and_reminds_of_patient_data(bundles):
    grey = np.asarray(Image.open(CXR).convert("L"))
    r = app.analyze(dicom_bytes(grey), "cxr", bundle=bundles["cxr"], name="chest.dcm")
    assert r.warnings[0] == app.DICOM_REMINDER and "DICOM" in r.details[0]


def test_dicom_without_pixels_or_undecodable():
    one_line_error(dicom_bytes(np.zeros((64, 64), np.uint8), pixel_data=False), match="no pixel data")
    from pydicom.uid import JPEG2000Lossless
    one_line_error(dicom_bytes(np.zeros((64, 64), np.uint8), syntax=JPEG2000Lossless),
                   match="cannot decode")
    good = dicom_bytes(np.zeros((64, 64), np.uint8))
    one_line_error(good[:200], match="DICOM")


# ----------------------------------------------------------------------------------------------- the widget
def test_the_widget_driven_by_setting_the_upload(bundles):
    w = app.AppWidget(bundles=bundles)
    w.task.value = "cells"

    def upload(name, data):
        w.upload.value = ({"name": name, "type": "", "size": len(data), "last_modified": datetime.now(),
                           "content": memoryview(data)},)

    upload(CELLS.name, CELLS.read_bytes())
    assert w.error is None and w.result is not None and w.result.task == "cells"
    assert "app-report" in w.report.value and bytes(w.figure.value).startswith(b"\x89PNG")
    assert "nuclei" in w.numbers.value
    upload("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)          # a bad file: a message, no traceback
    assert w.result is None and "Cannot read this file" in w.status.value and w.report.value == ""
    upload(CXR.name, CXR.read_bytes())                                 # the next upload works
    assert w.error is None and w.result is not None
    w.task.value = "cxr"                                               # the same upload, another task
    assert w.result.task == "cxr"


# ----------------------------------------------------------------------------------------------- cached models
def test_the_chapters_cached_models_if_present():
    app.clear_bundles()
    found = []
    for task, path in (("cxr", CXR), ("retina", RETINA), ("cells", CELLS)):
        try:
            bundle = app.load_bundle(task, train_if_missing=False, progress=False)
        except DataError:
            continue
        if task == "retina":
            continue          # a full-size fundus prediction takes seconds: the browser test and benchmark run it
        r = app.analyze(path.read_bytes(), task, bundle=bundle, name=path.name)
        found.append(task)
        assert bundle.reference and not r.refer, r.reading   # a shipped image is within the validation range
        if task == "cxr":
            assert r.prediction["label"] == "pneumonia"
    if not found:
        pytest.skip("no chapter model is cached (run chapters 5 and 6 once, or `make test`, to cache them)")


KERNEL_CODE = """
import io, numpy as np, torch
from datetime import datetime
from PIL import Image
from helpers import app
from helpers.models.counting import CountingUNet
torch.manual_seed(0)
cal = (np.array([10.0, 20, 30] * 7), np.array([11.0, 19, 33] * 7), np.full(21, 2.0))
tiny = app.Bundle("cells", CountingUNet(base=4, levels=3).eval(), 2, "tiny", {"cal": cal}, {})
w = app.AppWidget(bundles={"cells": tiny})
w.task.value = "cells"
def upload(name, data):
    w.upload.value = ({"name": name, "type": "", "size": len(data), "content": memoryview(data),
                       "last_modified": datetime.now()},)
upload("bad.png", b"not an image")
print("BAD", w.error is not None, "Cannot read this file" in w.status.value)
buf = io.BytesIO()
Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)).save(buf, "PNG")
upload("good.png", buf.getvalue())
print("GOOD", w.error, w.result is not None, "app-report" in w.report.value)
"""


def test_the_widget_in_a_real_kernel():
    """In a kernel an ipywidgets Output swallows exceptions raised inside it: the message must still reach the
    page (driven by setting the upload's value, as the browser does)."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    out: list[str] = []
    try:
        kc.execute_interactive(KERNEL_CODE, timeout=120, output_hook=lambda m: out.append(
            m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    text = "".join(out)
    assert "BAD True True" in text, text
    assert "GOOD None True True" in text, text
