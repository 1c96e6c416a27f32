"""128-d face identity embeddings behind a small interface (``FaceEmbedder``).

``DlibFaceEmbedder`` is dlib's ResNet face descriptor (the ``face_recognition_models`` weights,
nothing downloaded): faces are found with dlib's HOG detector (:func:`detect_faces`; images under
100 pixels a side are searched with one up-sampling, so 64×64 crops are found), aligned by dlib
from the 68 landmarks (:func:`landmarks68`) to a 150×150 chip, and described by a unit-length
128-d vector. Distances under 0.6 mean "same person" in dlib's own calibration.

Another face network only needs ``name``, ``dim`` and ``embed``, registered under kind
:data:`FACE_EMBEDDER`.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import numpy as np
from tqdm import tqdm

from ..errors import VoxfaceError
from ..extras import optional_module
from ..models.registry import create, register
from .dlib_faces import detect_faces, dlib_model, landmarks68

log = logging.getLogger(__name__)

SMALL_IMAGE = 100
"""Images with a side below this many pixels are searched with one up-sampling."""
_LOCK = threading.Lock()
FACE_EMBEDDER = "face-embedder"
"""The registry kind of the face embedders (:mod:`voxface.models.registry`)."""


class FaceEmbedder(Protocol):
    name: str
    dim: int

    def embed(self, images: list[np.ndarray], progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(N images (H, W, 3) uint8 RGB) -> ((N, dim) float32 embeddings, (N,) bool face detected)."""


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W) grey or (H, W, 3) RGB, uint8 or float in [0, 1] -> (H, W, 3) uint8 RGB."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise VoxfaceError(f"expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
    return np.ascontiguousarray(image)


@register("dlib", kind=FACE_EMBEDDER)
class DlibFaceEmbedder:
    """dlib's 128-d face descriptor on the largest detected face of each image.

    Args:
        fallback_to_frame: when no face is detected, describe the whole image as one aligned face
            crop (landmarks are still placed by dlib inside the frame) instead of returning NaNs.
            Generated faces are aligned crops, so this keeps a blurry one comparable; the detection
            flag still says it was not found.
    """

    name = "dlib-resnet-128"
    dim = 128

    def __init__(self, fallback_to_frame: bool = True):
        self.fallback_to_frame = fallback_to_frame

    def embed_one(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """(H, W, 3) uint8 RGB (or grey / float in [0, 1]) -> ((128,) float32, face detected)."""
        dlib = optional_module("dlib", "face embeddings")
        image = as_rgb_uint8(image)
        h, w = image.shape[:2]
        boxes = detect_faces(image, upsample=1 if min(h, w) < SMALL_IMAGE else 0)
        found = bool(boxes)
        if not found and not self.fallback_to_frame:
            return np.full(self.dim, np.nan, np.float32), False
        box = boxes[0] if found else (0, 0, w - 1, h - 1)
        points = landmarks68(image, box)
        shape = dlib.full_object_detection(dlib.rectangle(*(int(v) for v in box)),
                                           [dlib.point(int(round(x)), int(round(y))) for x, y in points])
        with _LOCK:
            model = dlib_model("face_recognition_model_v1", "face_recognition_model_location", "face embeddings")
            descriptor = model.compute_face_descriptor(image, shape)
        return np.asarray(descriptor, dtype=np.float32), found

    def embed(self, images, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """N images -> ((N, 128) float32, (N,) bool detected); NaN rows for unfound faces without fallback."""
        out = [self.embed_one(im) for im in tqdm(images, desc="face embeddings", unit="img", disable=not progress)]
        if not out:
            return np.zeros((0, self.dim), np.float32), np.zeros(0, bool)
        found = np.array([f for _, f in out])
        if not found.all():
            log.info("no face detected in %d of %d images", int((~found).sum()), len(found))
        return np.stack([e for e, _ in out]), found


def create_face_embedder(name: str = "dlib") -> FaceEmbedder:
    """The face embedder registered as ``name`` (:data:`FACE_EMBEDDER`; "dlib" for now)."""
    return create(name, FACE_EMBEDDER)
