"""A predictive distribution over a face, and how to check it against the truth.

:class:`CoefficientDistribution` is a Gaussian over standardised shape coefficients with a
low-rank-plus-diagonal covariance ``diag(d) + F Fᵀ`` — what a Gaussian head predicts (F empty for a
diagonal head) and what a deep ensemble's mixture is moment-matched to. From it:

- meshes: samples, the per-vertex standard deviation (closed form, the model is linear), and the
  ARE ratios' intervals (from samples, the ratios are not linear);
- checks against the true coefficients and ratios of test identities: coverage of central
  intervals (:func:`coverage`), the reliability curve (:func:`reliability`), the Gaussian negative
  log-likelihood (:func:`gaussian_nll`) next to the oracles' Gaussians (:func:`population_gaussian`);
- what the voice tells: the share of the population variance a prediction removes
  (:func:`explained_variance`), as the distribution claims it (its variance) and as its mean
  achieves it (its squared error on the test identities).
All functions are pure and batched over leading dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..face3d.morphable_model import RATIOS, MorphableModel
from .geometry import measurement_ratios

LEVELS = (0.5, 0.9)
"""Central interval levels whose coverage every report states."""
RELIABILITY_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass(frozen=True)
class CoefficientDistribution:
    """N(mean, diag(variance) + factor factorᵀ) over standardised coefficients, batched.

    Attributes:
        mean: (..., K).
        variance: (..., K) diagonal part, > 0.
        factor: (..., K, R) low-rank part (R may be 0).
    """

    mean: np.ndarray
    variance: np.ndarray
    factor: np.ndarray

    @classmethod
    def diagonal(cls, mean: np.ndarray, variance: np.ndarray) -> "CoefficientDistribution":
        mean = np.asarray(mean, dtype=np.float64)
        return cls(mean, np.asarray(variance, dtype=np.float64), np.zeros((*mean.shape, 0)))

    def __getitem__(self, index) -> "CoefficientDistribution":
        return CoefficientDistribution(self.mean[index], self.variance[index], self.factor[index])

    @property
    def marginal_variance(self) -> np.ndarray:
        """(..., K) diagonal of the covariance."""
        return self.variance + np.square(self.factor).sum(-1)

    def covariance(self) -> np.ndarray:
        """(..., K, K) full covariance."""
        return _diag(self.variance) + self.factor @ np.swapaxes(self.factor, -1, -2)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, ..., K) samples."""
        noise = rng.standard_normal((n, *self.mean.shape))
        low_rank = rng.standard_normal((n, *self.factor.shape[:-2], self.factor.shape[-1]))
        return self.mean + np.sqrt(self.variance) * noise + np.einsum("...kr,n...r->n...k", self.factor, low_rank)

    @classmethod
    def mixture(cls, members: list["CoefficientDistribution"]) -> "CoefficientDistribution":
        """The Gaussian with the mean and covariance of an equal-weight mixture (a deep ensemble):
        mean of the means; covariance = mean of the covariances + covariance of the means, kept
        low-rank + diagonal (the members' factors and centred means, each divided by √M)."""
        m = len(members)
        mean = np.mean([d.mean for d in members], axis=0)
        factors = [d.factor / np.sqrt(m) for d in members] + [(d.mean - mean)[..., None] / np.sqrt(m) for d in members]
        return cls(mean, np.mean([d.variance for d in members], axis=0), np.concatenate(factors, axis=-1))


def vertex_std(model: MorphableModel, distribution: CoefficientDistribution) -> np.ndarray:
    """(..., V) standard deviation of each vertex's position, in the model's units: the square root
    of the trace of its 3×3 covariance under the (linear) model."""
    k = distribution.mean.shape[-1]
    scaled = model.shape_basis[:, :k].astype(np.float64) * model.shape_std[:k]      # (3V, K)
    diagonal = np.einsum("vk,...k->...v", np.square(scaled), distribution.variance)   # (..., 3V)
    low_rank = np.square(np.einsum("vk,...kr->...vr", scaled, distribution.factor)).sum(-1)
    per_coordinate = (diagonal + low_rank).reshape(*diagonal.shape[:-1], model.n_vertices, 3)
    return np.sqrt(per_coordinate.sum(-1))


