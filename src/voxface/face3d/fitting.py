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

A second fitter, :class:`EosFitter`, wraps eos-py's ``fit_shape_and_pose`` for the Surrey Face Model
(eos's own SFM files: ``ibug_to_sfm.txt`` landmark mapping, ``sfm_model_contours.json`` and
``sfm_3448_edge_topology.json`` for its contour fitting; 5 iterations, lambda 30, its defaults). eos
fits the mapped landmarks and picks the jaw contour vertices per pose; its coefficients are already
voxface's (shape: standard normal; blendshapes: as in eos), and its residual is measured like ours,
on the model's ``landmarks68`` vertices. :func:`make_fitter` selects either by name
(``FITTERS``); docs/realdata.md compares them on ORL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import VoxfaceError
from ..extras import optional_module
from .morphable_model import MorphableModel

FITTERS = ("voxface", "eos")
"""Names :func:`make_fitter` accepts: our own least-squares fitter, or eos-py's (SFM only)."""
DEFAULT_FITTER = "voxface"
"""The better of the two on ORL (docs/realdata.md): about as accurate, and 50x faster."""

EDGE_TOPOLOGY_FILE = "sfm_3448_edge_topology.json"
"""eos's edge topology of the SFM mesh, for its contour fitting (eos's share/ folder)."""

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
    points = _checked(landmarks)
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
    k = model.n_shape
    return _landmark_fit(model, points, z[:k], z[k:], rotation, scale, translation * _FLIP_Y)


Fitter = Callable[[np.ndarray, tuple[int, int]], LandmarkFit]
"""A fitter: (68, 2) pixel landmarks and the image's (height, width) -> :class:`LandmarkFit`."""


def make_fitter(name: str, model: MorphableModel) -> Fitter:
    """The fitter called ``name`` (one of ``FITTERS``) for ``model``.

    Raises:
        VoxfaceError: an unknown name, or ``"eos"`` with a model other than the Surrey Face Model.
    """
    if name == "voxface":
        return lambda landmarks, image_size: fit_landmarks(model, landmarks)
    if name == "eos":
        return EosFitter(model)
    raise VoxfaceError(f"unknown fitter {name!r}; choose one of {', '.join(FITTERS)}")


class EosFitter:
    """eos-py's ``fit_shape_and_pose`` for the Surrey Face Model, returning a :class:`LandmarkFit`.

    Args:
        model: the SFM as :func:`voxface.face3d.sfm.load_sfm` loads it, with its six blendshapes;
            eos's files are read from the folder of ``model.meta["source"]``.
    """

    def __init__(self, model: MorphableModel):
        eos = optional_module("eos", "3DMM landmark fitting")
        from .sfm import BLENDSHAPES_FILE, CONTOURS_FILE, MAPPING_FILE

        if model.name != "sfm" or model.n_expression != 6:
            raise VoxfaceError(f"--fitter eos fits only the Surrey Face Model with its expression blendshapes, "
                               f"not {model.name!r}; use --model sfm[:PATH] or --fitter voxface")
        shape_file = Path(model.meta["source"])
        folder = shape_file.parent
        edges = folder / EDGE_TOPOLOGY_FILE
        if not edges.is_file():
            raise VoxfaceError(f"--fitter eos needs {edges} (eos's share/ folder has it) beside {shape_file.name}")
        sfm = eos.morphablemodel.load_model(str(shape_file))
        self._model = model
        self._eos_model = eos.morphablemodel.MorphableModel(
            sfm.get_shape_model(), eos.morphablemodel.load_blendshapes(str(folder / BLENDSHAPES_FILE)),
            color_model=eos.morphablemodel.PcaModel(), vertex_definitions=None,
            texture_coordinates=sfm.get_texture_coordinates())
        self._mapper = eos.core.LandmarkMapper(str(folder / MAPPING_FILE))
        self._edges = eos.morphablemodel.load_edge_topology(str(edges))
        self._contour_landmarks = eos.fitting.ContourLandmarks.load(str(folder / MAPPING_FILE))
        self._model_contour = eos.fitting.ModelContour.load(str(folder / CONTOURS_FILE))

    def __call__(self, landmarks: np.ndarray, image_size: tuple[int, int]) -> LandmarkFit:
        """Fit (68, 2) pixel landmarks of an image of ``image_size`` = (height, width)."""
        eos = optional_module("eos", "3DMM landmark fitting")
        points = _checked(landmarks)
        height, width = image_size
        named = [eos.core.Landmark(str(k + 1), [float(x), float(y)]) for k, (x, y) in enumerate(points)]
        _, rendering, shape, blendshapes = eos.fitting.fit_shape_and_pose(
            self._eos_model, named, self._mapper, int(width), int(height), self._edges,
            self._contour_landmarks, self._model_contour)
        camera = np.asarray(eos.fitting.get_3x4_affine_camera_matrix(rendering, int(width), int(height)),
                            dtype=np.float64)  # rows: s R[0], -s R[1], (0, 0, 0, 1)
        rotation = np.asarray(rendering.get_modelview(), dtype=np.float64)[:3, :3]
        scale = float(np.linalg.norm(camera[0, :3]))
        return _landmark_fit(self._model, points, np.asarray(shape), np.asarray(blendshapes), rotation, scale,
                             camera[:2, 3])


