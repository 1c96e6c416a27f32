"""The Basel Face Model 2009 and the 3DDFA / SynergyNet / CMP layouts of it.

Three sources, one annotation: CMP's measurement vertex pairs and 3DDFA's 68 landmark vertices are
indices into the 53,215-vertex *3DDFA topology* (BFM 2009 without part of the neck and ears,
``u_shp.npy``). Coordinates are BFM's own micrometres in voxface's frame (x = subject's left, y up,
z to the camera), which BFM already uses. Triangles are re-wound, where needed, so that the face
side faces +z (counter-clockwise seen from the camera).

- ``load_3ddfa(folder)``, 53,215 vertices: mean ``u_shp.npy + u_exp.npy``; bases ``w_shp_sim.npy`` /
  ``w_shp.npy`` (3V, 40) and ``w_exp_sim.npy`` / ``w_exp.npy`` (3V, 10) if present; triangles
  ``tri_53215.mat`` / ``tri.mat`` (1-based); landmarks ``keypoints_sim.npy[::3] // 3``.
- ``load_3ddfa(folder)``, 38,365 vertices (3DDFA_V2 / SynergyNet "no neck"): ``bfm_noneck_v3.pkl``
  (keys ``u``, ``w_shp``, ``w_exp``, ``keypoints``), triangles ``tri_38365.pkl`` / ``tri.pkl``
  (0-based, (3, F)), and ``noneck_indices_38365.npy`` (which 53,215-topology vertex each one is) to
  carry CMP's pairs over; a pair vertex outside the subset (CMP's left-ear vertex) is replaced by the
  vertex nearest to the mirror image (x -> -x) of its partner.
- ``load_bfm2009(path)``: ``01_MorphableModel.mat`` (53,490 vertices, 199 components). The
  annotations come from a 53,215-topology folder (``u_shp.npy`` + ``keypoints_sim.npy``): 3DDFA cut
  its mean out of BFM 2009's, so each of its vertices is found in BFM 2009 by exact position.

Standardised coefficients. 3DDFA's shape and expression parameters alpha are whitened with the
statistics in ``param_mean_std_62d_120x120.pkl`` (or ``param_whitening.pkl``): 62 = 12 pose (a 3x4
matrix, row-major) + 40 shape + 10 expression. voxface's coefficient is ``z = (alpha - mean) / std``,
so ``shape_std`` and ``expression_std`` are those stds and the model's mean is
``u + w_shp @ mean_shp + w_exp @ mean_exp`` (the face of the average training parameters). z is
therefore exactly the whitened output of CMP's and SynergyNet's regressors. With no basis files
(``../shared/data/bfm_topology``) the model has zero components and its mean is ``u``. BFM 2009's
``shapeEV`` are standard deviations already: ``shape_std = shapeEV``, ``shape_basis = shapePC``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.io
from scipy.spatial import cKDTree

from ..errors import VoxfaceError
from ..paths import shared_data_dir
from ..runs.checkpoints import load_array_pickle
from ..runs.reading import load_array
from .morphable_model import MorphableModel
from .regions import regions_from_landmarks

log = logging.getLogger(__name__)

CMP_MEASUREMENTS = {
    "OICD": (2217, 14607),
    "ER": (20636, 34153),
    "FR": (1678, 42117),
    "CR": (2294, 13635),
    "MR": (2130, 15003),
}
"""CMP's measurement vertex pairs (paper Fig. 5) on the 53,215-vertex 3DDFA topology, 0-based."""

N_3DDFA_VERTICES = 53215
N_POSE, N_SHAPE, N_EXPRESSION = 12, 40, 10
"""Layout of 3DDFA's 62-d parameter vector: pose, shape, expression."""

