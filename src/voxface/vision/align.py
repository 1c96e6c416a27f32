"""Aligned square face crops from 68 landmarks, framed like the synthetic corpus's face photos.

The crop is a similarity transform of the photo: it rotates the eye line level, scales the
landmarks' larger extent (after levelling) to ``FILL`` of the crop side and puts the centre of their
bounding box ``SHIFT_DOWN`` of the side below the crop centre, the framing of
:mod:`voxface.corpus.face_images`, so real and synthetic crops look alike to a network.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import SimilarityTransform, warp

from ..corpus.face_images import _FILL as FILL
from ..corpus.face_images import _SHIFT_DOWN as SHIFT_DOWN

RIGHT_EYE = slice(36, 42)
"""iBUG points of the eye on the image's left (the subject's right eye)."""
LEFT_EYE = slice(42, 48)


def crop_transform(landmarks: np.ndarray, size: int) -> SimilarityTransform:
    """The similarity taking photo pixels (column, row) to pixels of a ``size`` x ``size`` crop.

    Args:
        landmarks: (68, 2) landmark pixels of the photo.
        size: crop side in pixels.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    eye_vector = points[LEFT_EYE].mean(0) - points[RIGHT_EYE].mean(0)
    angle = -np.arctan2(eye_vector[1], eye_vector[0])
    level = SimilarityTransform(rotation=angle)
    levelled = level(points)
    low, high = levelled.min(0), levelled.max(0)
    scale = FILL * size / max(float((high - low).max()), 1e-6)
    centre = scale * (low + high) / 2
    target = np.array([size / 2, size / 2 + SHIFT_DOWN * size])
    return SimilarityTransform(scale=scale, rotation=angle, translation=target - centre)


def aligned_crop(image: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the aligned face crop and carry the landmarks into it.

    Args:
        image: (H, W, 3) uint8 RGB photo.
        landmarks: (68, 2) landmark pixels of the photo.
        size: crop side in pixels (64 and 120 in the corpus).

    Returns:
        ((size, size, 3) uint8 crop, bilinear, edge pixels repeated outside the photo;
        (68, 2) float32 landmark pixels in the crop).
    """
    transform = crop_transform(landmarks, size)
    crop = warp(image, transform.inverse, output_shape=(size, size), order=1, mode="edge",
                preserve_range=True)
    return np.clip(np.rint(crop), 0, 255).astype(np.uint8), transform(landmarks).astype(np.float32)
