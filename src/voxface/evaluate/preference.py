"""The preference test of CMP Fig. 12: is a method preferred in more than half of the votes?

For k votes for the method out of n, H0: p ≤ 0.5 against H1: p > 0.5; the one-sided p-value is
P(X ≥ k) for X ~ Binomial(n, 0.5), and the critical count at level α is the smallest k with
P(X ≥ k) ≤ α (the paper: n = 1,540, α = 0.001).
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import binom, binomtest

from ..errors import VoxfaceError


def binomial_upper_tail(k: int, n: int, p: float = 0.5) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p): the one-sided p-value of ``scipy.stats.binomtest``."""
    _check_counts(k, n)
    return float(binomtest(k, n, p, alternative="greater").pvalue)


def critical_count(n: int, level: float = 0.001, p: float = 0.5) -> int:
    """Smallest k with P(X ≥ k) ≤ ``level`` (n + 1 when even k = n is not significant).

    ``binom.isf(level)`` is the smallest x with P(X > x) ≤ level, so k = x + 1; the neighbours are
    checked against the exact tail, so rounding in the inverse cannot move the answer.
    """
    if not 0 < level < 1:
        raise VoxfaceError(f"significance level must be in (0, 1), got {level}")
    k = int(binom.isf(level, n, p)) + 1
    while k > 0 and binom.sf(k - 2, n, p) <= level:
        k -= 1
    while k <= n and binom.sf(k - 1, n, p) > level:
        k += 1
    return k


@dataclass(frozen=True)
class PreferenceResult:
    votes: int
    total: int
    share: float
    p_value: float
    critical_count: int
    level: float
    significant: bool


def preference_test(votes: int, total: int, level: float = 0.001) -> PreferenceResult:
    """One-sided binomial test of ``votes`` preferences out of ``total`` against chance (p = 0.5)."""
    _check_counts(votes, total)
    p_value = binomial_upper_tail(votes, total)
    critical = critical_count(total, level)
    return PreferenceResult(votes, total, votes / total, p_value, critical, level, p_value <= level)


def _check_counts(k: int, n: int) -> None:
    if n <= 0 or not 0 <= k <= n:
        raise VoxfaceError(f"vote counts must satisfy 0 <= votes <= total and total > 0, got {k} of {n}")
