"""The coarse preview mesh: vertex clustering on a grid, checked on closed forms and against the full render."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from voxface.errors import VoxfaceError
from voxface.face3d.render import RENDER_FILL, render_mesh, vertex_normals
from voxface.face3d.simplify import VertexClustering


def grid_mesh(n: int) -> tuple[np.ndarray, np.ndarray]:
    """An n x n grid of vertices on [0, 1]^2 in the z = 0 plane, two counter-clockwise triangles per square."""
    x, y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="xy")
    vertices = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], axis=1)
    index = np.arange(n * n).reshape(n, n)
    a, b, c, d = index[:-1, :-1].ravel(), index[:-1, 1:].ravel(), index[1:, 1:].ravel(), index[1:, :-1].ravel()
    triangles = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return vertices, triangles


def test_a_grid_clusters_into_blocks_with_their_means_and_the_triangles_between_them():
    vertices, triangles = grid_mesh(8)  # 8 x 8 vertices; 4 cells across: 2 x 2 vertex blocks
    clustering = VertexClustering.of(vertices, triangles, cells=4)
    assert clustering.n_clusters == 16 and np.all(clustering.counts == 4)
    coarse = clustering.reduce(vertices)
    step = 1 / 7
    expected = np.sort((np.arange(4) * 2 + 0.5) * step)
    assert np.allclose(np.unique(coarse[:, 0].round(9)), expected)
    assert np.allclose(np.unique(coarse[:, 1].round(9)), expected)
    # Between blocks, a 4 x 4 grid of clusters keeps two triangles per square of clusters (3 x 3 squares).
    assert len(clustering.triangles) == 18
    assert len(np.unique(np.sort(clustering.triangles, axis=1), axis=0)) == 18  # no repeats
    normals = vertex_normals(coarse, clustering.triangles)
    assert np.allclose(normals[:, 2], 1.0)  # orientation kept: every face still faces +z


def test_reduce_averages_any_per_vertex_values_and_checks_their_shape():
    vertices, triangles = grid_mesh(6)
    clustering = VertexClustering.of(vertices, triangles, cells=3)
    values = np.random.default_rng(0).normal(size=(len(vertices), 2))
    means = clustering.reduce(values)
    for cluster in range(clustering.n_clusters):
        assert np.allclose(means[cluster], values[clustering.labels == cluster].mean(axis=0))
    with pytest.raises(VoxfaceError, match="per-vertex values"):
        clustering.reduce(values[:-1])
    with pytest.raises(VoxfaceError, match="at least 2 cells"):
        VertexClustering.of(vertices, triangles, cells=1)


def preview_and_full_renders(vertices, triangles, size: int = 256, cell_px: float = 2.0):
    """(full render, preview render, the clustering) of a mesh at ``size`` px with ``cell_px`` clusters."""
    clustering = VertexClustering.of(vertices, triangles, cells=round(RENDER_FILL * size / cell_px))
    full = render_mesh(vertices, triangles, size=size)
    preview = render_mesh(clustering.reduce(vertices), clustering.triangles, size=size)
    return full, preview, clustering


def assert_looks_alike(full: np.ndarray, preview: np.ndarray) -> None:
    """The two renders cover the same pixels (IoU > 0.98) and differ by < 7 grey levels there on average."""
    covered_full, covered_preview = full.sum(-1) > 0, preview.sum(-1) > 0
    overlap = (covered_full & covered_preview).sum() / (covered_full | covered_preview).sum()
    difference = np.abs(full.astype(np.float64) - preview)[covered_full].mean()
    assert overlap > 0.98 and difference < 7.0, (overlap, difference)


def test_the_preview_of_a_dense_bumpy_surface_looks_like_its_full_render_for_a_fraction_of_the_triangles():
    vertices, triangles = grid_mesh(300)  # 90,000 vertices, denser than the pixels of a 256 px render
    x, y = vertices[:, 0], vertices[:, 1]
    vertices[:, 2] = 0.08 * np.sin(9 * x) * np.cos(7 * y) + 0.3 * np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / 0.05)
    full, preview, clustering = preview_and_full_renders(vertices, triangles)
    assert len(clustering.triangles) < 0.3 * len(triangles)
    assert_looks_alike(full, preview)
    assert not np.array_equal(full, preview)  # it is a different mesh


def test_renders_from_many_threads_equal_the_same_renders_in_turn():
    vertices, triangles = grid_mesh(20)
    meshes = [vertices * [1.0, 1.0 + 0.1 * k, 1.0] for k in range(6)]
    in_turn = [render_mesh(m, triangles, size=64) for m in meshes]
    with ThreadPoolExecutor(3) as pool:
        at_once = list(pool.map(lambda m: render_mesh(m, triangles, size=64), meshes))
    for a, b in zip(in_turn, at_once):
        assert np.array_equal(a, b)
