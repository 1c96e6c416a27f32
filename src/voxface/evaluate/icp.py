"""Region-based metric of the CMP paper: point-to-plane RMSE after ICP (supplement Tables S-3/S-4).

The paper publishes no code for this metric; the choices made here are:

1. Scale: the prediction is scaled about its centroid, by a given factor or, by default, so that
   its RMS radius (RMS distance of the vertices to their centroid) equals the reference's.
2. Initial alignment: the rigid motion that best maps the prediction's vertices onto their
   corresponding reference vertices (Kabsch / Umeyama without scale, :func:`kabsch`).
3. Refinement: open3d point-to-plane ICP against the reference vertices, with the reference's
   vertex normals computed from its triangles.
4. Error: for every prediction vertex, the distance to the tangent plane of its nearest
   reference vertex; RMSE over all vertices ("holistic") and over each region's vertices.

Regions are either scored after the holistic registration (default) or registered on their own
(``region_registration="per_region"``, the "part registration" reading of Table S-4: Kabsch on
the region's correspondences, then ICP of the region's vertices against the whole reference, so a
region cannot slide off the edge of a cropped target).
"""

from __future__ import annotations

import logging
from typing import Literal, Mapping, Sequence

import numpy as np
from scipy.spatial import cKDTree

from ..errors import VoxfaceError

logger = logging.getLogger(__name__)

HOLISTIC = "holistic"
"""Key of the whole-mesh RMSE in the result dictionaries."""

DEFAULT_MAX_CORRESPONDENCE_FRACTION = 0.1
"""Default ICP correspondence cut-off, as a fraction of the reference's RMS radius."""


def kabsch(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rigid motion mapping corresponding points: ``target ~ source @ R.T + t``.

    Kabsch's SVD solution (Umeyama 1991 without scale), with the reflection correction so that
    ``det(R) = +1``.

    Args:
        source: (n, 3) points, n >= 3 not collinear.
        target: (n, 3) corresponding points.

    Returns:
        R: (3, 3) float64 rotation; t: (3,) float64 translation, in the points' units.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim != 2 or source.shape[1] != 3 or len(source) < 3:
        raise VoxfaceError(
            f"kabsch needs two (n >= 3, 3) arrays of corresponding points, got {source.shape} "
            f"and {target.shape}")
    source_centre, target_centre = source.mean(axis=0), target.mean(axis=0)
    covariance = (source - source_centre).T @ (target - target_centre)
    u, _, vt = np.linalg.svd(covariance)
    reflection = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, reflection]) @ u.T
    return rotation, target_centre - source_centre @ rotation.T


