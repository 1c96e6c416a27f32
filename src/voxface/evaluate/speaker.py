"""Speaker-verification metrics: equal error rate of scores and of embeddings."""

from __future__ import annotations

import numpy as np

from ..errors import VoxfaceError


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Equal error rate of verification trials, exact on the ROC and interpolated at the crossing.

    A trial is accepted when its score is at or above the threshold. The ROC points are taken at
    every distinct score (plus "accept nothing"); the false-acceptance and false-rejection rates are
    linearly interpolated between the two neighbouring points where FRR - FAR changes sign.

    Args:
        scores: (M,) similarity scores (higher = more likely the same speaker).
        labels: (M,) bool, True for target (same-speaker) trials.

    Returns:
        (eer, threshold): the error rate in [0, 1] where FAR = FRR, and the score threshold there
        (interpolated between the two neighbouring distinct scores).
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(bool)
    if scores.shape != labels.shape:
        raise VoxfaceError(f"scores {scores.shape} and labels {labels.shape} must have the same length")
    if not np.all(np.isfinite(scores)):
        raise VoxfaceError("scores contain NaN or inf")
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise VoxfaceError(f"EER needs target and non-target trials, got {n_pos} and {n_neg}")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_value = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]  # ties accepted together
    thresholds = sorted_scores[last_of_value]
    far = np.r_[0.0, np.cumsum(~sorted_labels)[last_of_value] / n_neg]
    frr = np.r_[1.0, 1.0 - np.cumsum(sorted_labels)[last_of_value] / n_pos]
    gap = frr - far  # 1 at "accept nothing", -1 at "accept all"; non-increasing
    i = int(np.argmax(gap <= 0.0))  # first point at or past the crossing (i >= 1)
    t = gap[i - 1] / (gap[i - 1] - gap[i])
    eer = far[i - 1] + t * (far[i] - far[i - 1])
    if i == 1:
        threshold = thresholds[0]
    else:
        threshold = thresholds[i - 2] + t * (thresholds[i - 1] - thresholds[i - 2])
    return float(eer), float(threshold)


def verification_eer(embeddings: np.ndarray, speaker_ids: np.ndarray) -> float:
    """EER over all pairs of utterances scored by cosine similarity.

    Args:
        embeddings: (N, D) utterance embeddings (any norm).
        speaker_ids: (N,) speaker label of each utterance (any hashable dtype).

    Returns:
        The equal error rate in [0, 1] over the N (N - 1) / 2 pairs.
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    ids = np.asarray(speaker_ids).reshape(-1)
    if emb.ndim != 2 or emb.shape[0] != ids.shape[0]:
        raise VoxfaceError(f"embeddings {emb.shape} must be (N, D) with N = len(speaker_ids) = {ids.shape[0]}")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(emb)):
        raise VoxfaceError("embeddings must be finite and non-zero")
    unit = emb / norms
    rows, cols = np.triu_indices(emb.shape[0], k=1)
    scores = np.einsum("pd,pd->p", unit[rows], unit[cols])
    return equal_error_rate(scores, ids[rows] == ids[cols])[0]
