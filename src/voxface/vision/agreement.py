"""How well a real face detector agrees with known face positions: detection rate and landmark error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .dlib_faces import detect_faces, landmarks68


@dataclass(frozen=True)
class DetectorAgreement:
    """dlib's view of a set of face images with known landmarks.

    Attributes:
        n: images seen.
        detection_rate: fraction in which the frontal detector found a face.
        landmark_error: mean over detected images of the mean distance between dlib's 68 landmarks
            and the known ones, divided by the face size sqrt(area of dlib's box).
    """

    n: int
    detection_rate: float
    landmark_error: float


def dlib_agreement(cases: Iterable[tuple[np.ndarray, np.ndarray]], upsample: int = 0) -> DetectorAgreement:
    """Run dlib on (image (H, W, 3) uint8, known landmarks (68, 2) pixels) pairs."""
    n, errors = 0, []
    for image, known in cases:
        n += 1
        boxes = detect_faces(image, upsample=upsample)
        if boxes:
            box = boxes[0]
            face_size = np.sqrt((box[2] - box[0]) * (box[3] - box[1]))
            errors.append(np.linalg.norm(landmarks68(image, box) - known, axis=1).mean() / face_size)
    return DetectorAgreement(n, len(errors) / max(n, 1), float(np.mean(errors)) if errors else float("nan"))
