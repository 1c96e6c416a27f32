"""Identity checking with face embeddings: threshold search, Table I accuracy, 1:2 matching, retrieval.

Distances are Euclidean (L2) between face embeddings (dlib's descriptors are about unit length;
dlib suggests 0.6 as the same-person threshold). A pair is called "same identity" when its
distance is below τ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial.distance import cdist

from ..errors import VoxfaceError


def pair_distances(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All N(N−1)/2 pairs of embeddings.

    Args:
        embeddings: (N, D) float.
        labels: (N,) identity of each embedding.

    Returns:
        distances (P,) float64 L2 distances and same (P,) bool, for pairs i < j in row-major order.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if e.ndim != 2 or len(e) != len(labels) or len(e) < 2:
        raise VoxfaceError(f"need (N >= 2, D) embeddings with N labels, got {e.shape} and {labels.shape}")
    i, j = np.triu_indices(len(e), k=1)
    return np.linalg.norm(e[i] - e[j], axis=1), labels[i] == labels[j]


def threshold_sweep(distances: np.ndarray, same: np.ndarray, taus: np.ndarray) -> dict[str, np.ndarray]:
    """Verification scores of "same identity iff distance < τ" at each τ.

    The true- and false-positive counts come from ``sklearn.metrics.roc_curve`` on the scores −distance
    (one pass over the sorted pairs, O(P) memory; no τ × pairs table): at τ they are those of the
    lowest ROC threshold above −τ, i.e. of the pairs with distance < τ.

    Returns:
        ``{"tau", "accuracy", "balanced_accuracy", "f1", "tpr", "tnr"}``, each (T,) float64:
        accuracy over all pairs, the mean of the true-positive and true-negative rates, and F1 of the
        "same" class.
    """
    from sklearn.metrics import roc_curve

    d = np.asarray(distances, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    n_pos, n_neg = int(same.sum()), int((~same).sum())
    if n_pos == 0 or n_neg == 0:
        raise VoxfaceError(f"threshold search needs same- and different-identity pairs, got {n_pos} and {n_neg}")
    taus = np.asarray(taus, dtype=np.float64)
    fpr, tpr_curve, thresholds = roc_curve(same, -d, drop_intermediate=False)
    # thresholds fall from +inf; point i accepts the pairs with distance <= -thresholds[i]
    point = np.searchsorted(-thresholds, taus, side="left") - 1
    tp = np.rint(tpr_curve[point] * n_pos).astype(np.int64)
    fp = np.rint(fpr[point] * n_neg).astype(np.int64)
    tn = n_neg - fp
    tpr, tnr = tp / n_pos, tn / n_neg
    f1_denominator = np.maximum(2 * tp + fp + (n_pos - tp), 1)
    return {"tau": taus, "accuracy": (tp + tn) / (n_pos + n_neg), "balanced_accuracy": (tpr + tnr) / 2,
            "f1": 2 * tp / f1_denominator, "tpr": tpr, "tnr": tnr}


@dataclass
class Calibration:
    """The grid-searched threshold and its scores on the calibration pairs."""

    tau: float
    criterion: str
    accuracy: float
    balanced_accuracy: float
    f1: float
    tau_best_raw_accuracy: float
    best_raw_accuracy: float
    n_same_pairs: int
    n_different_pairs: int

    def to_dict(self) -> dict:
        return asdict(self)


def calibrate_threshold(distances: np.ndarray, same: np.ndarray, criterion: str = "balanced_accuracy",
                        taus: np.ndarray | None = None) -> tuple[Calibration, dict[str, np.ndarray]]:
    """Grid search of τ maximising ``criterion`` ("balanced_accuracy" or "accuracy").

    Raw accuracy over all pairs is what the paper maximises, but with many identities different-
    identity pairs dominate (ORL: 78,000 of 79,800), so it rewards rejecting almost everything;
    the balanced accuracy weighs both kinds of pair equally. Both are reported.

    Args:
        taus: the grid (default 0.00, 0.01, ..., 2.00); ties go to the smallest τ.

    Returns:
        (calibration, the sweep of :func:`threshold_sweep` for plotting).
    """
    if criterion not in ("balanced_accuracy", "accuracy"):
        raise VoxfaceError(f"unknown threshold criterion {criterion!r}; use balanced_accuracy or accuracy")
    taus = np.round(np.arange(0.0, 2.0 + 1e-9, 0.01), 2) if taus is None else np.asarray(taus, dtype=np.float64)
    sweep = threshold_sweep(distances, same, taus)
    best = int(np.argmax(sweep[criterion]))
    raw = int(np.argmax(sweep["accuracy"]))
    same = np.asarray(same, dtype=bool)
    calibration = Calibration(
        tau=float(taus[best]), criterion=criterion, accuracy=float(sweep["accuracy"][best]),
        balanced_accuracy=float(sweep["balanced_accuracy"][best]), f1=float(sweep["f1"][best]),
        tau_best_raw_accuracy=float(taus[raw]), best_raw_accuracy=float(sweep["accuracy"][raw]),
        n_same_pairs=int(same.sum()), n_different_pairs=int((~same).sum()))
    return calibration, sweep


def distances_to_identities(queries: np.ndarray, gallery: np.ndarray, gallery_labels: np.ndarray,
                            identities: list) -> np.ndarray:
    """Mean L2 distance from each query to the gallery embeddings of each identity.

    Args:
        queries: (Q, D) embeddings (e.g. of generated faces).
        gallery: (G, D) embeddings of real faces; gallery_labels (G,) their identities.
        identities: the K identities (columns), each present in ``gallery_labels``.

    Returns:
        (Q, K) float64.
    """
    q = np.asarray(queries, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    gallery_labels = np.asarray(gallery_labels)
    d = cdist(q, g)
    columns = []
    for ident in identities:
        rows = gallery_labels == ident
        if not rows.any():
            raise VoxfaceError(f"identity {ident!r} has no real face embedding in the gallery")
        columns.append(d[:, rows].mean(axis=1))
    return np.stack(columns, axis=1)


def identity_hits(queries: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray, gallery_labels: np.ndarray,
                  tau: float) -> dict[str, np.ndarray]:
    """Per generated face, how many real faces it is "the same person" as (L2 < τ).

    Args:
        queries: (Q, D) embeddings of generated faces; query_labels (Q,) the voice's true identity.
        gallery: (G, D) embeddings of real faces; gallery_labels (G,).

    Returns:
        ``own_hits`` / ``own_pairs``: (Q,) pairs with real faces of the voice's identity closer than τ,
        and how many such pairs; ``other_hits`` / ``other_pairs``: the same with every other identity's
        real faces (what a face that says nothing about the voice would score).
    """
    q = np.asarray(queries, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    query_labels, gallery_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    missing = sorted(set(query_labels.tolist()) - set(gallery_labels.tolist()))
    if missing:
        raise VoxfaceError(f"identity {missing[0]!r} has no real face embedding in the gallery")
    close = cdist(q, g) < tau
    own = query_labels[:, None] == gallery_labels[None, :]
    return {"own_hits": (close & own).sum(axis=1), "own_pairs": own.sum(axis=1),
            "other_hits": (close & ~own).sum(axis=1), "other_pairs": (~own).sum(axis=1)}


def identity_accuracy(queries: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                      gallery_labels: np.ndarray, tau: float) -> float:
    """Paper Table I: the share of (generated face, real face of the voice's identity) pairs closer than τ,
    over all such pairs (shapes as :func:`identity_hits`)."""
    hits = identity_hits(queries, query_labels, gallery, gallery_labels, tau)
    return float(hits["own_hits"].sum() / hits["own_pairs"].sum())


def same_identity_rate(embeddings: np.ndarray, labels: np.ndarray, tau: float) -> float:
    """The share of same-identity pairs (i < j) of ``embeddings`` (N, D) closer than τ: with real faces,
    the identity accuracy a perfect generator could reach against them (Table I's ceiling at τ);
    NaN when no identity has two embeddings."""
    distances, same = pair_distances(embeddings, labels)
    return float(np.mean(distances[same] < tau)) if same.any() else float("nan")


def matching_1v2_per_query(identity_distances: np.ndarray, true_column: np.ndarray,
                           genders: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """1:2 matching (Wen et al. 2019) per query: is the true identity closer than another one?

    Every query is compared with every other identity (with the same gender only when ``genders``
    is given: the gender-stratified figure); ties count half.

    Args:
        identity_distances: (Q, K) from :func:`distances_to_identities`.
        true_column: (Q,) int column of each query's true identity.
        genders: (K,) gender of each identity, or None for the unstratified figure.

    Returns:
        (Q,) won trials (ties counted half) and (Q,) trials of each query.
    """
    d = np.asarray(identity_distances, dtype=np.float64)
    true_column = np.asarray(true_column, dtype=int)
    rows = np.arange(len(d))
    others = np.ones(d.shape, dtype=bool)
    others[rows, true_column] = False
    if genders is not None:
        genders = np.asarray(genders)
        others &= genders[None, :] == genders[true_column][:, None]
    diff = d - d[rows, true_column][:, None]
    won = np.where(others, (diff > 0) + 0.5 * (diff == 0), 0.0)
    return won.sum(axis=1), others.sum(axis=1)


def matching_1v2(identity_distances: np.ndarray, true_column: np.ndarray, genders: np.ndarray | None = None) -> float:
    """1:2 matching accuracy in [0, 1] over all (query, other identity) trials (see
    :func:`matching_1v2_per_query`); NaN when there is no trial."""
    won, trials = matching_1v2_per_query(identity_distances, true_column, genders)
    return float(won.sum() / trials.sum()) if trials.sum() else float("nan")


def true_identity_rank(identity_distances: np.ndarray, true_column: np.ndarray) -> np.ndarray:
    """(Q,) rank of each query's true identity among the K identities by distance (1 = nearest).

    Ties are broken against the true identity (it ranks after every identity at the same distance).
    """
    d = np.asarray(identity_distances, dtype=np.float64)
    true_column = np.asarray(true_column, dtype=int)
    own = d[np.arange(len(d)), true_column]
    return (d <= own[:, None]).sum(axis=1)  # counts the true identity itself


def recall_at_k(identity_distances: np.ndarray, true_column: np.ndarray, ks=(1, 5, 10)) -> dict[int, float]:
    """Retrieval: the share of queries whose true identity is among the k nearest identities
    (:func:`true_identity_rank` <= k)."""
    rank = true_identity_rank(identity_distances, true_column)
    return {int(k): float(np.mean(rank <= k)) for k in ks}
