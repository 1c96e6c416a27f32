"""Line- and point-based geometric metrics of the CMP paper, and prediction coherence.

All functions are pure functions of vertex arrays in one shared topology (vertex ``k`` of a
prediction corresponds to vertex ``k`` of its reference). Lengths are in the meshes' own units.

- ARE (paper Sec. 4, Fig. 5, Table 1): ratios of four vertex-pair distances to the outer-interocular
  distance (OICD), compared between prediction and reference.
- NME (supplement Sec. E, Table S-2): landmark error over a face-size normaliser, in two conventions.
- Coherence (paper Fig. 10, Sec. A2): how much one speaker's predictions vary across utterances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import numpy as np

from ..errors import VoxfaceError
from ..face3d.morphable_model import RATIOS

NORMALISER = "OICD"
"""The measurement every ratio is divided by (outer-interocular distance, paper Fig. 5 EF)."""

_PAIRWISE_CHUNK_ELEMENTS = 1 << 24
"""Upper bound on the float elements of one temporary block in the pairwise mesh distances."""


# ------------------------------------------------------------------------------------ distances
def measurement_distances(
    vertices: np.ndarray, measurements: Mapping[str, tuple[int, int]]
) -> dict[str, np.ndarray]:
    """Euclidean distance between the two vertices of each named pair.

    Args:
        vertices: (..., V, 3) meshes.
        measurements: name -> (i, j) vertex indices, e.g. ``MorphableModel.measurements``.

    Returns:
        name -> (...) float64 distances, in the meshes' units.
    """
    vertices = _as_vertices(vertices, "vertices")
    n_vertices = vertices.shape[-2]
    out = {}
    for name, (i, j) in measurements.items():
        if not (0 <= i < n_vertices and 0 <= j < n_vertices):
            raise VoxfaceError(
                f"measurement {name!r} uses vertices ({i}, {j}) but the meshes have {n_vertices} "
                "vertices; pass the measurement pairs of the morphable model that made them")
        diff = vertices[..., i, :].astype(np.float64) - vertices[..., j, :]
        out[name] = np.linalg.norm(diff, axis=-1)
    return out


def measurement_ratios(
    vertices: np.ndarray, measurements: Mapping[str, tuple[int, int]]
) -> dict[str, np.ndarray]:
    """The four ARE ratios ER, FR, MR, CR: each pair's distance divided by the OICD distance.

    Args:
        vertices: (..., V, 3) meshes.
        measurements: must name ``"OICD"`` and each of ``RATIOS`` (``MorphableModel.measurements``).

    Returns:
        name -> (...) float64 dimensionless ratios, keys in ``RATIOS`` order (ER, FR, MR, CR).
        Invariant to uniform scaling and rigid motion of the meshes.
    """
    missing = [m for m in (NORMALISER, *RATIOS) if m not in measurements]
    if missing:
        raise VoxfaceError(
            f"measurements lack {missing}; ARE needs the vertex pairs {(NORMALISER, *RATIOS)} "
            "(use MorphableModel.measurements)")
    distances = measurement_distances(vertices, {m: measurements[m] for m in (NORMALISER, *RATIOS)})
    oicd = distances[NORMALISER]
    if np.any(oicd <= 0):
        raise VoxfaceError("a mesh has a zero outer-interocular (OICD) distance; its vertices are degenerate")
    return {name: distances[name] / oicd for name in RATIOS}


def scale_to_reference_oicd(
    pred: np.ndarray, ref: np.ndarray, oicd_pair: tuple[int, int]
) -> np.ndarray:
    """Scale predictions about the coordinate origin so that their OICD equals the reference's.

    This is the normalisation of CMP's evaluation (the vertices are multiplied by
    ``OICD_ref / OICD_pred``); no translation or rotation is applied.

    Args:
        pred: (..., V, 3) predicted meshes.
        ref: (..., V, 3) reference meshes, broadcastable against ``pred``.
        oicd_pair: (i, j) vertex indices of the outer eye corners.

    Returns:
        (..., V, 3) float64 scaled predictions.
    """
    pred = _as_vertices(pred, "pred").astype(np.float64)
    ref = _as_vertices(ref, "ref")
    pair = {NORMALISER: tuple(oicd_pair)}
    oicd_pred = measurement_distances(pred, pair)[NORMALISER]
    oicd_ref = measurement_distances(ref, pair)[NORMALISER]
    if np.any(oicd_pred <= 0):
        raise VoxfaceError("a predicted mesh has a zero OICD distance and cannot be scaled")
    return pred * (oicd_ref / oicd_pred)[..., None, None]


# ------------------------------------------------------------------------------------ ARE
@dataclass(frozen=True)
class AREResult:
    """Absolute ratio errors of a test set (paper Table 1).

    Attributes:
        per_ratio: ratio name -> mean ARE over identities, in ``RATIOS`` order (ER, FR, MR, CR).
        mean: mean of the four per-ratio AREs (Table 1 "Mean").
        per_identity: (N, 4) float64 ARE of each identity, columns in ``RATIOS`` order, each the
            mean over that identity's predictions.
    """

    per_ratio: dict[str, float]
    mean: float
    per_identity: np.ndarray

    def as_dict(self) -> dict[str, float]:
        """{"ER": ..., "FR": ..., "MR": ..., "CR": ..., "mean": ...} for a metrics file."""
        return {**self.per_ratio, "mean": self.mean}


def absolute_ratio_error(
    pred: np.ndarray | Sequence[np.ndarray],
    ref: np.ndarray,
    measurements: Mapping[str, tuple[int, int]],
) -> AREResult:
    """Absolute ratio error (ARE) of predicted meshes against one reference per identity.

    CMP's procedure: scale each prediction so its OICD equals the reference's, take the four
    ratios (distance / OICD), and the error ``|ratio_pred - ratio_ref|`` per ratio; average over
    an identity's predictions (utterances), then over identities. The ratios are invariant to
    uniform scaling, so the OICD scaling does not change the result and is not performed here.

    Args:
        pred: (N, U, V, 3) predictions, U per identity, or a sequence of N arrays (U_i, V, 3)
            when identities have different numbers of utterances.
        ref: (N, V, 3) reference mesh of each identity.
        measurements: vertex pairs naming ``"OICD"`` and ``RATIOS``.

    Returns:
        An :class:`AREResult` (dimensionless errors).
    """
    ref = _as_vertices(ref, "ref")
    if ref.ndim != 3:
        raise VoxfaceError(f"ref must have shape (N, V, 3), got {ref.shape}")
    per_identity_preds = list(pred)
    if len(per_identity_preds) != ref.shape[0]:
        raise VoxfaceError(
            f"pred holds {len(per_identity_preds)} identities but ref holds {ref.shape[0]}; "
            "give one reference mesh per identity, in the same order")
    ref_ratios = _stack_ratios(measurement_ratios(ref, measurements))  # (N, 4)
    per_identity = np.empty((ref.shape[0], len(RATIOS)))
    for n, preds in enumerate(per_identity_preds):
        preds = _as_vertices(preds, f"pred[{n}]")
        if preds.ndim != 3 or preds.shape[0] == 0 or preds.shape[1:] != ref.shape[1:]:
            raise VoxfaceError(
                f"pred[{n}] has shape {preds.shape}; expected (U >= 1, {ref.shape[1]}, 3)")
        pred_ratios = _stack_ratios(measurement_ratios(preds, measurements))  # (U, 4)
        per_identity[n] = np.abs(pred_ratios - ref_ratios[n]).mean(axis=0)
    per_ratio = per_identity.mean(axis=0)
    return AREResult(
        per_ratio={name: float(v) for name, v in zip(RATIOS, per_ratio)},
        mean=float(per_ratio.mean()),
        per_identity=per_identity,
    )


def gain(value: float | np.ndarray, baseline: float | np.ndarray) -> float | np.ndarray:
    """Relative change of a mean error against a baseline's: ``(value - baseline) / baseline``.

    Paper Table 1 convention: a *negative* gain is an improvement (lower error). Its "Gain" row
    reads 0% for the baseline Base-2 (0.0302) and -20.2% for CMP-supervised (0.0241):
    ``gain(0.0241, 0.0302) = -0.202``. Returned as a fraction; multiply by 100 for percent.

    Args:
        value: mean error (e.g. mean ARE) of the method, scalar or array.
        baseline: mean error of the baseline, same units, non-zero.

    Returns:
        Dimensionless fraction(s), same shape as the broadcast inputs.
    """
    baseline = np.asarray(baseline, dtype=np.float64)
    if np.any(baseline == 0):
        raise VoxfaceError("gain needs a non-zero baseline error")
    result = (np.asarray(value, dtype=np.float64) - baseline) / baseline
    return float(result) if result.ndim == 0 else result


# ------------------------------------------------------------------------------------ NME
def nme(
    pred: np.ndarray,
    ref: np.ndarray,
    landmarks68: np.ndarray,
    oicd_pair: tuple[int, int],
    convention: Literal["cmp", "per_point"] = "cmp",
    box: Literal["mesh", "landmarks"] = "mesh",
) -> np.ndarray:
    """Normalised mean error of the 68 landmark vertices (supplement Table S-2).

    The prediction is first scaled about the origin to the reference's OICD
    (:func:`scale_to_reference_oicd`); there is NO rigid alignment. The normaliser is the face
    size ``sqrt(width * height)`` of the reference's x/y bounding box.

    Conventions (a table must say which one it holds):

    - ``"cmp"``: CMP's evaluation script, ``||pred_lm - ref_lm||_2`` of the flattened
      204-vector (68 x 3) over the normaliser. It equals ``sqrt(68)`` times the landmarks' RMS
      error over the normaliser, so it is about 8x the per-point value; Table S-2 (0.27-0.30)
      holds this convention.
    - ``"per_point"``: the usual NME, the mean over the 68 landmarks of their Euclidean distance,
      over the same normaliser.

    Args:
        pred: (..., V, 3) predicted meshes.
        ref: (..., V, 3) reference meshes, broadcastable against ``pred``.
        landmarks68: (68,) vertex index of each landmark (``MorphableModel.landmarks68``).
        oicd_pair: (i, j) vertex indices of the outer eye corners.
        convention: ``"cmp"`` or ``"per_point"``, see above.
        box: which reference points span the bounding box: ``"mesh"`` (all V vertices, as CMP's
            script does) or ``"landmarks"`` (the 68 landmarks, the usual 2D-alignment choice).

    Returns:
        (...) float64 dimensionless errors.
    """
    if convention not in ("cmp", "per_point"):
        raise VoxfaceError(f"unknown NME convention {convention!r}; use 'cmp' or 'per_point'")
    if box not in ("mesh", "landmarks"):
        raise VoxfaceError(f"unknown NME box {box!r}; use 'mesh' or 'landmarks'")
    landmarks68 = np.asarray(landmarks68, dtype=np.int64)
    ref = _as_vertices(ref, "ref").astype(np.float64)
    if landmarks68.ndim != 1 or np.any(landmarks68 < 0) or np.any(landmarks68 >= ref.shape[-2]):
        raise VoxfaceError(
            f"landmarks68 must be a 1-D array of vertex indices below {ref.shape[-2]}; "
            "use the landmark indices of the morphable model that made the meshes")
    scaled = scale_to_reference_oicd(pred, ref, oicd_pair)
    ref_lm = ref[..., landmarks68, :]
    diff = scaled[..., landmarks68, :] - ref_lm  # (..., L, 3)
    box_points = ref if box == "mesh" else ref_lm
    extent = box_points[..., :2].max(axis=-2) - box_points[..., :2].min(axis=-2)  # (..., 2)
    face_size = np.sqrt(extent[..., 0] * extent[..., 1])
    if np.any(face_size <= 0):
        raise VoxfaceError("a reference mesh has a flat x/y bounding box; NME is undefined")
    per_point = np.linalg.norm(diff, axis=-1)  # (..., L)
    if convention == "cmp":
        error = np.sqrt(np.sum(per_point**2, axis=-1))
    else:
        error = per_point.mean(axis=-1)
    return error / face_size


# ------------------------------------------------------------------------------------ coherence
def coherence(preds: np.ndarray) -> tuple[float, float]:
    """Variation of one speaker's predictions across utterances (paper Fig. 10).

    Per-vertex Euclidean distance of each prediction to the centre prediction (the vertex-wise
    mean of the U predictions); mean and standard deviation over all utterances and vertices.

    Args:
        preds: (U, V, 3) predictions of one speaker from U utterances.

    Returns:
        (mean, std) in the meshes' units; (0, 0) for identical predictions.
    """
    preds = _as_vertices(preds, "preds").astype(np.float64)
    if preds.ndim != 3 or preds.shape[0] == 0:
        raise VoxfaceError(f"preds must have shape (U >= 1, V, 3), got {preds.shape}")
    distances = np.linalg.norm(preds - preds.mean(axis=0), axis=-1)  # (U, V)
    return float(distances.mean()), float(distances.std())


def within_between_distances(preds: np.ndarray) -> tuple[float, float]:
    """Mean vertex distance between predictions of the same speaker and of different speakers.

    The distance of two meshes is the mean over vertices of the Euclidean distance between
    corresponding vertices. ``within`` averages it over all pairs of different utterances of the
    same speaker, ``between`` over all pairs of predictions of different speakers. A model that
    hears identity in the voice has ``within`` well below ``between``. Cost O((N U)^2 V).

    Args:
        preds: (N, U, V, 3) predictions, U utterances for each of N speakers; N >= 2, U >= 2.

    Returns:
        (within, between) in the meshes' units.
    """
    preds = _as_vertices(preds, "preds")
    if preds.ndim != 4 or preds.shape[0] < 2 or preds.shape[1] < 2:
        raise VoxfaceError(
            f"preds must have shape (N >= 2 speakers, U >= 2 utterances, V, 3), got {preds.shape}")
    n, u = preds.shape[:2]
    distances = _pairwise_mean_vertex_distance(preds.reshape(n * u, *preds.shape[2:]))
    speaker = np.repeat(np.arange(n), u)
    same = speaker[:, None] == speaker[None, :]
    upper = np.triu(np.ones((n * u, n * u), dtype=bool), k=1)
    return float(distances[same & upper].mean()), float(distances[~same & upper].mean())


# ------------------------------------------------------------------------------------ helpers
def _pairwise_mean_vertex_distance(meshes: np.ndarray) -> np.ndarray:
    """(M, V, 3) meshes -> (M, M) float64 mean corresponding-vertex distance (upper triangle filled)."""
    m, v = meshes.shape[:2]
    out = np.zeros((m, m))
    chunk = max(1, _PAIRWISE_CHUNK_ELEMENTS // (3 * v))
    for i in range(m - 1):
        for start in range(i + 1, m, chunk):
            block = meshes[start:start + chunk] - meshes[i]
            out[i, start:start + len(block)] = np.linalg.norm(block, axis=-1).mean(axis=-1, dtype=np.float64)
    return out


def _stack_ratios(ratios: dict[str, np.ndarray]) -> np.ndarray:
    """name -> (...) ratios -> (..., 4) in ``RATIOS`` order."""
    return np.stack([ratios[name] for name in RATIOS], axis=-1)


def _as_vertices(vertices, what: str) -> np.ndarray:
    array = np.asarray(vertices)
    if array.ndim < 2 or array.shape[-1] != 3:
        raise VoxfaceError(f"{what} must be vertices of shape (..., V, 3), got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array
