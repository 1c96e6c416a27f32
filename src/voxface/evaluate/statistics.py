"""How sure a reported number is: bootstrap intervals over identities, paired tests, seed aggregates.

The unit of resampling is the **identity** (the paper averages an identity's utterances first, then
identities), so every function takes one value per identity, in the same identity order for paired
comparisons. scipy computes the resampling (``scipy.stats.bootstrap``, ``permutation_test``,
``ttest_rel``); this module fixes the choices:

- intervals: 95%, percentile bootstrap with 10,000 resamples and a fixed seed (reproducible);
- a method against a baseline on the same identities: the paired sign-flip (permutation) test of
  the mean per-identity difference, two-sided, exact when 2^N <= the resamples;
- a method over seeds: mean ± sd and the t interval; two methods over the same seeds: the paired t
  test and the exact sign-flip test of the per-seed differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 10_000
ALPHA = 0.05
SEED = 0


@dataclass(frozen=True)
class Interval:
    """A point estimate with its ``confidence`` interval [low, high]."""

    estimate: float
    low: float
    high: float
    confidence: float = CONFIDENCE

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "confidence": self.confidence}


def bootstrap_mean(values: np.ndarray, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                   seed: int = SEED) -> Interval:
    """Percentile bootstrap interval of the mean of (N,) per-identity values (N >= 2)."""
    values = _finite_1d(values, "values")
    result = stats.bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=resamples,
                             method="percentile", rng=np.random.default_rng(seed))
    return Interval(float(values.mean()), *_bounds(result, values.mean()), confidence)


def bootstrap_gain(method: np.ndarray, baseline: np.ndarray, confidence: float = CONFIDENCE,
                   resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """Interval of the relative change ``mean(method) / mean(baseline) − 1`` (the paper's gain),
    resampling identities jointly: (N,) and (N,) values of the same identities."""
    method, baseline = _paired(method, baseline)
    estimate = method.mean() / baseline.mean() - 1.0

    def gain(m, b, axis=-1):
        return m.mean(axis=axis) / b.mean(axis=axis) - 1.0

    result = stats.bootstrap((method, baseline), gain, paired=True, vectorized=True, confidence_level=confidence,
                             n_resamples=resamples, method="percentile", rng=np.random.default_rng(seed))
    return Interval(float(estimate), *_bounds(result, estimate), confidence)


def sign_flip_test(method: np.ndarray, baseline: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> float:
    """Two-sided p-value of the paired sign-flip test: are the per-identity differences
    ``method − baseline`` (N,) symmetric about 0? Exact when ``2**N <= resamples``."""
    method, baseline = _paired(method, baseline)
    difference = method - baseline
    if not np.any(difference):
        return 1.0
    result = stats.permutation_test((difference,), np.mean, permutation_type="samples", vectorized=True,
                                    n_resamples=resamples, alternative="two-sided", rng=np.random.default_rng(seed))
    return float(result.pvalue)


def paired_comparison(method: np.ndarray, baseline: np.ndarray, alpha: float = ALPHA) -> dict:
    """Everything a report says about one method against one baseline on the same identities:
    the gain with its interval, the sign-flip p-value and whether it is significant at ``alpha``."""
    p = sign_flip_test(method, baseline)
    return {"gain": bootstrap_gain(method, baseline).as_dict(), "p_value": p, "significant": bool(p < alpha),
            "alpha": alpha, "test": "paired sign-flip (permutation) test of the per-identity mean difference"}


def method_statistics(per_identity: dict[str, np.ndarray], baselines: list[str], alpha: float = ALPHA) -> dict:
    """For a report: each method's mean with its interval, and each method against each baseline.

    Args:
        per_identity: method -> (N,) per-identity values of one metric (lower is better, e.g. ARE),
            identities in the same order for every method.
        baselines: names in ``per_identity`` to compare every other method with (oracles, cascades).

    Returns:
        method -> {"mean": interval dict, "vs": {baseline: :func:`paired_comparison`}}.
    """
    present = [b for b in baselines if b in per_identity]
    return {name: {"mean": bootstrap_mean(values).as_dict(),
                   "vs": {b: paired_comparison(values, per_identity[b], alpha) for b in present if b != name}}
            for name, values in per_identity.items()}


def aggregate_seeds(values: np.ndarray, confidence: float = CONFIDENCE) -> dict:
    """(S,) results of S seeds -> mean, sd (ddof 1), and the t interval of the mean."""
    values = _finite_1d(values, "values")
    mean, sd, n = float(values.mean()), float(values.std(ddof=1)), len(values)
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci": Interval(mean, mean - half, mean + half, confidence).as_dict(),
            "values": values.tolist()}


def compare_seeds(a: np.ndarray, b: np.ndarray, alpha: float = ALPHA) -> dict:
    """Two methods over the same S seeds (``a[s]``, ``b[s]`` from seed s): the mean difference a − b
    with its t interval, the paired t test and the exact sign-flip test."""
    a, b = _paired(a, b)
    difference = aggregate_seeds(a - b)
    t_p = float(stats.ttest_rel(a, b).pvalue) if np.any(a != b) else 1.0
    flip_p = sign_flip_test(a, b)
    return {"difference": difference, "paired_t_p": t_p, "sign_flip_p": flip_p,
            "significant": bool(t_p < alpha), "alpha": alpha}


def _bounds(result, estimate: float) -> tuple[float, float]:
    low, high = result.confidence_interval
    if not (np.isfinite(low) and np.isfinite(high)):  # every resample equal (constant data)
        return float(estimate), float(estimate)
    return float(low), float(high)


def _finite_1d(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if len(values) < 2 or not np.isfinite(values).all():
        raise ValueError(f"{name} must hold at least 2 finite numbers, got {values.tolist()[:5]}")
    return values


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _finite_1d(a, "method"), _finite_1d(b, "baseline")
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {len(a)} and {len(b)}")
    return a, b