def point_to_plane_rmse(
    pred: np.ndarray,
    ref: np.ndarray,
    ref_triangles: np.ndarray,
    regions: Mapping[str, np.ndarray] | None = None,
    scale: float | None = None,
    max_iterations: int = 50,
    max_correspondence_distance: float | None = None,
    region_registration: Literal["holistic", "per_region"] = "holistic",
) -> dict[str, float]:
    """Point-to-plane RMSE of a predicted mesh against a reference after ICP, holistic and per region.

    Args:
        pred: (V, 3) predicted vertices, in the reference's topology.
        ref: (V, 3) reference vertices.
        ref_triangles: (F, 3) vertex indices of the reference's triangles (for its normals).
        regions: region name -> (n,) vertex indices (``MorphableModel.regions``), or None.
        scale: factor applied to the prediction about its centroid before alignment (e.g.
            ``OICD_ref / OICD_pred`` for OICD-style normalisation, 1.0 for none); None matches the
            prediction's RMS radius to the reference's.
        max_iterations: ICP iterations; 0 keeps the correspondence (Kabsch) alignment alone.
        max_correspondence_distance: ICP ignores pairs farther apart than this (reference units);
            None uses ``0.1 x`` the reference's RMS radius. The final RMSE counts every vertex.
        region_registration: ``"holistic"`` scores each region after the whole-mesh registration;
            ``"per_region"`` registers each region's vertices on their own (Kabsch on the
            region's correspondences, ICP against the whole reference surface).

    Returns:
        {"holistic": rmse, "<region>": rmse, ...}, float, in the reference's units.
    """
    pred, ref, ref_triangles = _check_pair(pred, ref, ref_triangles)
    regions = _check_regions(regions or {}, ref.shape[0])
    if region_registration not in (HOLISTIC, "per_region"):
        raise VoxfaceError(
            f"unknown region_registration {region_registration!r}; use 'holistic' or 'per_region'")
    if max_iterations < 0:
        raise VoxfaceError(f"max_iterations must be >= 0, got {max_iterations}")
    ref_normals = _vertex_normals(ref, ref_triangles)
    if max_correspondence_distance is None:
        max_correspondence_distance = DEFAULT_MAX_CORRESPONDENCE_FRACTION * _rms_radius(ref)
    scaled = _scale_about_centroid(pred, _rms_radius(ref) / _rms_radius(pred) if scale is None else scale)
    ref_tree = cKDTree(ref)

    def register_and_score(index: np.ndarray | slice) -> np.ndarray:
        aligned = _align(scaled[index], ref[index], ref, ref_normals, max_iterations,
                         max_correspondence_distance)
        return _point_to_plane_residuals(aligned, ref_tree, ref, ref_normals)

    residuals = register_and_score(slice(None))
    result = {HOLISTIC: _rms(residuals)}
    for name, index in regions.items():
        registered_alone = region_registration == "per_region"
        result[name] = _rms(register_and_score(index) if registered_alone else residuals[index])
    return result


def batch_point_to_plane_rmse(
    preds: np.ndarray | Sequence[np.ndarray],
    refs: np.ndarray | Sequence[np.ndarray],
    ref_triangles: np.ndarray,
    regions: Mapping[str, np.ndarray] | None = None,
    **options,
) -> dict[str, np.ndarray]:
    """:func:`point_to_plane_rmse` over many (prediction, reference) pairs.

    Args:
        preds: (N, V, 3) predictions (or a sequence of N (V, 3) arrays).
        refs: (N, V, 3) references paired with ``preds``, or one (V, 3) reference for all.
        ref_triangles: (F, 3) triangles shared by every reference.
        regions: region name -> (n,) vertex indices, or None.
        **options: ``scale``, ``max_iterations``, ``max_correspondence_distance``,
            ``region_registration`` as in :func:`point_to_plane_rmse`.

    Returns:
        {"holistic": (N,), "<region>": (N,), ...} float64 RMSE per pair, in the references' units.
    """
    preds = [np.asarray(p) for p in preds]
    refs = [refs] * len(preds) if isinstance(refs, np.ndarray) and refs.ndim == 2 else list(refs)
    if len(refs) != len(preds):
        raise VoxfaceError(f"got {len(preds)} predictions but {len(refs)} references; pair them one to one")
    rows = [point_to_plane_rmse(p, r, ref_triangles, regions, **options) for p, r in zip(preds, refs)]
    keys = rows[0].keys() if rows else [HOLISTIC, *(regions or {})]
    return {key: np.array([row[key] for row in rows], dtype=np.float64) for key in keys}


