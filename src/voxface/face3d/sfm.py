"""The Surrey Face Model (SFM, 3,448 vertices) loaded through eos-py, with voxface's annotations.

Files (eos's ``share/`` folder; ``../shared/data/sfm`` in development):

- ``sfm_shape_3448.bin``: the shape PCA model (63 components, millimetres, voxface's frame already:
  x = subject's left, y up, z to the camera). eos draws ``mean + U @ (z * sqrt(eigenvalues))`` with
  U the orthonormal basis and z standard normal, so ``shape_basis = U`` and
  ``shape_std = sqrt(eigenvalues)``.
- ``expression_blendshapes_3448.bin`` (optional): six blendshapes (anger, disgust, fear, happiness,
  sadness, surprise). They are not a PCA model; ``expression_basis`` holds the deformations
  themselves and ``expression_std`` is 1, so a coefficient means what it means in eos (1 = the full
  expression).
- ``ibug_to_sfm.txt``: iBUG-68 -> SFM vertex for 63 landmarks (eos.core.LandmarkMapper).
- ``sfm_model_contours.json``: the vertices of the right and left face outline, top to chin.

The landmarks the mapping lacks are placed by rule:

- Jaw 0-7 and 9-16: the outline polyline (right contour, chin landmark 8, left contour), projected
  frontally, is walked by arc length from the height ``JAW_TOP_DROP`` of the eye-to-chin height below
  the outer eye corners down to the chin; 0-8 (and 16-8) sit at equal arc-length steps, each on the
  mesh vertex nearest to the polyline point. (On the 3DDFA BFM mean face the top jaw point lies 6.6%
  of the eye-to-chin height below the outer eye corners.)
- Inner mouth corners 60 and 64: the vertex nearest the midpoint between the outer corner (48 / 54)
  and the middle of the two adjacent inner-lip points (61, 67 / 63, 65).

Measurement pairs (``SFM_MEASUREMENTS``): CMP's BFM vertex pairs carried over to the SFM. The 3DDFA
BFM mean face (``u_shp + u_exp``) is aligned onto the SFM mean by a least-squares similarity
(Umeyama) on the 50 landmarks that ``ibug_to_sfm.txt`` maps (chin, brows, nose, eyes, lips); each of
CMP's vertices becomes the SFM vertex nearest to it. CMP's own pairs are not left/right symmetric
(its OICD's left point lies 15 mm below the right one), and the transfer keeps that. The SFM has no
ears, so ER lands on the face outline in front of the ears. ``tests/test_sfm.py`` re-derives the
pairs when both data sets are present.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..errors import VoxfaceError
from ..extras import optional_module
from .morphable_model import MorphableModel
from .regions import regions_from_landmarks

log = logging.getLogger(__name__)

SHAPE_FILE = "sfm_shape_3448.bin"
BLENDSHAPES_FILE = "expression_blendshapes_3448.bin"
MAPPING_FILE = "ibug_to_sfm.txt"
CONTOURS_FILE = "sfm_model_contours.json"

N_VERTICES = 3448

MAPPED_LANDMARKS = np.r_[8, 17:60, 61:64, 65:68]
"""The 50 iBUG-68 landmarks (0-based) that ``ibug_to_sfm.txt`` maps to vertices."""

JAW_TOP_DROP = 0.066
"""Height of jaw points 0 and 16 below the outer eye corners, as a fraction of the eye-to-chin height."""

SFM_MEASUREMENTS = {
    "OICD": (2914, 653),
    "ER": (2076, 2080),
    "FR": (1275, 1276),
    "CR": (324, 1172),
    "MR": (43, 713),
}
"""CMP's measurement pairs on the 3,448-vertex SFM (0-based; see the module docstring for the rule)."""


