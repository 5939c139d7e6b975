"""Reading image files a user gives: Pillow's decompression-bomb guard turned into the book's one-line error.

Pillow refuses to open a file whose header declares more than twice ``PIL.Image.MAX_IMAGE_PIXELS`` pixels
(``DecompressionBombError``: a small file that would expand into gigabytes, e.g. a 20000×20000 TIFF) and only
warns above ``MAX_IMAGE_PIXELS`` (about 89 million pixels). Inside :func:`pixel_limit` both become a
:class:`~helpers.errors.DataError` that names the file and says what to do, raised before any pixel is decoded;
the file is only read, never modified. Every image reader of :mod:`helpers.data` that the book's loaders use
(retinal photographs and masks, chest X-rays) opens its files inside it. Setting ``MAX_IMAGE_PIXELS = None``
switches Pillow's guard, and so this one, off.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from helpers.errors import DataError


def _limit() -> int | None:
    from PIL import Image

    return Image.MAX_IMAGE_PIXELS


def too_large_message(path: str | Path, what: str, pixels: int | None, fix: str) -> str:
    """The one-line message for an image over Pillow's pixel limit (``pixels``: its declared size, if known)."""
    limit = _limit()
    size = f"declares {pixels:,} pixels" if pixels else "declares more pixels than Pillow opens safely"
    cap = f"the limit is {limit:,}, " if limit else ""
    return (f"{path}: the {what} {size} ({cap}Pillow's guard against decompression bombs); it is not read. "
            f"{fix}")


@contextmanager
def pixel_limit(path: str | Path, what: str = "image",
                fix: str = "Replace it with the original file, or downscale it, or remove it from the folder."
                ) -> Iterator[None]:
    """Context for opening and decoding ``path`` with Pillow in which an image over the pixel limit (Pillow's
    ``DecompressionBombError``, or its ``DecompressionBombWarning`` above ``MAX_IMAGE_PIXELS``) raises
    :class:`~helpers.errors.DataError` naming the file, the declared pixel count and ``fix``::

        with pixel_limit(path, "vessel mask"), Image.open(path) as im:
            im.load()
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            found = re.search(r"\((\d+) pixels\)", str(exc))
            raise DataError(too_large_message(path, what, int(found.group(1)) if found else None, fix)) from exc


__all__ = ["pixel_limit", "too_large_message"]