STATS_FILES = ("param_mean_std_62d_120x120.pkl", "param_whitening.pkl")
SHAPE_BASIS_FILES = ("w_shp_sim.npy", "w_shp.npy")
EXPRESSION_BASIS_FILES = ("w_exp_sim.npy", "w_exp.npy")
TRIANGLE_FILES_53215 = ("tri_53215.mat", "tri.mat")
TRIANGLE_FILES_38365 = ("tri_38365.pkl", "tri.pkl")
NONECK_FILE, NONECK_INDEX_FILE = "bfm_noneck_v3.pkl", "noneck_indices_38365.npy"

MATCH_TOLERANCE = 1.0
"""Largest gap (micrometres) between a 3DDFA mean vertex and its BFM 2009 counterpart."""


def load_3ddfa(folder: str | Path) -> MorphableModel:
    """Load a 3DDFA-family BFM folder: the 53,215-vertex layout, else the 38,365-vertex no-neck one.

    Args:
        folder: a folder with ``u_shp.npy``, ``u_exp.npy``, ``keypoints_sim.npy`` and
            ``tri_53215.mat`` (plus optional bases and statistics), or with ``bfm_noneck_v3.pkl``.

    Returns:
        MorphableModel ``"bfm"`` (53,215 vertices) or ``"bfm-noneck"`` (38,365), micrometres.

    Raises:
        VoxfaceError: the folder holds neither layout, a required file is missing, or bases are
            present without the parameter statistics that standardise them.
    """
    folder = Path(folder).expanduser()
    if (folder / "u_shp.npy").is_file():
        return _load_3ddfa_53215(folder)
    if (folder / NONECK_FILE).is_file():
        return _load_3ddfa_noneck(folder)
    raise VoxfaceError(
        f"{folder} holds no 3DDFA BFM files: expected u_shp.npy (+ u_exp.npy, keypoints_sim.npy, "
        f"tri_53215.mat) as in 3DDFA / SynergyNet, or {NONECK_FILE} as in 3DDFA_V2")


def load_bfm2009(path: str | Path, topology: str | Path | None = None) -> MorphableModel:
    """Load ``01_MorphableModel.mat`` of the Basel Face Model 2009 (MATLAB v5/v7 format).

    Args:
        path: the ``.mat`` file (``shapeMU`` (3V, 1), ``shapePC`` (3V, 199), ``shapeEV`` (199, 1)
            standard deviations, ``tl`` (F, 3) 1-based triangles).
        topology: a 53,215-topology folder (``u_shp.npy``, ``keypoints_sim.npy``) to take the
            landmarks and measurement pairs from; default: the ``.mat``'s own folder if it holds
            those files, else ``shared_data_dir()/"bfm_topology"``.

    Returns:
        MorphableModel ``"bfm2009"``: 53,490 vertices, 199 shape components, no expression,
        micrometres.

    Raises:
        VoxfaceError: unreadable or v7.3 file, missing fields, no topology folder, or a topology
            whose mean is not part of this model's mean.
    """
    path = Path(path).expanduser()
    fields = _read_mat(path, ("shapeMU", "shapePC", "shapeEV", "tl"))
    mean = np.asarray(fields["shapeMU"], dtype=np.float32).reshape(-1, 3)
    triangles = _facing_camera(mean, np.asarray(fields["tl"], dtype=np.int64) - 1)
    topology = _topology_folder(path, topology)
    index = _vertices_by_position(mean, load_array(topology / "u_shp.npy", "3DDFA topology file").reshape(-1, 3), path, topology)
    landmarks = index[keypoint_vertices(topology / "keypoints_sim.npy")]
    return MorphableModel(
        name="bfm2009",
        mean=mean,
        shape_basis=np.asarray(fields["shapePC"], dtype=np.float32),
        shape_std=np.asarray(fields["shapeEV"], dtype=np.float32).ravel(),
        triangles=triangles.astype(np.int32),
        landmarks68=landmarks,
        measurements={k: (int(index[i]), int(index[j])) for k, (i, j) in CMP_MEASUREMENTS.items()},
        regions=regions_from_landmarks(mean, landmarks),
        units="um",
        meta={"source": str(path), "annotations_from": str(topology),
              "citation": "Paysan et al., AVSS 2009 (Basel Face Model)"},
    )