def ratio_samples(model: MorphableModel, coefficients: np.ndarray) -> np.ndarray:
    """(..., K) coefficients -> (..., 4) ARE ratios (ER, FR, MR, CR), reconstructing only the
    measurement vertices."""
    vertices = sorted({v for pair in model.measurements.values() for v in pair})
    k = coefficients.shape[-1]
    rows = np.array([[3 * v + c for c in range(3)] for v in vertices]).ravel()
    basis = model.shape_basis[rows, :k].astype(np.float64) * model.shape_std[:k]
    points = model.mean[vertices].astype(np.float64) + (coefficients @ basis.T).reshape(
        *coefficients.shape[:-1], len(vertices), 3)
    local = {name: (vertices.index(i), vertices.index(j)) for name, (i, j) in model.measurements.items()}
    ratios = measurement_ratios(points, local)
    return np.stack([ratios[r] for r in RATIOS], axis=-1)


def ratio_intervals(model: MorphableModel, distribution: CoefficientDistribution, level: float = 0.9,
                    n_samples: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    """Median and central ``level`` interval of each ratio: ``median``/``low``/``high`` (..., 4)."""
    samples = ratio_samples(model, distribution.sample(n_samples, np.random.default_rng(seed)))
    tail = (1 - level) / 2
    low, median, high = np.quantile(samples, [tail, 0.5, 1 - tail], axis=0)
    return {"median": median, "low": low, "high": high}


# ------------------------------------------------------------------------------- checks
def coverage(truth: np.ndarray, samples_or_distribution, level: float) -> float:
    """Share of true values inside the predicted central ``level`` interval.

    Args:
        truth: (..., K) true values.
        samples_or_distribution: a :class:`CoefficientDistribution` with (..., K) marginals
            (Gaussian intervals), or (S, ..., K) samples (empirical quantiles).
        level: e.g. 0.5 or 0.9.
    """
    if isinstance(samples_or_distribution, CoefficientDistribution):
        d = samples_or_distribution
        z = np.abs(truth - d.mean) / np.sqrt(d.marginal_variance)
        return float(np.mean(z <= stats.norm.ppf(0.5 + level / 2)))
    tail = (1 - level) / 2
    low, high = np.quantile(samples_or_distribution, [tail, 1 - tail], axis=0)
    return float(np.mean((truth >= low) & (truth <= high)))


def reliability(truth: np.ndarray, samples_or_distribution, levels=RELIABILITY_LEVELS) -> dict[str, list[float]]:
    """Nominal level -> observed coverage, for the reliability diagram."""
    return {"nominal": list(levels), "observed": [coverage(truth, samples_or_distribution, q) for q in levels]}


def gaussian_nll(truth: np.ndarray, distribution: CoefficientDistribution) -> np.ndarray:
    """(...,) negative log-likelihood of (..., K) true coefficients (nats), full covariance."""
    covariance = distribution.covariance()
    centred = truth - distribution.mean
    sign, logdet = np.linalg.slogdet(covariance)
    mahalanobis = np.einsum("...k,...k->...", centred, np.linalg.solve(covariance, centred[..., None])[..., 0])
    k = truth.shape[-1]
    return 0.5 * (k * np.log(2 * np.pi) + logdet + mahalanobis)


def population_gaussian(shapes: np.ndarray, groups: np.ndarray | None = None,
                        query_groups: np.ndarray | None = None) -> CoefficientDistribution:
    """An oracle's Gaussian from training identities' (N, K) coefficients: the whole population's
    mean and covariance (the mean-face prior), or, with ``groups`` (N,) and ``query_groups`` (M,), each
    query's group mean and the pooled within-group covariance (the gender oracle). Returns a batch
    of M (or 1) distributions with a full-rank factor (eigen-decomposed covariance)."""
    shapes = np.asarray(shapes, dtype=np.float64)
    if groups is None:
        means = shapes.mean(0, keepdims=True)
        residual = shapes - means
    else:
        labels = sorted(set(groups))
        group_mean = {g: shapes[groups == g].mean(0) for g in labels}
        residual = shapes - np.stack([group_mean[g] for g in groups])
        means = np.stack([group_mean[g] for g in query_groups])
    covariance = residual.T @ residual / (len(shapes) - (1 if groups is None else len(set(groups))))
    values, vectors = np.linalg.eigh(covariance)
    floor = 1e-9 * max(values.max(), 1e-12)
    factor = vectors * np.sqrt(np.clip(values, 0, None))
    k = shapes.shape[1]
    return CoefficientDistribution(means, np.full((len(means), k), floor), np.broadcast_to(factor, (len(means), k, k)))


def explained_variance(prior_variance: np.ndarray, posterior_variance: np.ndarray) -> np.ndarray:
    """1 − posterior / prior, elementwise: the share of the population's variance a prediction removes."""
    return 1.0 - np.asarray(posterior_variance, dtype=np.float64) / np.asarray(prior_variance, dtype=np.float64)


def explained_by_group(model: MorphableModel, prior_ratio: np.ndarray, ratio: np.ndarray, prior_vertex: np.ndarray,
               vertex: np.ndarray) -> dict:
    """1 − variance / population variance per ratio (4,), per region and over the face (vertices (V,))."""
    return {"ratios": dict(zip(RATIOS, explained_variance(prior_ratio, ratio).tolist())),
            "regions": {name: float(explained_variance(prior_vertex[ix].mean(), vertex[ix].mean()))
                        for name, ix in model.regions.items()},
            "whole_face": float(explained_variance(prior_vertex.mean(), vertex.mean()))}


def _diag(values: np.ndarray) -> np.ndarray:
    out = np.zeros((*values.shape, values.shape[-1]))
    idx = np.arange(values.shape[-1])
    out[..., idx, idx] = values
    return out


# ------------------------------------------------------------------------------- a report
def calibration_report(model: MorphableModel, predicted: CoefficientDistribution, truth: np.ndarray,
                       train_shapes: np.ndarray, train_genders: np.ndarray, query_genders: np.ndarray,
                       floor_variance: np.ndarray | None = None, n_samples: int = 400, seed: int = 0) -> dict:
    """Everything ``evaluate`` says about a predictive distribution on the test voices.

    Args:
        model: the morphable model of the coefficients.
        predicted: a batch of B predictions (one per test utterance), (B, K) marginals.
        truth: (B, K) the true coefficients of each utterance's identity.
        train_shapes, train_genders: (M, K) and (M,) of the training identities (the oracles' Gaussians
            and the population's prior variances).
        query_genders: (B,) gender of each prediction's identity.
        floor_variance: (K,) the smallest variance a perfect listener could have (synthetic corpora).

    Returns:
        coverage and reliability (coefficients, ratios), NLL against the oracles' Gaussians, the
        variance against the floor, and the explained variance per ratio and region.
    """
    rng = np.random.default_rng(seed)
    true_ratios = ratio_samples(model, truth)                                    # (B, 4)
    sampled = ratio_samples(model, predicted.sample(n_samples, rng))             # (S, B, 4)
    population = ratio_samples(model, np.asarray(train_shapes, dtype=np.float64))
    prior = population_gaussian(train_shapes)
    oracles = {"gender oracle": population_gaussian(train_shapes, np.asarray(train_genders), np.asarray(query_genders)),
               "mean-face prior": CoefficientDistribution(np.repeat(prior.mean, len(truth), 0),
                                                          np.repeat(prior.variance, len(truth), 0),
                                                          np.repeat(prior.factor, len(truth), 0))}
    prior_vertex = vertex_std(model, prior)[0] ** 2
    posterior_vertex = (vertex_std(model, predicted) ** 2).mean(0)
    error_vertex = np.square(model.reconstruct(predicted.mean.astype(np.float32))
                             - model.reconstruct(truth.astype(np.float32))).sum(-1).mean(0)
    error_ratios = np.square(ratio_samples(model, predicted.mean) - true_ratios).mean(0)
    report = {
        "coverage": {"coefficients": {str(q): coverage(truth, predicted, q) for q in LEVELS},
                     "ratios": {str(q): coverage(true_ratios, sampled, q) for q in LEVELS}},
        "reliability": {"coefficients": reliability(truth, predicted), "ratios": reliability(true_ratios, sampled)},
        "nll": {"predictive": float(gaussian_nll(truth, predicted).mean()),
                **{name: float(gaussian_nll(truth, d).mean()) for name, d in oracles.items()}},
        "predicted_variance": predicted.marginal_variance.mean(0).tolist(),
        "explained_variance": {
            "claimed": explained_by_group(model, population.var(0), sampled.var(0).mean(0), prior_vertex, posterior_vertex),
            "achieved": explained_by_group(model, population.var(0), error_ratios, prior_vertex, error_vertex)},
        "mean_vertex_std": float(np.sqrt(posterior_vertex).mean()), "units": model.units,
        "n_predictions": int(len(truth)), "ratio_samples": n_samples,
    }
    if floor_variance is not None:
        below = predicted.marginal_variance.mean(0) < floor_variance
        report["floor"] = {"variance": np.asarray(floor_variance).tolist(),
                           "overconfident_components": np.flatnonzero(below).tolist(),
                           "share_overconfident": float(below.mean())}
    return report
