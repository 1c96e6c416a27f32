"""Triangle-mesh files: OBJ, PLY and GLB, chosen by suffix (trimesh), written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import VoxfaceError
from ..runs.atomic import atomic_path

MESH_SUFFIXES = (".obj", ".ply", ".glb")


def save_mesh(path: str | os.PathLike, vertices: np.ndarray, triangles: np.ndarray,
              colors: np.ndarray | None = None) -> Path:
    """Write a triangle mesh; the format follows the suffix (``.obj``, ``.ply`` or ``.glb``).

    Vertex order and triangles are written as given (no merging or re-ordering).

    Args:
        path: destination file; its folder is created.
        vertices: (V, 3) float vertex positions.
        triangles: (F, 3) int vertex indices, 0-based.
        colors: optional (V, 3) or (V, 4) per-vertex colours, floats in [0, 1] or uint8.

    Returns:
        the path written.

    Raises:
        VoxfaceError: unknown suffix, or arrays of the wrong shape.
    """
    import trimesh

    path = Path(path)
    file_type = _file_type(path)
    vertices = np.asarray(vertices, dtype=np.float64)
    triangles = np.asarray(triangles, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or triangles.ndim != 2 or triangles.shape[1] != 3:
        raise VoxfaceError(
            f"cannot save {path}: vertices must be (V, 3) and triangles (F, 3), got "
            f"{vertices.shape} and {triangles.shape}")
    if colors is not None:
        colors = np.asarray(colors)
        if colors.shape not in ((len(vertices), 3), (len(vertices), 4)):
            raise VoxfaceError(f"cannot save {path}: colors must be (V, 3) or (V, 4), got {colors.shape}")
        if colors.dtype != np.uint8:
            colors = np.round(np.clip(colors, 0.0, 1.0) * 255).astype(np.uint8)
    mesh = trimesh.Trimesh(vertices=vertices, faces=triangles, vertex_colors=colors, process=False)
    with atomic_path(path) as tmp:
        mesh.export(tmp, file_type=file_type)
    return path


def load_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh written by :func:`save_mesh` (or any OBJ / PLY / GLB file).

    A GLB scene with several meshes is flattened into one.

    Args:
        path: an ``.obj``, ``.ply`` or ``.glb`` file.

    Returns:
        ``(vertices, triangles)``: (V, 3) float64 and (F, 3) int64, in file order.

    Raises:
        VoxfaceError: unknown suffix, missing file, or a file trimesh cannot read as triangles.
    """
    import trimesh

    path = Path(path)
    file_type = _file_type(path)
    if not path.is_file():
        raise VoxfaceError(f"mesh file not found: {path}")
    try:
        mesh = trimesh.load(path, file_type=file_type, force="mesh", process=False, maintain_order=True)
    except Exception as exc:  # trimesh raises many unrelated types for malformed files
        raise VoxfaceError(f"cannot read the mesh {path}: {exc}") from exc
    faces = getattr(mesh, "faces", None)
    if faces is None or len(faces) == 0:
        raise VoxfaceError(f"{path} holds no triangles; is it a triangle mesh in {file_type.upper()} format?")
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)


def _file_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise VoxfaceError(
            f"unknown mesh format {suffix!r} for {path}; use one of {', '.join(MESH_SUFFIXES)}")
    return suffix[1:]
