"""Statistics over seeds: the mean, a Student-t confidence interval,
and Welch's t-test.

Plain functions on lists of floats; scipy.stats does the distributions. With fewer than two
values no spread and no interval exist: those come back as None, never as a made-up zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LEVEL = 0.95  # confidence level of the intervals
ALPHA = 0.05  # significance level of "worse than the best"


@dataclass(frozen=True)
class Aggregate:
    n: int
    mean: float | None
    std: float | None  # sample standard deviation (ddof=1); None for n < 2
    half_width: float | None  # of the Student-t interval at LEVEL; None for n < 2

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width


def aggregate(values: Sequence[float], level: float = LEVEL) -> Aggregate:
    """n, mean, sample standard deviation and the t-interval's half-width of `values`."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return Aggregate(0, None, None, None)
    mean = math.fsum(xs) / n
    if n < 2:
        return Aggregate(1, mean, None, None)
    from scipy import stats as _scipy  # here: scipy.stats costs seconds to import

    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = _scipy.t.ppf((1 + level) / 2, n - 1) * std / math.sqrt(n)
    return Aggregate(n, mean, std, float(half))


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances) that the means of a and b
    are equal; None when either has fewer than two values. Two samples with no spread at
    all give 1.0 when equal and 0.0 when not."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = aggregate(a), aggregate(b)
    if va.std == 0 and vb.std == 0:
        return 1.0 if va.mean == vb.mean else 0.0
    from scipy import stats as _scipy

    return float(_scipy.ttest_ind(list(a), list(b), equal_var=False).pvalue)


def within_noise(best: Sequence[float], other: Sequence[float], alpha: float = ALPHA) -> bool:
    """True when Welch's test cannot tell `other`'s mean from `best`'s at level alpha (and
    so `other` is not significantly worse); False when it can, or when either side has
    fewer than two values (no test is possible)."""
    p = welch_p(best, other)
    return p is not None and p >= alpha
