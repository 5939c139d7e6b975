"""Reading a DICOM file (bytes, as an upload gives them) into the grey or RGB array the book's models read.

Used by the app (:mod:`helpers.app`, the page "Try it on your own image") and taught in the bring-your-own-data
guide. What a DICOM viewer does before showing an image, and so what this does, in order:

1. the **modality LUT**: stored values × ``RescaleSlope`` + ``RescaleIntercept`` (e.g. CT Hounsfield units), or a
   modality lookup table (``pydicom.pixels.apply_modality_lut``);
2. the **VOI LUT / window**: the window centre and width the acquiring device chose (``WindowCenter``,
   ``WindowWidth``) or its VOI lookup table (``pydicom.pixels.apply_voi_lut``); without either, the 0.5th to
   99.5th percentile of the values;
3. ``MONOCHROME1`` (bright means *low* values, some X-ray systems) is inverted, so bright is dense everywhere;
4. the result is scaled to [0, 1].

Colour DICOM (``RGB``, ``YBR_*``) is converted to RGB by pydicom. A multi-frame file gives its first frame
(:attr:`DicomImage.frames` says how many there were). A file without pixel data, or one whose compression
(transfer syntax) cannot be decoded by the installed plugins, raises :class:`~helpers.errors.DataError` with one
line saying what to do. The bytes are only read; nothing is written anywhere.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from helpers.errors import DataError

#: The four bytes after the 128-byte preamble of a DICOM Part 10 file.
MAGIC = b"DICM"


def is_dicom(data: bytes) -> bool:
    """True if ``data`` starts like a DICOM Part 10 file (128-byte preamble, then ``DICM``)."""
    return len(data) >= 132 and data[128:132] == MAGIC


@dataclass
class DicomImage:
    """A decoded DICOM image: ``image`` float32 in [0, 1], ``H×W`` (grey) or ``H×W×3`` (RGB); ``bits`` stored
    per sample; ``photometric`` interpretation as stored; ``windowed``: how the values were mapped to [0, 1];
    ``modality`` (``CR``, ``DX``, ``OP``, ``SM``, ...); ``frames`` in the file (the first is used)."""

    image: np.ndarray
    bits: int
    photometric: str
    windowed: str
    modality: str
    frames: int


def _window(values: np.ndarray, ds) -> tuple[np.ndarray, str]:
    """Apply the VOI LUT or window of ``ds`` (pydicom), else a percentile window; returns values in [0, 1]."""
    from pydicom.pixels import apply_voi_lut

    if "VOILUTSequence" in ds:
        out = apply_voi_lut(values, ds, index=0).astype(np.float64)
        lo, hi = float(out.min()), float(out.max())
        return (out - lo) / max(hi - lo, 1e-12), "the VOI lookup table of the file"
    if "WindowCenter" in ds and "WindowWidth" in ds:
        # the linear window of the DICOM standard (PS3.3 C.11.2.1.2), to [0, 1]
        c, w = float(np.ravel(ds.WindowCenter)[0]), float(np.ravel(ds.WindowWidth)[0])
        return np.clip((values - (c - 0.5)) / max(w - 1, 1.0) + 0.5, 0, 1), "the window of the file"
    lo, hi = np.percentile(values, [0.5, 99.5])
    return np.clip((values - lo) / max(hi - lo, 1e-12), 0, 1), "0.5th–99.5th percentile (no window in the file)"


def read_dicom(data: bytes, name: str = "the file") -> DicomImage:
    """Decode the DICOM file ``data`` (bytes) as described in the module docstring. Raises
    :class:`~helpers.errors.DataError` for a file pydicom cannot parse, one without pixel data, or one whose
    transfer syntax it cannot decode."""
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
        from pydicom.pixels import apply_modality_lut
    except ImportError as exc:
        raise DataError(f"{name} is a DICOM file and reading DICOM needs pydicom 3: pip install 'pydicom>=3', "
                        "or export the image as a 16-bit PNG or TIFF") from exc

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=False)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{name}: not a readable DICOM file ({type(exc).__name__}); export it again from the "
                        "viewer or PACS as DICOM, or as a 16-bit PNG or TIFF") from exc
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        what = str(ds.get("SOPClassUID", "")) and getattr(ds.SOPClassUID, "name", str(ds.SOPClassUID))
        raise DataError(f"{name}: this DICOM file holds no image (no pixel data{', a ' + what if what else ''}); "
                        "export the image series itself, not a report or structured document")
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    if spp not in (1, 3):
        raise DataError(f"{name}: a DICOM image with {spp} samples per pixel; the app reads grey (1) or colour "
                        "(3) images: export it as one of those")
    syntax = ds.file_meta.get("TransferSyntaxUID", None) if hasattr(ds, "file_meta") else None
    try:
        raw = ds.pixel_array
    except (NotImplementedError, RuntimeError, ValueError, AttributeError, TypeError, KeyError) as exc:
        label = getattr(syntax, "name", str(syntax)) if syntax else "unknown"
        if syntax is not None and getattr(syntax, "is_compressed", False):
            raise DataError(f"{name}: the pixel data is compressed as {label}, which the installed plugins "
                            "cannot decode; export it uncompressed (Explicit VR Little Endian) or as a 16-bit "
                            "PNG/TIFF, or install pylibjpeg with its plugins") from exc
        raise DataError(f"{name}: the pixel data cannot be decoded ({str(exc).splitlines()[0][:120]}); export "
                        "the image again, uncompressed, or as a 16-bit PNG/TIFF") from exc
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raw = raw[0]
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
    modality = str(ds.get("Modality", ""))
    if spp == 3 and raw.ndim == 3:   # pydicom has converted YBR to RGB
        rgb = raw
        scale = float(2 ** bits - 1) if bits <= 16 else float(np.max(rgb) or 1)
        image = np.clip(rgb.astype(np.float32) / scale, 0, 1)
        return DicomImage(image, bits, photometric, "stored colour values / maximum", modality, frames)
    if spp != 1 or raw.ndim != 2:
        raise DataError(f"{name}: a DICOM image with {spp} samples per pixel and shape {raw.shape}; expected one "
                        "grey or RGB image")
    values = apply_modality_lut(raw, ds).astype(np.float64)
    image, how = _window(values, ds)
    if photometric == "MONOCHROME1":
        image = 1.0 - image
    return DicomImage(image.astype(np.float32), bits, photometric, how, modality, frames)


__all__ = ["MAGIC", "DicomImage", "is_dicom", "read_dicom"]
