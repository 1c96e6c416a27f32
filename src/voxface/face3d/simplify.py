"""A coarser mesh for quick previews: vertex clustering on a grid, fixed once per model.

A 3DMM's meshes all share one topology, so the clustering is computed once from a reference mesh
(the model's mean) and then applied to any mesh of the model by averaging the vertices of each
cluster. Triangles whose corners fall into fewer than three clusters vanish; the rest keep their
orientation. Used by the page's live updates (:mod:`voxface.app.live`), whose renders are small:
with cells of about two pixels the preview differs from the full render only at the level of
single pixels, for a fraction of the cost on a software renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import VoxfaceError


@dataclass(frozen=True)
class VertexClustering:
    """Which cluster each vertex of a mesh falls into, and the triangles between clusters.

    Attributes:
        labels: (V,) int64 cluster of each vertex of the full mesh.
        counts: (C,) int64 vertices in each cluster.
        triangles: (F', 3) int64 triangles of the coarse mesh (indices into the C clusters),
            counter-clockwise as in the full mesh, none degenerate or repeated.
    """

    labels: np.ndarray
    counts: np.ndarray
    triangles: np.ndarray

    @classmethod
    def of(cls, vertices: np.ndarray, triangles: np.ndarray, cells: int) -> "VertexClustering":
        """Cluster ``vertices`` (V, 3) on a grid of ``cells`` cubes across the mesh's largest extent.

        Args:
            vertices: (V, 3) reference positions (e.g. the model's mean).
            triangles: (F, 3) vertex indices.
            cells: grid cells along the largest side of the bounding box (>= 2); a render of S
                pixels showing the mesh at fill f has cells of ``f * S / cells`` pixels.
        """
        if cells < 2:
            raise VoxfaceError(f"a vertex clustering needs at least 2 cells across the mesh, got {cells}")
        v = np.asarray(vertices, dtype=np.float64)
        low = v.min(axis=0)
        extent = float(np.max(v.max(axis=0) - low))
        if extent <= 0:
            raise VoxfaceError("cannot cluster the vertices of a mesh that is a single point")
        cell = np.clip(np.floor((v - low) * (cells / extent)).astype(np.int64), 0, cells - 1)
        key = (cell[:, 0] * cells + cell[:, 1]) * cells + cell[:, 2]
        _, labels, counts = np.unique(key, return_inverse=True, return_counts=True)
        corners = labels.reshape(-1)[np.asarray(triangles, dtype=np.int64)]
        kept = corners[(corners[:, 0] != corners[:, 1]) & (corners[:, 1] != corners[:, 2])
                       & (corners[:, 0] != corners[:, 2])]
        # Rotate each triangle so its smallest index comes first (orientation unchanged), then drop repeats.
        first = np.argmin(kept, axis=1)
        order = (first[:, None] + np.arange(3)[None, :]) % 3
        canonical = np.unique(np.take_along_axis(kept, order, axis=1), axis=0)
        return cls(labels.reshape(-1), counts, canonical)

    @property
    def n_clusters(self) -> int:
        return len(self.counts)

    def reduce(self, values: np.ndarray) -> np.ndarray:
        """(V, D) per-vertex values of a full mesh (positions, colours) -> (C, D) cluster means."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or len(values) != len(self.labels):
            raise VoxfaceError(f"expected ({len(self.labels)}, D) per-vertex values, got {values.shape}")
        sums = np.stack([np.bincount(self.labels, weights=values[:, d], minlength=self.n_clusters)
                         for d in range(values.shape[1])], axis=1)
        return sums / self.counts[:, None]