# --------------------------------------------------------------------------------- 3DDFA layouts
def _load_3ddfa_53215(folder: Path) -> MorphableModel:
    u = _load_npy(folder / "u_shp.npy") + _load_npy(folder / "u_exp.npy")
    u = u.reshape(-1).astype(np.float32)
    if u.size != 3 * N_3DDFA_VERTICES:
        raise VoxfaceError(f"{folder / 'u_shp.npy'} has {u.size // 3} vertices, expected {N_3DDFA_VERTICES}")
    triangles = read_triangles_mat(_first_file(folder, TRIANGLE_FILES_53215))
    w_shp = _optional_npy(folder, SHAPE_BASIS_FILES)
    w_exp = _optional_npy(folder, EXPRESSION_BASIS_FILES)
    landmarks = keypoint_vertices(folder / "keypoints_sim.npy")
    return _standardised_model("bfm", folder, u, w_shp, w_exp, triangles, landmarks, dict(CMP_MEASUREMENTS))


def _load_3ddfa_noneck(folder: Path) -> MorphableModel:
    data = load_array_pickle(folder / NONECK_FILE, "3DDFA model file")
    missing = {"u", "w_shp", "w_exp", "keypoints"} - set(data)
    if missing:
        raise VoxfaceError(f"{folder / NONECK_FILE} lacks the keys {sorted(missing)}")
    u = np.asarray(data["u"], dtype=np.float32).reshape(-1)
    tri_file = _first_file(folder, TRIANGLE_FILES_38365)
    triangles = np.asarray(load_array_pickle(tri_file, "3DDFA triangle file"), dtype=np.int64)
    triangles = triangles.T if triangles.shape[0] == 3 else triangles
    subset = _load_npy(_first_file(folder, (NONECK_INDEX_FILE,))).astype(np.int64)
    if len(subset) != u.size // 3:
        raise VoxfaceError(
            f"{folder / NONECK_INDEX_FILE} lists {len(subset)} vertices, the model has {u.size // 3}")
    measurements = _pairs_in_subset(u.reshape(-1, 3), subset)
    landmarks = np.asarray(data["keypoints"], dtype=np.int64).reshape(-1)[::3] // 3
    return _standardised_model("bfm-noneck", folder, u, data["w_shp"], data["w_exp"], triangles,
                               landmarks, measurements)


def _standardised_model(name, folder, u, w_shp, w_exp, triangles, landmarks, measurements) -> MorphableModel:
    """Assemble a 3DDFA model whose coefficients are the whitened parameters (module docstring)."""
    statistics = None
    if w_shp is not None or w_exp is not None:
        statistics = _parameter_statistics(_first_file(folder, STATS_FILES, why="to standardise the 3DDFA basis"))
    return whitened_model(name, u, w_shp, w_exp, statistics, triangles, landmarks, measurements,
                          source=str(folder))


