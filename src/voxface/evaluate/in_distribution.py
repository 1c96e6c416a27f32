"""How unlike a model's training voices a voice is: a Gaussian reference calibrated out of fold.

A predictor stores a :class:`VoiceReference` of the voices it was trained on: the mean and the
(Ledoit–Wolf shrunk) precision of a per-utterance descriptor (for the CMP encoder, the mean and
standard deviation over time of its first block's 256 channels; for Resemblyzer, its embedding),
and the squared Mahalanobis distances of training voices to a reference fitted *without their own
identity* (k-fold over identities). A new voice's **in-distribution score** is the share of those
out-of-fold distances at least as large as its own: about uniform on [0, 1] for a new voice of the
same population, near 0 for a voice unlike any of them. Below :data:`WARN_BELOW` the product warns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WARN_BELOW = 0.01
"""Scores below this (a voice farther than 99% of held-out training voices) are flagged."""
FOLDS = 5


@dataclass(frozen=True)
class VoiceReference:
    """What the training voices looked like, and how far held-out ones fell.

    Attributes:
        descriptor: name of the per-utterance descriptor (``"cmp-first-block"``, ``"embedding"``).
        mean: (D,) float64 mean descriptor.
        precision: (D, D) float64 inverse of the shrunk covariance.
        calibration: (M,) float64 sorted out-of-fold squared Mahalanobis distances of training voices.
        source: what the voices were (for messages and reports).
    """

    descriptor: str
    mean: np.ndarray
    precision: np.ndarray
    calibration: np.ndarray
    source: str

    @classmethod
    def fit(cls, descriptors: np.ndarray, groups: np.ndarray, descriptor: str, source: str,
            folds: int = FOLDS) -> "VoiceReference":
        """Fit on (N, D) descriptors of N utterances whose identities are ``groups`` (N,).

        Each identity's distances are measured to a reference fitted on the other folds' identities,
        so the calibration says how far voices of *new* speakers fall. Needs at least 2 identities.
        """
        descriptors = np.asarray(descriptors, dtype=np.float64)
        _, group_index = np.unique(groups, return_inverse=True)
        n_groups = group_index.max() + 1
        if n_groups < 2:
            raise ValueError("a voice reference needs utterances of at least 2 identities")
        fold = group_index % min(folds, n_groups)
        out_of_fold = np.empty(len(descriptors))
        for k in np.unique(fold):
            mean, precision = _shrunk_gaussian(descriptors[fold != k])
            out_of_fold[fold == k] = _squared_distance(descriptors[fold == k], mean, precision)
        mean, precision = _shrunk_gaussian(descriptors)
        return cls(descriptor, mean, precision, np.sort(out_of_fold), source)

    def distances(self, descriptors: np.ndarray) -> np.ndarray:
        """(B, D) -> (B,) squared Mahalanobis distances to the training voices."""
        return _squared_distance(np.asarray(descriptors, dtype=np.float64), self.mean, self.precision)

    def scores(self, descriptors: np.ndarray) -> np.ndarray:
        """(B, D) -> (B,) in-distribution scores in [0, 1]: the share of held-out training voices at
        least as far away (0: farther than all of them)."""
        d = self.distances(descriptors)
        beyond = len(self.calibration) - np.searchsorted(self.calibration, d, side="left")
        return beyond / len(self.calibration)

    def to_saved(self) -> dict:
        """Plain values and float64 arrays (loadable with ``torch.load(weights_only=True)`` as tensors)."""
        import torch

        return {"descriptor": self.descriptor, "source": self.source,
                **{k: torch.from_numpy(np.ascontiguousarray(getattr(self, k))) for k in ("mean", "precision",
                                                                                        "calibration")}}

    @classmethod
    def from_saved(cls, saved: dict | None) -> "VoiceReference | None":
        if saved is None:
            return None
        arrays = {k: np.asarray(saved[k], dtype=np.float64) for k in ("mean", "precision", "calibration")}
        return cls(saved["descriptor"], source=saved["source"], **arrays)


def in_distribution_report(scores: np.ndarray) -> dict:
    """Summary of (N,) in-distribution scores: quantiles and the share flagged (for ``evaluate``)."""
    scores = np.asarray(scores, dtype=np.float64)
    return {"n": int(len(scores)), "median": float(np.median(scores)),
            "quantiles": {str(q): float(np.quantile(scores, q)) for q in (0.01, 0.05, 0.25, 0.75)},
            "flagged_share": float(np.mean(scores < WARN_BELOW)), "warn_below": WARN_BELOW}


def _shrunk_gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) -> mean (D,) and precision (D, D) of the Ledoit–Wolf covariance."""
    from sklearn.covariance import LedoitWolf

    fit = LedoitWolf().fit(x)
    return fit.location_, fit.precision_


def _squared_distance(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    centred = x - mean
    return np.einsum("ij,jk,ik->i", centred, precision, centred)