def _checked(landmarks: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise VoxfaceError(f"fitting needs (68, 2) finite landmarks, got {points.shape}")
    return points


def _landmark_fit(model: MorphableModel, points: np.ndarray, shape: np.ndarray, expression: np.ndarray,
                  rotation: np.ndarray, scale: float, translation_px: np.ndarray) -> LandmarkFit:
    """The :class:`LandmarkFit` of coefficients and a camera ``pixel = s R[:2] p * (1, -1) + t``."""
    shape, expression = shape.astype(np.float32), expression.astype(np.float32)
    current = model.mean[model.landmarks68] + _landmark_basis(model) @ np.concatenate([shape, expression])
    projected = (scale * (current @ rotation[:2].T) * _FLIP_Y + translation_px).astype(np.float32)
    residual_px = float(np.linalg.norm(projected - points, axis=1).mean())  # of the stored, float32 points
    return LandmarkFit(
        shape=shape, expression=expression, pose=np.array(euler_angles(rotation), dtype=np.float32),
        scale=float(scale), translation=np.asarray(translation_px, dtype=np.float32),
        projected=projected, residual_px=residual_px,
        residual=residual_px / max(interocular_px(points), 1e-6))


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


@dataclass(frozen=True)
class VertexFit:
    """A model fitted to a whole mesh of its own topology (a released reconstruction).

    Attributes:
        shape: (K,) float32 standardised shape coefficients.
        expression: (E,) float32 standardised expression coefficients.
        residual: mean vertex distance after the fit, divided by the model's mean outer-interocular
            distance (``measurements["OICD"]``).
        flipped_y: the mesh was mirrored in y before fitting (it was in image coordinates, y down).
    """

    shape: np.ndarray
    expression: np.ndarray
    residual: float
    flipped_y: bool


def fit_vertices(model: MorphableModel, vertices: np.ndarray, iterations: int = 2,
                 noise_fraction: float = NOISE_FRACTION) -> VertexFit:
    """Standardised coefficients of a mesh with the model's vertices, in any similarity frame.

    The mesh is aligned to the current model face by a least-squares similarity (Umeyama, proper
    rotation), mirrored in y first when that fits better (3DDFA and CMP write vertices in image
    coordinates, rows down); then the coefficients solve the ridge problem of :func:`fit_landmarks`
    (the same prior and lambda) on all vertices, with a free overall size; alignment and solve
    alternate ``iterations`` times.

    Args:
        model: the morphable model whose topology the mesh has.
        vertices: (V, 3) mesh vertices, any units.

    Raises:
        VoxfaceError: ``vertices`` is not (V, 3) finite for this model's V.
    """
    from .transforms import apply_similarity, umeyama

    points = np.asarray(vertices, dtype=np.float64)
    if points.shape != model.mean.shape or not np.isfinite(points).all():
        raise VoxfaceError(f"fit_vertices needs ({model.n_vertices}, 3) finite vertices for the {model.name!r} "
                           f"model, got {points.shape}")
    mean = model.mean.astype(np.float64)
    basis = np.concatenate([model.shape_basis * model.shape_std] + (
        [model.expression_basis * model.expression_std] if model.expression_basis is not None else []),
        axis=1).astype(np.float64)  # (3V, K + E)
    i, j = model.measurements["OICD"]
    oicd = float(np.linalg.norm(mean[i] - mean[j]))
    flipped = points * np.array([1.0, -1.0, 1.0])
    flip = _aligned_distance(mean, flipped) < _aligned_distance(mean, points)
    target = flipped if flip else points
    # In the aligned frame, target ~ c (mean + B z) + small rigid motion, linear in (c, w = c z, the
    # motion); solving them together keeps size and pose out of z (alternation alone converges slowly).
    n_coef = basis.shape[1]
    prior = (noise_fraction * oicd) ** 2 * np.diag(np.r_[0.0, np.ones(n_coef), np.zeros(6)])
    shifts = np.tile(np.eye(3), (len(mean), 1))  # (3V, 3) translation columns
    z = np.zeros(n_coef)
    for _ in range(iterations):
        current = mean + (basis @ z).reshape(-1, 3)
        scale, rotation, translation = umeyama(target, current)
        in_model = apply_similarity(target, scale, rotation, translation)
        turns = np.stack([np.cross(axis, current).reshape(-1) for axis in np.eye(3)], axis=1)  # (3V, 3)
        design = np.concatenate([mean.reshape(-1, 1), basis, shifts, turns], axis=1)
        solution = np.linalg.solve(design.T @ design + prior, design.T @ in_model.reshape(-1))
        z = solution[1:1 + n_coef] / solution[0]
    current = mean + (basis @ z).reshape(-1, 3)
    scale, rotation, translation = umeyama(target, current)
    gap = np.linalg.norm(apply_similarity(target, scale, rotation, translation) - current, axis=1).mean()
    k = model.n_shape
    return VertexFit(shape=z[:k].astype(np.float32), expression=z[k:].astype(np.float32),
                     residual=float(gap) / oicd, flipped_y=bool(flip))


def _aligned_distance(reference: np.ndarray, points: np.ndarray) -> float:
    """Mean distance between ``reference`` (V, 3) and ``points`` similarity-aligned onto it."""
    from .transforms import apply_similarity, umeyama

    scale, rotation, translation = umeyama(points, reference)
    return float(np.linalg.norm(apply_similarity(points, scale, rotation, translation) - reference, axis=1).mean())