# ------------------------------------------------------------------------------------ steps
def _align(
    source: np.ndarray, correspondents: np.ndarray, target: np.ndarray, target_normals: np.ndarray,
    max_iterations: int, max_correspondence_distance: float,
) -> np.ndarray:
    """Rigidly register (n, 3) source points to a target surface; returns the moved (n, 3) points.

    Kabsch on the known correspondences ``source[k] ~ correspondents[k]`` first, then
    point-to-plane ICP against all (M, 3) target points with their (M, 3) unit normals.
    """
    rotation, translation = kabsch(source, correspondents)
    aligned = source @ rotation.T + translation
    if max_iterations == 0:
        return aligned
    o3d = _open3d()
    registration = o3d.pipelines.registration
    source_cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(aligned))
    target_cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(target))
    target_cloud.normals = o3d.utility.Vector3dVector(target_normals)
    result = registration.registration_icp(
        source_cloud, target_cloud, max_correspondence_distance, np.eye(4),
        registration.TransformationEstimationPointToPlane(),
        registration.ICPConvergenceCriteria(
            relative_fitness=1e-10, relative_rmse=1e-10, max_iteration=max_iterations),
    )
    logger.debug("ICP fitness %.4f, inlier RMSE %.6g", result.fitness, result.inlier_rmse)
    transform = np.asarray(result.transformation)
    return aligned @ transform[:3, :3].T + transform[:3, 3]


def _point_to_plane_residuals(
    points: np.ndarray, target_tree: cKDTree, target: np.ndarray, normals: np.ndarray
) -> np.ndarray:
    """(n, 3) points -> (n,) signed distance to the tangent plane of each one's nearest target vertex."""
    _, nearest = target_tree.query(points)
    return np.einsum("ij,ij->i", points - target[nearest], normals[nearest])


def _vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3) vertices, (F, 3) triangles -> (V, 3) float64 unit vertex normals (open3d's)."""
    o3d = _open3d()
    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(triangles.astype(np.int32)))
    mesh.compute_vertex_normals()
    return np.asarray(mesh.vertex_normals, dtype=np.float64)


def _scale_about_centroid(vertices: np.ndarray, factor: float) -> np.ndarray:
    if not np.isfinite(factor) or factor <= 0:
        raise VoxfaceError(f"scale must be a positive finite number, got {factor}")
    centroid = vertices.mean(axis=0)
    return centroid + factor * (vertices - centroid)


def _rms_radius(vertices: np.ndarray) -> float:
    """RMS distance of (V, 3) vertices to their centroid."""
    return _rms(np.linalg.norm(vertices - vertices.mean(axis=0), axis=1))


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values))))


# ------------------------------------------------------------------------------------ checks
def _check_pair(pred, ref, triangles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    triangles = np.asarray(triangles)
    if pred.ndim != 2 or pred.shape[1] != 3 or pred.shape != ref.shape:
        raise VoxfaceError(
            f"pred and ref must be (V, 3) vertices of one topology, got {pred.shape} and {ref.shape}")
    if triangles.ndim != 2 or triangles.shape[1] != 3 or len(triangles) == 0:
        raise VoxfaceError(f"ref_triangles must have shape (F >= 1, 3), got {triangles.shape}")
    if triangles.min() < 0 or triangles.max() >= len(ref):
        raise VoxfaceError(
            f"ref_triangles index vertices outside 0..{len(ref) - 1}; 1-based triangles "
            "(e.g. tri_53215.mat) must be converted to 0-based first")
    if _rms_radius(pred) == 0 or _rms_radius(ref) == 0:
        raise VoxfaceError("pred or ref collapses to a single point; nothing to register")
    return pred, ref, triangles


def _check_regions(regions: Mapping[str, np.ndarray], n_vertices: int) -> dict[str, np.ndarray]:
    checked = {}
    for name, index in regions.items():
        if name == HOLISTIC:
            raise VoxfaceError(f"a region may not be called {HOLISTIC!r}; that key holds the whole mesh")
        index = np.asarray(index, dtype=np.int64)
        if index.ndim != 1 or len(index) < 3 or index.min() < 0 or index.max() >= n_vertices:
            raise VoxfaceError(
                f"region {name!r} must list at least 3 vertex indices in 0..{n_vertices - 1}")
        checked[name] = index
    return checked


def _open3d():
    try:
        import open3d
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise VoxfaceError(
            f"the point-to-plane RMSE needs open3d ({error}); install it with "
            "`pip install open3d-cpu==0.20.0` (on Linux it also needs the system package libusb-1.0-0)"
        ) from error
    return open3d