def whitened_model(name: str, u: np.ndarray, w_shp: np.ndarray | None, w_exp: np.ndarray | None,
                   statistics: tuple[np.ndarray, np.ndarray] | None, triangles: np.ndarray, landmarks: np.ndarray,
                   measurements: dict[str, tuple[int, int]], source: str) -> MorphableModel:
    """A 3DDFA-layout model whose standardised coefficients are the whitened parameters.

    Args:
        name: the model's name (``"bfm"`` for the 53,215-vertex topology).
        u: (3V,) or (3V, 1) mean, flat xyz per vertex.
        w_shp, w_exp: (3V, >=40) and (3V, >=10) bases of the parameters alpha, or None.
        statistics: ``(param_mean, param_std)``, each (>=62,): pose 12, shape 40, expression 10 first.
        triangles: (F, 3) 0-based; re-wound to face +z if needed.
        landmarks: (68,) vertex indices.
        measurements: CMP's pairs in this topology.
        source: provenance for ``meta``.

    Returns:
        MorphableModel with ``mean = u + w_shp @ mean_shp + w_exp @ mean_exp``, bases ``w`` and stds
        ``param_std`` (module docstring), micrometres.
    """
    n_vertices = u.size // 3
    mean = np.asarray(u, dtype=np.float64).reshape(-1)
    bases = {}
    if w_shp is not None or w_exp is not None:
        param_mean, param_std = statistics
        ranges = {"shape": (N_POSE, N_SHAPE), "expression": (N_POSE + N_SHAPE, N_EXPRESSION)}
        for kind, basis in (("shape", w_shp), ("expression", w_exp)):
            if basis is None:
                continue
            start, count = ranges[kind]
            basis = np.asarray(basis, dtype=np.float64).reshape(3 * n_vertices, -1)[:, :count]
            k = basis.shape[1]
            mean = mean + basis @ param_mean[start:start + k]
            bases[kind] = (basis.astype(np.float32), param_std[start:start + k].astype(np.float32))
    mean = mean.astype(np.float32).reshape(-1, 3)
    shape_basis, shape_std = bases.get("shape", (np.zeros((3 * n_vertices, 0), np.float32),
                                                 np.zeros(0, np.float32)))
    expression_basis, expression_std = bases.get("expression", (None, None))
    return MorphableModel(
        name=name,
        mean=mean,
        shape_basis=shape_basis,
        shape_std=shape_std,
        triangles=_facing_camera(mean, triangles).astype(np.int32),
        landmarks68=landmarks,
        measurements=measurements,
        regions=regions_from_landmarks(mean, landmarks),
        expression_basis=expression_basis,
        expression_std=expression_std,
        units="um",
        meta={"source": source, "coefficients": "z = (alpha - param_mean) / param_std",
              "citation": "Zhu et al., CVPR 2016 (3DDFA); Paysan et al., AVSS 2009 (BFM)"},
    )


