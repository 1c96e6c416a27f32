"""Fit a morphable model's pose, shape and expression to 68 detected 2D landmarks.

A regularised least-squares fitter under a scaled-orthographic camera that works for any
:class:`MorphableModel` (built-in, Surrey, Basel). It alternates two linear steps, starting from
the mean face:

1. pose: the affine camera (2x3 matrix and translation) that best maps the current 3D landmarks to
   the image, projected onto the nearest scaled rotation (SVD: rows orthonormal, scale = mean of the
   singular values);
2. coefficients: with the pose fixed, the landmarks are linear in the standardised shape and
   expression coefficients z; solve ``min |A z - b|^2 + lambda |z|^2`` in model units, i.e. the MAP
   estimate under the prior z ~ N(0, I) and Gaussian landmark noise of standard deviation
   ``noise_fraction`` x the mean face's outer-interocular distance (lambda = that noise squared).

Image coordinates are pixels (column right, row down); the model's y axis is up, so the camera
flips it. The residual is the mean distance in pixels between the 68 landmarks and their fitted
projections. Pose angles follow :func:`voxface.face3d.transforms.rotation_matrix`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import VoxfaceError
from .morphable_model import MorphableModel

N_ITERATIONS = 6
NOISE_FRACTION = 0.03
"""Landmark noise, as a fraction of the outer-interocular distance (about 3 mm on a 95 mm face)."""

_FLIP_Y = np.array([1.0, -1.0])


@dataclass(frozen=True)
class LandmarkFit:
    """One face image's fit.

    Attributes:
        shape: (K,) float32 standardised shape coefficients.
        expression: (E,) float32 standardised expression coefficients.
        pose: (3,) float32 yaw, pitch, roll in radians.
        scale: pixels per model unit.
        translation: (2,) pixel position of the model origin.
        projected: (68, 2) float32 fitted landmark positions in pixels.
        residual_px: mean distance between detected and fitted landmarks, pixels.
        residual: ``residual_px`` divided by the detected inter-ocular distance (outer eye corners).
    """

    shape: np.ndarray
    expression: np.ndarray
    pose: np.ndarray
    scale: float
    translation: np.ndarray
    projected: np.ndarray
    residual_px: float
    residual: float


def interocular_px(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners (iBUG points 36 and 45) of (68, 2) landmarks."""
    return float(np.linalg.norm(landmarks[36] - landmarks[45]))


def fit_landmarks(model: MorphableModel, landmarks: np.ndarray, iterations: int = N_ITERATIONS,
                  noise_fraction: float = NOISE_FRACTION) -> LandmarkFit:
    """Fit pose, shape and expression of ``model`` to iBUG-68 landmarks of one image.

    Args:
        model: the morphable model (its ``landmarks68`` vertices correspond to the points).
        landmarks: (68, 2) pixel coordinates (column, row).
        iterations: alternations of the pose and coefficient steps.
        noise_fraction: landmark noise / outer-interocular distance of the mean face (sets lambda).

    Returns:
        the :class:`LandmarkFit`.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise VoxfaceError(f"fit_landmarks needs (68, 2) finite landmarks, got {points.shape}")
    target = points * _FLIP_Y  # y up, like the model
    mean = model.mean[model.landmarks68].astype(np.float64)  # (68, 3)
    basis = _landmark_basis(model)  # (68, 3, K + E), columns scaled by their std
    i, j = model.measurements["OICD"]
    lam = (noise_fraction * float(np.linalg.norm(model.mean[i] - model.mean[j]))) ** 2
    z = np.zeros(basis.shape[2])
    for _ in range(iterations):
        current = mean + basis @ z
        scale, rotation, translation = _scaled_orthographic(current, target)
        a = np.einsum("ij,njk->nik", rotation[:2], basis).reshape(-1, basis.shape[2])
        b = ((target - translation) / scale - mean @ rotation[:2].T).reshape(-1)
        z = np.linalg.solve(a.T @ a + lam * np.eye(len(z)), a.T @ b)
    current = mean + basis @ z
    scale, rotation, translation = _scaled_orthographic(current, target)
    projected = (scale * current @ rotation[:2].T + translation) * _FLIP_Y
    residual_px = float(np.linalg.norm(projected - points, axis=1).mean())
    k = model.n_shape
    return LandmarkFit(
        shape=z[:k].astype(np.float32), expression=z[k:].astype(np.float32),
        pose=np.array(euler_angles(rotation), dtype=np.float32), scale=float(scale),
        translation=(translation * _FLIP_Y).astype(np.float32), projected=projected.astype(np.float32),
        residual_px=residual_px, residual=residual_px / max(interocular_px(points), 1e-6))


def euler_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) radians of ``R = Rz(roll) @ Rx(pitch) @ Ry(yaw)`` (inverse of ``rotation_matrix``)."""
    pitch = float(np.arcsin(np.clip(rotation[2, 1], -1.0, 1.0)))
    yaw = float(np.arctan2(-rotation[2, 0], rotation[2, 2]))
    roll = float(np.arctan2(-rotation[0, 1], rotation[1, 1]))
    return yaw, pitch, roll


def _landmark_basis(model: MorphableModel) -> np.ndarray:
    """(68, 3, K + E) float64 displacement of each landmark per standardised coefficient."""
    rows = (3 * model.landmarks68[:, None] + np.arange(3)).reshape(-1)
    parts = [model.shape_basis[rows] * model.shape_std]
    if model.expression_basis is not None:
        parts.append(model.expression_basis[rows] * model.expression_std)
    return np.concatenate(parts, axis=1).astype(np.float64).reshape(68, 3, -1)


def _scaled_orthographic(points3d: np.ndarray, points2d: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale s, rotation R (3, 3) and translation t (2,) with ``s R[:2] p + t ~= q`` (least squares, then SVD)."""
    mu3, mu2 = points3d.mean(0), points2d.mean(0)
    affine, *_ = np.linalg.lstsq(points3d - mu3, points2d - mu2, rcond=None)  # (3, 2)
    u, s, vt = np.linalg.svd(affine.T, full_matrices=False)  # (2, 3) = u diag(s) vt
    rows = u @ vt
    rotation = np.vstack([rows, np.cross(rows[0], rows[1])])
    scale = float(s.mean())
    translation = mu2 - scale * rotation[:2] @ mu3
    return scale, rotation, translation
