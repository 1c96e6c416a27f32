"""The one morphable-model type every loader returns and every metric and renderer reads.

Conventions (all loaders follow them):

- Coordinates: x to the subject's left (the viewer's right in a frontal view), y up, z out of the
  face towards a frontal camera. Units are the model's own (``units``: ``"mm"`` for the built-in
  model and the Surrey Face Model, ``"um"``, micrometres, for the Basel Face Model).
- Parameters are *standardised*: a shape coefficient of 1.0 moves the face one standard deviation
  along that component. Vertices = ``mean + shape_basis @ (z_shape * shape_std)
  + expression_basis @ (z_expr * expression_std)``, flattened xyz per vertex.
- Region and landmark names are anatomical: ``left_eye`` is the subject's own left eye. The 68
  landmarks follow the iBUG 300-W order, in which points 36-41 are the eye on the image's left,
  i.e. the subject's *right* eye.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import VoxfaceError

if TYPE_CHECKING:  # pragma: no cover
    import torch

MEASUREMENTS = ("OICD", "ER", "FR", "CR", "MR")
"""Vertex pairs of paper Fig. 5: outer-interocular (normaliser), ear, forehead, cheek, midline."""

RATIOS = ("ER", "FR", "MR", "CR")
"""The four ARE ratios, in the column order of paper Table 1."""

REGIONS = ("left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek")
"""The six face parts of the per-region point-to-plane RMSE (paper Table S-3/S-4)."""


@dataclass(frozen=True, eq=False)
class MorphableModel:
    """A linear 3D morphable model with the annotations voxface needs.

    Attributes:
        name: short identifier (``"builtin"``, ``"sfm"``, ``"bfm"``, ...).
        mean: (V, 3) float32 mean shape.
        shape_basis: (3V, K) float32; column k is the unit-variance direction of component k
            (flattened x0, y0, z0, x1, ...), so that ``shape_basis[:, k] * shape_std[k]`` is +1 SD.
        shape_std: (K,) float32 standard deviation of each shape component.
        triangles: (F, 3) int32 vertex indices, counter-clockwise seen from outside.
        landmarks68: (68,) int64 vertex index of each iBUG-68 landmark.
        measurements: name -> (i, j) vertex pair for each of ``MEASUREMENTS``.
        regions: name -> (n,) int64 vertex indices for each of ``REGIONS``.
        expression_basis: (3V, E) float32 or None.
        expression_std: (E,) float32 or None.
        units: length unit of the coordinates.
        albedo: (V, 3) float32 in [0, 1] or None; a per-vertex colour template (skin, brows, lips).
        gender_offset: (K,) float32 or None; mean of the standardised shape coefficients of men
            minus women (the prior's mean is ``+offset/2`` for men, ``-offset/2`` for women).
        meta: free-form provenance (source files, citations).
    """

    name: str
    mean: np.ndarray
    shape_basis: np.ndarray
    shape_std: np.ndarray
    triangles: np.ndarray
    landmarks68: np.ndarray
    measurements: dict[str, tuple[int, int]]
    regions: dict[str, np.ndarray]
    expression_basis: np.ndarray | None = None
    expression_std: np.ndarray | None = None
    units: str = "mm"
    albedo: np.ndarray | None = None
    gender_offset: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = self.mean.shape[0]
        problems = []
        if self.mean.shape != (v, 3):
            problems.append(f"mean has shape {self.mean.shape}, expected (V, 3)")
        if self.shape_basis.ndim != 2 or self.shape_basis.shape[0] != 3 * v:
            problems.append(f"shape_basis has shape {self.shape_basis.shape}, expected ({3 * v}, K)")
        if self.shape_std.shape != (self.shape_basis.shape[1],):
            problems.append("shape_std length differs from the number of shape components")
        if (self.expression_basis is None) != (self.expression_std is None):
            problems.append("expression_basis and expression_std must be given together")
        if self.expression_basis is not None and (
            self.expression_basis.shape[0] != 3 * v
            or self.expression_std.shape != (self.expression_basis.shape[1],)
        ):
            problems.append("expression basis/std shapes are inconsistent")
        if self.landmarks68.shape != (68,):
            problems.append(f"landmarks68 has shape {self.landmarks68.shape}, expected (68,)")
        if set(self.measurements) != set(MEASUREMENTS):
            problems.append(f"measurements must name exactly {MEASUREMENTS}")
        if set(self.regions) != set(REGIONS):
            problems.append(f"regions must name exactly {REGIONS}")
        indices = [self.triangles.ravel(), self.landmarks68, np.ravel(list(self.measurements.values()))]
        indices += [np.asarray(r) for r in self.regions.values()]
        if any(len(ix) and (ix.min() < 0 or ix.max() >= v) for ix in indices):
            problems.append("a vertex index is out of range")
        if problems:
            raise VoxfaceError(f"invalid morphable model {self.name!r}: " + "; ".join(problems))

    # ----------------------------------------------------------------------------- sizes
    @property
    def n_vertices(self) -> int:
        return int(self.mean.shape[0])

    @property
    def n_shape(self) -> int:
        return int(self.shape_basis.shape[1])

    @property
    def n_expression(self) -> int:
        return 0 if self.expression_basis is None else int(self.expression_basis.shape[1])

    # ----------------------------------------------------------------------------- geometry
    def reconstruct(self, shape, expression=None):
        """Vertices from standardised coefficients; numpy in -> numpy out, torch in -> torch out.

        Args:
            shape: (..., K') coefficients, K' <= K (missing trailing components are zero).
            expression: (..., E') coefficients or None.

        Returns:
            (..., V, 3) vertices, float32 (numpy) or the input's dtype/device (torch).
        """
        if _is_torch(shape):
            return self._reconstruct_torch(shape, expression)
        shape = np.asarray(shape, dtype=np.float32)
        flat = self._offsets_numpy(shape, self.shape_basis, self.shape_std, "shape")
        if expression is not None:
            flat = flat + self._offsets_numpy(
                np.asarray(expression, dtype=np.float32), self.expression_basis, self.expression_std,
                "expression")
        return self.mean + flat.reshape(*flat.shape[:-1], self.n_vertices, 3)

    def _offsets_numpy(self, coeffs: np.ndarray, basis, std, what: str) -> np.ndarray:
        k = coeffs.shape[-1]
        if basis is None or k > basis.shape[1]:
            raise VoxfaceError(
                f"model {self.name!r} has {0 if basis is None else basis.shape[1]} {what} "
                f"components; got {k} coefficients")
        return (coeffs * std[:k]) @ basis[:, :k].T

    def _reconstruct_torch(self, shape: "torch.Tensor", expression: "torch.Tensor | None"):
        import torch

        def offsets(coeffs, basis, std, what):
            k = coeffs.shape[-1]
            if basis is None or k > basis.shape[1]:
                raise VoxfaceError(f"model {self.name!r} has too few {what} components for {k}")
            b = torch.as_tensor(basis[:, :k], dtype=coeffs.dtype, device=coeffs.device)
            s = torch.as_tensor(std[:k], dtype=coeffs.dtype, device=coeffs.device)
            return (coeffs * s) @ b.T

        flat = offsets(shape, self.shape_basis, self.shape_std, "shape")
        if expression is not None:
            flat = flat + offsets(expression, self.expression_basis, self.expression_std, "expression")
        mean = torch.as_tensor(self.mean, dtype=shape.dtype, device=shape.device)
        return mean + flat.reshape(*flat.shape[:-1], self.n_vertices, 3)

    def same_as(self, other: "MorphableModel") -> bool:
        """Whether ``other`` is this model (name, vertex count and mean shape), so that coefficients
        of one mean the same face in the other."""
        return (self.name == other.name and self.n_vertices == other.n_vertices
                and bool(np.allclose(self.mean, other.mean)))

    def landmarks(self, vertices):
        """(..., V, 3) -> (..., 68, 3) landmark positions."""
        return vertices[..., self.landmarks68, :]

    def truncated(self, n_shape: int, n_expression: int | None = None) -> "MorphableModel":
        """The same model keeping only the first ``n_shape`` (and ``n_expression``) components."""
        n_expression = self.n_expression if n_expression is None else n_expression
        keep_expr = self.expression_basis is not None and n_expression > 0
        return _replace(
            self,
            shape_basis=np.ascontiguousarray(self.shape_basis[:, :n_shape]),
            shape_std=self.shape_std[:n_shape],
            gender_offset=None if self.gender_offset is None else self.gender_offset[:n_shape],
            expression_basis=np.ascontiguousarray(self.expression_basis[:, :n_expression]) if keep_expr else None,
            expression_std=self.expression_std[:n_expression] if keep_expr else None,
        )

    # ----------------------------------------------------------------------------- storage
    def to_npz_bytes(self) -> bytes:
        """Serialise to an ``.npz`` payload (used to store a corpus's model beside its data)."""
        arrays = {
            "mean": self.mean, "shape_basis": self.shape_basis, "shape_std": self.shape_std,
            "triangles": self.triangles, "landmarks68": self.landmarks68,
            "measurement_names": np.array(list(self.measurements)),
            "measurement_pairs": np.array(list(self.measurements.values()), dtype=np.int64),
            "name": np.array(self.name), "units": np.array(self.units),
        }
        for region, ix in self.regions.items():
            arrays[f"region__{region}"] = np.asarray(ix, dtype=np.int64)
        for key in ("expression_basis", "expression_std", "albedo", "gender_offset"):
            if getattr(self, key) is not None:
                arrays[key] = getattr(self, key)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_npz(cls, path_or_file) -> "MorphableModel":
        """Inverse of :meth:`to_npz_bytes`."""
        with np.load(path_or_file, allow_pickle=False) as z:
            get = lambda k: z[k] if k in z.files else None  # noqa: E731
            return cls(
                name=str(z["name"]), units=str(z["units"]), mean=z["mean"],
                shape_basis=z["shape_basis"], shape_std=z["shape_std"], triangles=z["triangles"],
                landmarks68=z["landmarks68"],
                measurements={str(n): (int(p[0]), int(p[1]))
                              for n, p in zip(z["measurement_names"], z["measurement_pairs"])},
                regions={k[len("region__"):]: z[k] for k in z.files if k.startswith("region__")},
                expression_basis=get("expression_basis"), expression_std=get("expression_std"),
                albedo=get("albedo"), gender_offset=get("gender_offset"),
            )


def _replace(model: MorphableModel, **changes) -> MorphableModel:
    import dataclasses

    return dataclasses.replace(model, **changes)


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")
