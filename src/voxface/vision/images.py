"""Reading photos of any common format as (H, W, 3) uint8 RGB, the form dlib and the crops need."""

from __future__ import annotations

import os

import numpy as np

from ..errors import VoxfaceError
from ..runs.reading import open_image


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file (JPEG, PNG, PGM, BMP, WebP, ...) to RGB (greyscale repeated, alpha dropped).

    Returns:
        (H, W, 3) uint8.

    Raises:
        VoxfaceError: naming ``path``, if it is missing or not a decodable image.
    """
    try:
        with open_image(path) as im:
            return np.ascontiguousarray(np.asarray(im.convert("RGB")))
    except (OSError, ValueError) as e:
        raise VoxfaceError(f"cannot read image {os.fspath(path)}: {e}; check the file or export it as JPEG/PNG") from e
