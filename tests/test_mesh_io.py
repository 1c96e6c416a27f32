"""Mesh files: OBJ / PLY / GLB round trips keep vertices (in order) and faces; clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from voxface.errors import VoxfaceError
from voxface.face3d.mesh_io import load_mesh, save_mesh

FORMATS = ["obj", "ply", "glb"]


def small_mesh():
    """A triangle fan over 30 vertices plus one vertex no triangle uses (it must survive too)."""
    rng = np.random.default_rng(0)
    vertices = (rng.normal(size=(31, 3)) * 40).astype(np.float32)
    triangles = np.array([[0, i, i + 1] for i in range(1, 29)] + [[1, 29, 28]], dtype=np.int64)
    colors = rng.uniform(size=(31, 3))
    return vertices, triangles, colors


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("with_colors", [False, True])
def test_round_trip_keeps_vertices_and_faces(tmp_path, suffix, with_colors):
    vertices, triangles, colors = small_mesh()
    path = tmp_path / "sub" / f"face.{suffix}"
    save_mesh(path, vertices, triangles, colors if with_colors else None)
    loaded_vertices, loaded_triangles = load_mesh(path)
    np.testing.assert_allclose(loaded_vertices, vertices, atol=1e-5)
    np.testing.assert_array_equal(loaded_triangles, triangles)
    assert sorted(p.name for p in path.parent.iterdir()) == [f"face.{suffix}"]  # no temporary left


@pytest.mark.parametrize("suffix", ["obj", "ply"])
def test_colours_are_written(tmp_path, suffix):
    vertices, triangles, colors = small_mesh()
    path = save_mesh(tmp_path / f"face.{suffix}", vertices, triangles, colors)
    stored = trimesh.load(path, process=False, maintain_order=True).visual.vertex_colors[:, :3]
    np.testing.assert_allclose(stored / 255.0, colors, atol=1 / 255)


def test_unknown_suffix_is_refused_on_save_and_load(tmp_path):
    vertices, triangles, _ = small_mesh()
    with pytest.raises(VoxfaceError, match=r"\.stl"):
        save_mesh(tmp_path / "face.stl", vertices, triangles)
    (tmp_path / "face.xyz").write_text("1 2 3\n")
    with pytest.raises(VoxfaceError, match=r"\.obj, \.ply, \.glb"):
        load_mesh(tmp_path / "face.xyz")


def test_unreadable_and_missing_files_raise_voxface_errors(tmp_path):
    (tmp_path / "broken.ply").write_bytes(b"ply\nformat nonsense\n\x00\x01")
    with pytest.raises(VoxfaceError, match="broken.ply"):
        load_mesh(tmp_path / "broken.ply")
    (tmp_path / "points.obj").write_text("v 0 0 0\nv 1 0 0\n")
    with pytest.raises(VoxfaceError, match="points.obj"):
        load_mesh(tmp_path / "points.obj")
    with pytest.raises(VoxfaceError, match="not found"):
        load_mesh(tmp_path / "absent.glb")


def test_wrong_shapes_are_refused(tmp_path):
    vertices, triangles, _ = small_mesh()
    with pytest.raises(VoxfaceError, match="colors"):
        save_mesh(tmp_path / "face.ply", vertices, triangles, np.ones((3, 3)))
    with pytest.raises(VoxfaceError, match=r"\(V, 3\)"):
        save_mesh(tmp_path / "face.ply", vertices[:, :2], triangles)
