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

import warnings
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
    low: float | None  # None: unbounded (see _bounds)
    high: float | None
    confidence: float = CONFIDENCE

    def as_dict(self) -> dict[str, float | None]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "confidence": self.confidence}


def bootstrap_mean(values: np.ndarray, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                   seed: int = SEED) -> Interval:
    """Percentile bootstrap interval of the mean of (N,) per-identity values (N >= 2)."""
    values = _finite_1d(values, "values")
    with warnings.catch_warnings():  # constant values: scipy warns and gives NaN, which _bounds handles
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
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
        b_mean = b.mean(axis=axis)
        with np.errstate(divide="ignore", invalid="ignore"):  # a resample whose baseline mean is 0: unbounded
            return np.where(b_mean > 0, m.mean(axis=axis) / b_mean - 1.0, np.inf)

    with warnings.catch_warnings(), np.errstate(invalid="ignore"):  # the standard error of unbounded resamples
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
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
    gain = bootstrap_gain(method, baseline).as_dict() if np.mean(baseline) > 0 else None  # undefined on a zero mean
    return {"gain": gain, "p_value": p, "significant": bool(p < alpha),
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


def per_identity_ratio(numerator: np.ndarray, denominator: np.ndarray, labels: np.ndarray,
                       identities: list) -> np.ndarray:
    """Pool per-query counts into one value per identity: ``sum(numerator) / sum(denominator)`` over
    each identity's queries (e.g. won trials / trials); NaN where an identity has nothing to pool.

    Args:
        numerator, denominator: (Q,) per query; labels (Q,) each query's identity.
        identities: the K identities, in the order of the result.

    Returns:
        (K,) float64.
    """
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    labels = np.asarray(labels)
    totals = np.array([[numerator[labels == i].sum(), denominator[labels == i].sum()] for i in identities])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals[:, 1] > 0, totals[:, 0] / totals[:, 1], np.nan)


def gain_texts(gain: dict | None) -> tuple[str, str]:
    """A :func:`paired_comparison` gain as percent texts for reports: ("-19.3%", "[-28.7%, -8.8%]").
    An unbounded side of the interval is ∞; a comparison with a zero baseline has no gain ("—")."""
    if gain is None:
        return "—", "(baseline 0)"
    low, high = (f"{100 * b:+.1f}%" if b is not None else infinite
                 for b, infinite in ((gain["low"], "−∞"), (gain["high"], "+∞")))
    return f"{100 * gain['estimate']:+.1f}%", f"[{low}, {high}]"


def metric_statistics(values: np.ndarray, baselines: dict[str, np.ndarray | float], alpha: float = ALPHA) -> dict | None:
    """One metric's mean over identities with its interval, and the metric against each baseline.

    Args:
        values: (K,) per-identity values (NaN where an identity has none: it is left out of every
            figure, with the baselines' values for it).
        baselines: name -> (K,) per-identity values of the same identities, or one number (chance).

    Returns:
        {"identities": n, "mean": interval dict, "vs": {name: :func:`paired_comparison`}}, or None when
        fewer than two identities have a value.
    """
    values = np.asarray(values, dtype=np.float64)
    paired = {name: np.broadcast_to(np.asarray(b, dtype=np.float64), values.shape) for name, b in baselines.items()}
    keep = np.isfinite(values)
    for b in paired.values():
        keep &= np.isfinite(b)
    if keep.sum() < 2:
        return None
    return {"identities": int(keep.sum()), "mean": bootstrap_mean(values[keep]).as_dict(),
            "vs": {name: paired_comparison(values[keep], b[keep], alpha) for name, b in paired.items()}}


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


def _bounds(result, estimate: float) -> tuple[float | None, float | None]:
    """The interval's bounds; the estimate for both when every resample was equal (scipy gives NaN),
    None for a bound that is infinite (a ratio whose denominator vanished in some resamples)."""
    low, high = result.confidence_interval
    if np.isnan(low) and np.isnan(high):
        return float(estimate), float(estimate)
    return tuple(float(b) if np.isfinite(b) else None for b in (low, high))


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