def load_sfm(path: str | Path) -> MorphableModel:
    """Load the Surrey Face Model from its folder or from ``sfm_shape_3448.bin``.

    Args:
        path: the folder holding the SFM files, or the shape ``.bin`` file (the other files are
            looked up beside it).

    Returns:
        MorphableModel ``"sfm"``: 3,448 vertices, 63 shape components, 6,736 triangles, millimetres,
        six expression blendshapes when their file is present.

    Raises:
        VoxfaceError: a required file is missing or the model is not the 3,448-vertex SFM.
    """
    eos = optional_module("eos", "the Surrey Face Model")
    path = Path(path).expanduser()
    shape_file = path / SHAPE_FILE if path.is_dir() else path
    folder = shape_file.parent
    for required in (shape_file, folder / MAPPING_FILE, folder / CONTOURS_FILE):
        if not required.is_file():
            raise VoxfaceError(
                f"Surrey Face Model file not found: {required} (give the folder holding {SHAPE_FILE}, "
                f"{MAPPING_FILE} and {CONTOURS_FILE}, e.g. eos's share/ folder)")
    try:
        pca = eos.morphablemodel.load_model(str(shape_file)).get_shape_model()
    except RuntimeError as exc:
        raise VoxfaceError(f"cannot read the Surrey Face Model {shape_file}: {exc}") from exc
    mean = np.asarray(pca.get_mean(), dtype=np.float32).reshape(-1, 3)
    if len(mean) != N_VERTICES:
        raise VoxfaceError(
            f"{shape_file} has {len(mean)} vertices; voxface annotates only the {N_VERTICES}-vertex "
            f"SFM ({SHAPE_FILE})")

    landmarks = sfm_landmarks68(mean, folder / MAPPING_FILE, folder / CONTOURS_FILE)
    expression_basis, expression_std = _blendshapes(folder / BLENDSHAPES_FILE)
    return MorphableModel(
        name="sfm",
        mean=mean,
        shape_basis=np.asarray(pca.get_orthonormal_pca_basis(), dtype=np.float32),
        shape_std=np.sqrt(np.asarray(pca.get_eigenvalues(), dtype=np.float32)),
        triangles=np.asarray(pca.get_triangle_list(), dtype=np.int32),
        landmarks68=landmarks,
        measurements=dict(SFM_MEASUREMENTS),
        regions=regions_from_landmarks(mean, landmarks),
        expression_basis=expression_basis,
        expression_std=expression_std,
        units="mm",
        meta={"source": str(shape_file), "citation": "Huber et al., VISAPP 2016 (Surrey Face Model)",
              "expression": "eos blendshapes" if expression_basis is not None else None},
    )


def sfm_landmarks68(mean: np.ndarray, mapping_file: str | Path, contours_file: str | Path) -> np.ndarray:
    """The vertex of each iBUG-68 landmark on the SFM (see the module docstring for the rules).

    Args:
        mean: (V, 3) SFM mean shape.
        mapping_file: ``ibug_to_sfm.txt``.
        contours_file: ``sfm_model_contours.json``.

    Returns:
        (68,) int64 vertex indices.
    """
    eos = optional_module("eos", "the Surrey Face Model")
    mapper = eos.core.LandmarkMapper(str(mapping_file))
    landmarks = np.full(68, -1, dtype=np.int64)
    for k in range(68):
        vertex = mapper.convert(str(k + 1))
        if vertex is not None:
            landmarks[k] = int(vertex)
    unmapped = [k + 1 for k in MAPPED_LANDMARKS if landmarks[k] < 0]
    if unmapped:
        raise VoxfaceError(f"{mapping_file} does not map the iBUG landmarks {unmapped} (1-based)")

    with open(contours_file, encoding="utf-8") as f:
        contours = json.load(f)["model_contour"]
    eye_y = mean[landmarks[[36, 45]], 1].mean()
    chin = mean[landmarks[8]]
    top_y = eye_y - JAW_TOP_DROP * (eye_y - chin[1])
    for side, jaw in (("right_contour", range(0, 8)), ("left_contour", range(16, 8, -1))):
        path = np.vstack([mean[contours[side]], chin[None]])
        points = _equal_arc_points(path, top_y, n=9)[:-1]
        landmarks[list(jaw)] = _nearest_vertices(mean, points)

    for corner, inner, (upper, lower) in ((60, 48, (61, 67)), (64, 54, (63, 65))):
        target = 0.5 * (mean[landmarks[inner]] + 0.5 * (mean[landmarks[upper]] + mean[landmarks[lower]]))
        landmarks[corner] = _nearest_vertices(mean, target[None])[0]
    return landmarks


def _equal_arc_points(path: np.ndarray, top_y: float, n: int) -> np.ndarray:
    """(n, 3) points at equal frontal arc-length steps along ``path`` (P, 3), from where its y first
    falls to ``top_y`` (or its start, if already below) to its last point."""
    step = np.linalg.norm(np.diff(path[:, :2], axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(step)])
    below = np.flatnonzero(path[:, 1] <= top_y)
    start = 0.0
    if len(below) and below[0] > 0:
        i = below[0]
        frac = (path[i - 1, 1] - top_y) / (path[i - 1, 1] - path[i, 1])
        start = arc[i - 1] + frac * step[i - 1]
    targets = np.linspace(start, arc[-1], n)
    return np.stack([np.interp(targets, arc, path[:, d]) for d in range(3)], axis=1)


def _nearest_vertices(vertices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(P,) int64 index of the vertex (V, 3) nearest to each point (P, 3)."""
    d2 = ((points[:, None, :] - vertices[None, :, :]) ** 2).sum(-1)
    return d2.argmin(axis=1).astype(np.int64)


def _blendshapes(path: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(3V, 6) float32 blendshape deformations and (6,) ones, or (None, None) without the file."""
    if not path.is_file():
        log.info("no %s beside the SFM: the model has no expression basis", path.name)
        return None, None
    eos = optional_module("eos", "the Surrey Face Model")
    shapes = eos.morphablemodel.load_blendshapes(str(path))
    basis = np.stack([np.asarray(b.deformation, dtype=np.float32).ravel() for b in shapes], axis=1)
    return basis, np.ones(basis.shape[1], dtype=np.float32)