def _parameter_statistics(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(62,) float64 mean and std of 3DDFA's parameter vector from either statistics pickle."""
    stats = load_array_pickle(path, "3DDFA parameter statistics")
    for mean_key, std_key in (("mean", "std"), ("param_mean", "param_std")):
        if mean_key in stats and std_key in stats:
            mean = np.asarray(stats[mean_key], dtype=np.float64).ravel()
            std = np.asarray(stats[std_key], dtype=np.float64).ravel()
            if mean.shape == std.shape == (N_POSE + N_SHAPE + N_EXPRESSION,):
                return mean, std
    raise VoxfaceError(f"{path} does not hold the 62-d 3DDFA parameter mean and std")


def _pairs_in_subset(vertices: np.ndarray, subset: np.ndarray) -> dict[str, tuple[int, int]]:
    """CMP's pairs re-indexed into a vertex subset; a missing vertex -> mirror of its partner."""
    position = {int(v): i for i, v in enumerate(subset)}
    pairs = {}
    for name, pair in CMP_MEASUREMENTS.items():
        kept = [position.get(v) for v in pair]
        if kept[0] is None and kept[1] is None:
            raise VoxfaceError(f"neither vertex of the {name} pair {pair} is in the no-neck subset")
        for side in (0, 1):
            if kept[side] is None:
                mirror = vertices[kept[1 - side]] * np.array([-1.0, 1.0, 1.0])
                kept[side] = int(np.argmin(np.linalg.norm(vertices - mirror, axis=1)))
                log.info("%s vertex %d is not in the no-neck subset; using the mirror vertex %d",
                         name, pair[side], kept[side])
        pairs[name] = (kept[0], kept[1])
    return pairs


# --------------------------------------------------------------------------------- BFM 2009
def _topology_folder(mat_path: Path, topology: str | Path | None) -> Path:
    needed = ("u_shp.npy", "keypoints_sim.npy")
    candidates = [Path(topology).expanduser()] if topology is not None else [
        mat_path.parent, shared_data_dir() / "bfm_topology"]
    for folder in candidates:
        if all((folder / f).is_file() for f in needed):
            return folder
    raise VoxfaceError(
        f"BFM 2009 needs the 3DDFA topology files {needed} to place its landmarks and measurement "
        f"vertices; none found in {[str(c) for c in candidates]}. Put them beside {mat_path.name} "
        "(they come with 3DDFA / SynergyNet) or pass topology=FOLDER")


def _vertices_by_position(mean: np.ndarray, sub_mean: np.ndarray, path: Path, topology: Path) -> np.ndarray:
    """(len(sub_mean),) int64: the vertex of ``mean`` (V, 3) at each position of ``sub_mean``."""
    gap, index = cKDTree(mean).query(sub_mean)
    if gap.max() > MATCH_TOLERANCE:
        raise VoxfaceError(
            f"the 3DDFA mean in {topology} is not part of the BFM 2009 mean in {path} (a vertex is "
            f"{gap.max():.1f} um from the nearest one); use the u_shp.npy that comes with 3DDFA")
    return index.astype(np.int64)


# --------------------------------------------------------------------------------- file helpers
def _read_mat(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named arrays of a MATLAB v5/v7 file; clear errors for missing files, v7.3 and missing keys."""
    if not path.is_file():
        raise VoxfaceError(f"MATLAB file not found: {path}")
    try:
        data = scipy.io.loadmat(path, variable_names=list(keys))
    except NotImplementedError as exc:  # scipy raises this for v7.3 (HDF5) files
        raise VoxfaceError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which voxface does not read; re-save it in MATLAB "
            "with save(..., '-v7') or in Octave with save -mat7-binary") from exc
    except Exception as exc:  # scipy raises ValueError, IndexError, ... on a file that is not a .mat
        raise VoxfaceError(f"cannot read {path} as a MATLAB file: {exc}") from exc
    missing = [k for k in keys if k not in data]
    if missing:
        raise VoxfaceError(f"{path} lacks the variables {missing}")
    return {k: data[k] for k in keys}


def read_triangles_mat(path: Path) -> np.ndarray:
    """(F, 3) int64 0-based triangles of 3DDFA's ``tri.mat`` / ``tri_53215.mat`` (1-based ``tri``, (3, F))."""
    triangles = _read_mat(path, ("tri",))["tri"].astype(np.int64) - 1
    return triangles.T if triangles.shape[0] == 3 else triangles


def keypoint_vertices(path: Path) -> np.ndarray:
    """(68,) int64 landmark vertices from 3DDFA's flat xyz indices (204,): ``[::3] // 3``."""
    flat = _load_npy(path).astype(np.int64).reshape(-1)
    if flat.shape != (204,):
        raise VoxfaceError(f"{path} has {flat.size} entries, expected 204 (68 landmarks x xyz)")
    return flat[::3] // 3


def _load_npy(path: Path) -> np.ndarray:
    return load_array(path, "3DDFA file")


def _optional_npy(folder: Path, names: tuple[str, ...]) -> np.ndarray | None:
    for name in names:
        if (folder / name).is_file():
            return load_array(folder / name, "3DDFA file")
    return None


def _first_file(folder: Path, names: tuple[str, ...], why: str = "") -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise VoxfaceError(f"none of {list(names)} found in {folder}" + (f" ({why})" if why else ""))


def _facing_camera(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(F, 3) triangles, reversed if their area-weighted normals point away from +z on the whole."""
    a, b, c = (vertices[triangles[:, k]].astype(np.float64) for k in range(3))
    if np.cross(b - a, c - a)[:, 2].sum() < 0:
        return triangles[:, ::-1].copy()
    return triangles
