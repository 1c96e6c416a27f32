"""A predicted face against the population it was trained on: ratio ranges, face type, gender.

Fitted on the training identities' reference faces and stored in the predictor, a
:class:`FacePopulation` tells a user where a predicted face lies: each ARE ratio's population range
(5th–95th percentile), the **face type** it resembles (k-means clusters of the standardised ratios,
named by their two most distinctive ratios, as the CMP release's microphone demo names a type), and the
**gender** the shape resembles (logistic regression on the coefficients). With a predictive
distribution, each answer comes with how sure the model is: the share of sampled faces of that type,
the mean probability of "male" over samples, and the ratios' intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..face3d.morphable_model import RATIOS, MorphableModel
from .uncertainty import CoefficientDistribution, ratio_samples

N_TYPES = 4
RANGE = (0.05, 0.95)
RATIO_WORDS = {"ER": ("narrow ears", "wide ears"), "FR": ("narrow forehead", "wide forehead"),
               "MR": ("short midface", "long midface"), "CR": ("narrow cheeks", "wide cheeks")}
"""How a type whose centroid is below / above the population mean in a ratio is described."""


@dataclass(frozen=True)
class FacePopulation:
    """Ratio statistics, face types and a gender classifier of a training population.

    Attributes:
        ratio_mean, ratio_std: (4,) of ER, FR, MR, CR over the training faces.
        ratio_range: (2, 4) the 5th and 95th percentiles.
        centroids: (T, 4) face-type centres in standardised ratios.
        type_names: (T,) names of the types.
        gender_weights: (K + 1,) logistic regression, last entry the intercept; P(m) = σ(w·z + b).
    """

    ratio_mean: np.ndarray
    ratio_std: np.ndarray
    ratio_range: np.ndarray
    centroids: np.ndarray
    type_names: tuple[str, ...]
    gender_weights: np.ndarray

    @classmethod
    def fit(cls, model: MorphableModel, shapes: np.ndarray, genders: np.ndarray, n_types: int = N_TYPES,
            seed: int = 0) -> "FacePopulation":
        """From (N, K) training shapes and their (N,) genders "m"/"f"."""
        from sklearn.cluster import KMeans
        from sklearn.linear_model import LogisticRegression

        ratios = ratio_samples(model, np.asarray(shapes, dtype=np.float64))
        mean, std = ratios.mean(0), ratios.std(0)
        standardised = (ratios - mean) / std
        centroids = KMeans(n_types, n_init=10, random_state=seed).fit(standardised).cluster_centers_
        classifier = LogisticRegression(C=1.0, max_iter=1000).fit(shapes, np.asarray(genders) == "m")
        return cls(mean, std, np.quantile(ratios, RANGE, axis=0), centroids, _type_names(centroids),
                   np.r_[classifier.coef_[0], classifier.intercept_])

    def describe(self, model: MorphableModel, distribution: CoefficientDistribution, level: float = 0.9,
                 n_samples: int = 400, seed: int = 0) -> dict:
        """Where one predicted face (a distribution with (K,) marginals; a point has zero variance)
        lies in the population: ratios with intervals and ranges, type and gender with their shares."""
        samples = distribution.sample(n_samples, np.random.default_rng(seed))        # (S, K)
        ratios = ratio_samples(model, samples)                                        # (S, 4)
        tail = (1 - level) / 2
        low, median, high = np.quantile(ratios, [tail, 0.5, 1 - tail], axis=0)
        types = self.face_type(ratios)
        share = np.bincount(types, minlength=len(self.type_names)) / len(types)
        male = self.male_probability(samples)
        return {
            "ratios": {r: {"median": float(median[i]), "interval": [float(low[i]), float(high[i])],
                           "population": [float(self.ratio_range[0, i]), float(self.ratio_range[1, i])]}
                       for i, r in enumerate(RATIOS)},
            "interval_level": level,
            "face_type": {"name": self.type_names[int(share.argmax())], "share_of_samples": float(share.max()),
                          "all": dict(zip(self.type_names, share.round(4).tolist()))},
            "gender": {"resembles": "male" if male.mean() >= 0.5 else "female",
                       "probability": float(max(male.mean(), 1 - male.mean()))},
        }

    def face_type(self, ratios: np.ndarray) -> np.ndarray:
        """(..., 4) ratios -> (...,) index of the nearest type centre (standardised ratios)."""
        standardised = (ratios - self.ratio_mean) / self.ratio_std
        return np.argmin(np.linalg.norm(standardised[..., None, :] - self.centroids, axis=-1), axis=-1)

    def male_probability(self, shapes: np.ndarray) -> np.ndarray:
        """(..., K) -> (...,) P(male) of the gender classifier."""
        k = len(self.gender_weights) - 1
        return 1.0 / (1.0 + np.exp(-(shapes[..., :k] @ self.gender_weights[:k] + self.gender_weights[k])))

    def to_saved(self) -> dict:
        return {"ratio_mean": self.ratio_mean.tolist(), "ratio_std": self.ratio_std.tolist(),
                "ratio_range": self.ratio_range.tolist(), "centroids": self.centroids.tolist(),
                "type_names": list(self.type_names), "gender_weights": self.gender_weights.tolist()}

    @classmethod
    def from_saved(cls, saved: dict | None) -> "FacePopulation | None":
        if saved is None:
            return None
        arrays = {k: np.asarray(saved[k], dtype=np.float64)
                  for k in ("ratio_mean", "ratio_std", "ratio_range", "centroids", "gender_weights")}
        return cls(type_names=tuple(saved["type_names"]), **arrays)


def _type_names(centroids: np.ndarray) -> tuple[str, ...]:
    """Each centre named by its two largest standardised deviations ("wide cheeks, short midface")."""
    names = []
    for k, centre in enumerate(centroids):
        order = np.argsort(-np.abs(centre))[:2]
        name = ", ".join(RATIO_WORDS[RATIOS[i]][int(centre[i] > 0)] for i in order)
        names.append(name if name not in names else f"{name} ({k + 1})")
    return tuple(names)
