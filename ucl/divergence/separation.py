"""How well repeated measurements tell two cases apart: effect size and rejection rate.

A divergence measured on seeded repeats of two cases (say real-vs-real and real-vs-GAN)
separates them by its standardised mean difference, not by the ratio of its means: a
ratio to a baseline near zero (or below it, as unbiased estimators go) means nothing.
A test separates them by how often it rejects in each case.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def effect_size(base: Sequence[float], other: Sequence[float], confidence: float = 0.95):
    """(d, low, high): Cohen's d of ``other`` against ``base`` with a confidence interval.

    d = (mean other - mean base) / pooled sd, the pooled sd from both groups' sample
    variances (ddof 1). The interval is d -+ z sqrt((n1 + n2) / (n1 n2) + d^2 / (2 (n1 +
    n2))), the large-sample standard error of d (Hedges & Olkin 1985). Both
    groups need at least 2 finite values; a zero pooled sd gives +-inf (or nan for equal
    means).
    """
    a, b = np.asarray(base, dtype=float), np.asarray(other, dtype=float)
    if len(a) < 2 or len(b) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.nan, math.nan, math.nan
    n1, n2 = len(a), len(b)
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    diff = float(b.mean() - a.mean())
    if pooled == 0:
        d = math.copysign(math.inf, diff) if diff else math.nan
        return d, d, d
    d = diff / pooled
    se = math.sqrt((n1 + n2) / (n1 * n2) + d * d / (2 * (n1 + n2)))
    from scipy import stats  # here: importing scipy.stats costs most of a second

    z = stats.norm.ppf(0.5 + confidence / 2)
    return d, d - z * se, d + z * se


def rejection_rate(p_values: Sequence[float], alpha: float = 0.05, confidence: float = 0.95):
    """(rate, low, high): the fraction of p-values <= alpha, with its exact (Clopper-Pearson)
    confidence interval. Under the null it estimates the false-positive rate, which a
    calibrated test keeps at alpha; under an alternative, the test's power."""
    p = np.asarray(p_values, dtype=float)
    if len(p) == 0:
        return math.nan, math.nan, math.nan
    k = int(np.sum(p <= alpha))
    from scipy import stats

    ci = stats.binomtest(k, len(p)).proportion_ci(confidence, method="exact")
    return k / len(p), float(ci.low), float(ci.high)
