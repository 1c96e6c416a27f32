"""The preference test of CMP Fig. 12: is a method preferred in more than half of the votes?

For k votes for the method out of n, H0: p ≤ 0.5 against H1: p > 0.5; the one-sided p-value is
P(X ≥ k) for X ~ Binomial(n, 0.5), and the critical count at level α is the smallest k with
P(X ≥ k) ≤ α (the paper: n = 1,540, α = 0.001).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import VoxfaceError


def binomial_upper_tail(k: int, n: int, p: float = 0.5) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p), summed in log space (exact to float precision for n ≤ 10⁶)."""
    _check_counts(k, n)
    if k <= 0:
        return 1.0
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                 + (i * math.log(p) if i else 0.0) + ((n - i) * math.log1p(-p) if n - i else 0.0)
                 for i in range(k, n + 1)]
    top = max(log_terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in log_terms))


def critical_count(n: int, level: float = 0.001, p: float = 0.5) -> int:
    """Smallest k with P(X ≥ k) ≤ ``level`` (n + 1 when even k = n is not significant)."""
    if not 0 < level < 1:
        raise VoxfaceError(f"significance level must be in (0, 1), got {level}")
    lo, hi = 0, n + 1  # the tail is decreasing in k: binary search
    while lo < hi:
        mid = (lo + hi) // 2
        if mid <= n and binomial_upper_tail(mid, n, p) <= level:
            hi = mid
        else:
            lo = mid + 1
    return lo


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
