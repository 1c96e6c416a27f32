"""dlib's frontal face detector (HOG) and its 68-point landmark predictor, loaded once, lazily.

The predictor's weights come with the ``face_recognition_models`` package
(``pose_predictor_model_location()``), so nothing is downloaded at run time. Faces smaller than
about 80 pixels are found only with up-sampling: a 64x64 aligned crop needs ``upsample=1``.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from ..errors import VoxfaceError
from ..extras import optional_module

Box = tuple[int, int, int, int]
"""(left, top, right, bottom) pixel box, as dlib reports it."""

_LOCK = threading.Lock()


@functools.cache
def _detector():
    dlib = optional_module("dlib", "face detection")
    return dlib.get_frontal_face_detector()


@functools.cache
def dlib_model(kind: str, location: str, what: str):
    """A dlib model, loaded once: ``dlib.<kind>`` (``"shape_predictor"``, ``"face_recognition_model_v1"``)
    on the file that face_recognition_models ships (``location``: its function naming the file);
    ``what`` names the model in the message when a package is missing."""
    dlib = optional_module("dlib", what)
    face_recognition_models = optional_module("face_recognition_models", what)
    return getattr(dlib, kind)(getattr(face_recognition_models, location)())


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise VoxfaceError(f"dlib needs an (H, W, 3) uint8 RGB image, got {image.dtype} "
                           f"{image.shape}")
    return np.ascontiguousarray(image)


def detect_faces(image: np.ndarray, upsample: int = 1) -> list[Box]:
    """Frontal faces found by dlib's HOG detector, largest first.

    Args:
        image: (H, W, 3) uint8 RGB image.
        upsample: how many times dlib doubles the image before searching (0 = none; 1 finds
            faces down to ~40 pixels).

    Returns:
        (left, top, right, bottom) boxes sorted by area, descending; may extend past the image.
    """
    image = _as_rgb_uint8(image)
    if upsample < 0:
        raise VoxfaceError(f"upsample must be >= 0, got {upsample}")
    with _LOCK:
        rects = _detector()(image, int(upsample))
    boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
    return sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)


def landmarks68(image: np.ndarray, box: Box) -> np.ndarray:
    """dlib's 68 iBUG landmarks of the face in ``box``.

    Args:
        image: (H, W, 3) uint8 RGB image.
        box: (left, top, right, bottom) face box, e.g. from :func:`detect_faces`.

    Returns:
        (68, 2) float32 pixel coordinates (column, row).
    """
    dlib = optional_module("dlib", "68 face landmarks")
    image = _as_rgb_uint8(image)
    left, top, right, bottom = (int(v) for v in box)
    if right <= left or bottom <= top:
        raise VoxfaceError(f"face box {box} is empty: expected (left, top, right, bottom)")
    with _LOCK:
        predictor = dlib_model("shape_predictor", "pose_predictor_model_location", "the 68-landmark predictor")
        shape = predictor(image, dlib.rectangle(left, top, right, bottom))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
