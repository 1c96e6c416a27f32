"""The six face regions of the per-region RMSE (eyes, nose, mouth, cheeks), found from 68 landmarks.

One geometric rule serves every morphable model (built-in, SFM, BFM). With ``s`` the distance
between the outer eye corners (landmarks 36 and 45) and every vertex projected frontally onto (x, y):

1. *Front surface.* A vertex is kept when no vertex in its square (x, y) cell of side
   ``FRONT_CELL * s`` lies more than ``FRONT_DEPTH * s`` in front of it (larger z). This drops the
   neck under the jaw and other surfaces hidden in a frontal view.
2. *Features.* Polygons: each eye = its six landmarks (36-41 is the subject's right eye, 42-47 the
   left), the nose = the convex hull of landmarks 27-35, the mouth = the outer lip contour 48-59.
   A front vertex whose projection lies within ``FEATURE_MARGIN[name] * s`` of one or more feature
   polygons (inside counts as distance <= 0) joins the nearest of them (by signed distance, so the
   one it lies deepest inside).
3. *Cheeks.* Polygons from the lower eyelid down the side of the nose to the nostril, the mouth
   corner and up the jaw contour: right = 36, 41, 40, 39, 31, 48, 4, 3, 2, 1, 0 and left = its mirror
   45, 46, 47, 42, 35, 54, 12, 13, 14, 15, 16. Front vertices inside a cheek polygon that no feature
   took form the cheek.

The regions are therefore disjoint. Left/right are anatomical: ``left_eye`` has +x (the subject's
left in voxface's frame).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull

from ..errors import VoxfaceError
from .morphable_model import REGIONS

FRONT_CELL = 0.03
"""Side of the depth-test cell, as a fraction of the outer-eye-corner distance."""

FRONT_DEPTH = 0.10
"""Depth by which a vertex may lie behind the front-most vertex of its cell, fraction of that distance."""

FEATURE_MARGIN = {"right_eye": 0.08, "left_eye": 0.08, "nose": 0.10, "mouth": 0.06}
"""How far outside its landmark polygon a feature region reaches, fraction of that distance."""

FEATURE_LANDMARKS = {
    "right_eye": list(range(36, 42)),
    "left_eye": list(range(42, 48)),
    "nose": list(range(27, 36)),
    "mouth": list(range(48, 60)),
}
"""iBUG-68 landmark indices (0-based) whose polygon outlines each feature."""

CHEEK_LANDMARKS = {
    "right_cheek": [36, 41, 40, 39, 31, 48, 4, 3, 2, 1, 0],
    "left_cheek": [45, 46, 47, 42, 35, 54, 12, 13, 14, 15, 16],
}
"""iBUG-68 landmark indices (0-based) of each cheek polygon, in boundary order."""


def regions_from_landmarks(vertices: np.ndarray, landmarks68: np.ndarray) -> dict[str, np.ndarray]:
    """Vertex sets of the six face regions of a neutral, frontal face.

    Args:
        vertices: (V, 3) float vertices in voxface's frame (x = subject's left, y up, z to the camera).
        landmarks68: (68,) int vertex index of each iBUG-68 landmark.

    Returns:
        name -> (n,) int64 sorted vertex indices, for each name of ``REGIONS``; disjoint, non-empty.

    Raises:
        VoxfaceError: if the landmarks are mirrored (outer corner of the left eye not at larger x
            than the right eye's) or a region comes out empty (a mesh too coarse for the rule).
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    landmarks = vertices[np.asarray(landmarks68, dtype=np.int64)]
    scale = float(np.linalg.norm(landmarks[45] - landmarks[36]))
    if not landmarks[45, 0] > landmarks[36, 0]:
        raise VoxfaceError(
            "landmarks68 put the subject's left eye (42-47) at smaller x than the right eye (36-41): "
            "the mesh must use voxface's frame (x = subject's left, y up, z towards the camera)")
    points = vertices[:, :2]
    front = front_surface_mask(vertices, cell=FRONT_CELL * scale, depth=FRONT_DEPTH * scale)

    names = list(FEATURE_LANDMARKS)
    signed = np.stack([
        signed_distance_to_polygon(points, _feature_polygon(landmarks[FEATURE_LANDMARKS[n], :2], n))
        for n in names])
    margins = np.array([FEATURE_MARGIN[n] * scale for n in names])[:, None]
    reachable = np.where(signed <= margins, signed, np.inf)
    nearest = np.argmin(reachable, axis=0)
    in_reach = front & np.isfinite(reachable.min(axis=0))
    regions = {n: np.flatnonzero(in_reach & (nearest == k)) for k, n in enumerate(names)}

    free = front & ~in_reach
    for name, ids in CHEEK_LANDMARKS.items():
        regions[name] = np.flatnonzero(free & (signed_distance_to_polygon(points, landmarks[ids, :2]) <= 0))

    empty = [n for n in REGIONS if len(regions[n]) == 0]
    if empty:
        raise VoxfaceError(
            f"face regions {empty} contain no vertex of this {len(vertices)}-vertex mesh; "
            "the mesh is too coarse or the landmarks are misplaced")
    return {n: regions[n].astype(np.int64) for n in REGIONS}


def front_surface_mask(vertices: np.ndarray, cell: float, depth: float) -> np.ndarray:
    """Which vertices a frontal camera (looking down -z) sees, by a coarse depth test.

    Args:
        vertices: (V, 3) float.
        cell: side of the square (x, y) cells, in the vertices' units.
        depth: tolerance behind the front-most vertex of the cell, same units.

    Returns:
        (V,) bool, True where ``z >= max z of the vertex's cell - depth``.
    """
    cells = np.floor(vertices[:, :2] / cell).astype(np.int64)
    _, cell_of_vertex = np.unique(cells, axis=0, return_inverse=True)
    cell_of_vertex = cell_of_vertex.ravel()
    z_front = np.full(cell_of_vertex.max() + 1, -np.inf)
    np.maximum.at(z_front, cell_of_vertex, vertices[:, 2])
    return vertices[:, 2] >= z_front[cell_of_vertex] - depth


def signed_distance_to_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Signed 2D distance from points to a closed polygon: negative inside, positive outside.

    Args:
        points: (N, 2) float.
        polygon: (M, 2) float corners in boundary order (either orientation; closed implicitly).

    Returns:
        (N,) float64 distance to the nearest edge, negated for points inside (even-odd rule).
    """
    a = np.asarray(polygon, dtype=np.float64)
    b = np.roll(a, -1, axis=0)
    p = np.asarray(points, dtype=np.float64)[:, None, :]  # (N, 1, 2)
    edge = b - a  # (M, 2)
    t = np.clip(np.sum((p - a) * edge, axis=-1) / np.maximum(np.sum(edge * edge, axis=-1), 1e-30), 0, 1)
    distance = np.linalg.norm(p - (a + t[..., None] * edge), axis=-1).min(axis=1)
    y = p[..., 1]
    crosses = (a[:, 1] > y) != (b[:, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = a[:, 0] + (y - a[:, 1]) * edge[:, 0] / edge[:, 1]
    inside = np.sum(crosses & (p[..., 0] < x_cross), axis=1) % 2 == 1
    return np.where(inside, -distance, distance)


def _feature_polygon(corners: np.ndarray, name: str) -> np.ndarray:
    """(M, 2) outline of a feature: the convex hull for the nose, the landmarks' own order otherwise."""
    if name == "nose":
        return corners[ConvexHull(corners).vertices]
    return corners
