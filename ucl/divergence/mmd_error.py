"""The unbiased MMD^2 estimate with its standard error, from one kernel matrix.

Sutherland et al., "Generative models and model criticism via optimized maximum mean
discrepancy" (ICLR 2017), eq. 5 and appendix A, give an unbiased estimate of the variance
of the unbiased MMD^2 U-statistic for n = m,

    Var = 4 (n - 2) / (n (n - 1)) zeta_1 + 2 / (n (n - 1)) zeta_2,

with zeta_1, zeta_2 the variances of the U-statistic's kernel h((x, y), (x', y')) =
k(x, x') + k(y, y') - k(x, y') - k(x', y) conditioned on one, resp. two arguments, each
estimated from sums of the kernel blocks. Binkowski et al. (ICLR 2018) report the Kernel
Inception Distance with this standard error; :func:`mmd_with_error` with the default
polynomial kernel is that estimate on whatever features it is given.
"""

from __future__ import annotations

import math

import numpy as np

from ._arrays import as_pair
from .kernel_mmd import MIXTURE_SCALES, pooled_kernel_matrix


def _sq(a: np.ndarray) -> float:
    flat = a.ravel()
    return float(flat @ flat)


def mmd2_and_variance(KPP: np.ndarray, KQQ: np.ndarray, KPQ: np.ndarray) -> tuple[float, float]:
    """(unbiased MMD^2, unbiased estimate of its variance) from the kernel blocks of two
    samples of equal size n >= 4 (Sutherland et al. 2017, appendix A)."""
    n = len(KPP)
    n1, n2 = n - 1, n - 2
    # Kernel sums with the diagonals of the within-sample blocks left out (the "tilde" K).
    row_pp = KPP.sum(axis=1) - np.diag(KPP)
    row_qq = KQQ.sum(axis=1) - np.diag(KQQ)
    row_pq, col_pq = KPQ.sum(axis=1), KPQ.sum(axis=0)
    s_pp, s_qq, s_pq = row_pp.sum(), row_qq.sum(), row_pq.sum()
    sq_pp = _sq(KPP) - _sq(np.diag(KPP))  # sums of squared entries, diagonals left out
    sq_qq = _sq(KQQ) - _sq(np.diag(KQQ))
    sq_pq = _sq(KPQ)
    cross = float(row_pp @ row_pq + row_qq @ col_pq)
    mmd2 = (s_pp + s_qq) / (n * n1) - 2 * s_pq / n**2
    within = s_pp**2 + s_qq**2
    zeta1 = (
        (_sq(row_pp) - sq_pp + _sq(row_qq) - sq_qq) / (n * n1 * n2)
        - within / (n * n1) ** 2
        + (_sq(row_pq) + _sq(col_pq) - 2 * sq_pq) / (n * n * n1)
        - 2 * s_pq**2 / n**4
        - 2 * cross / (n * n * n1)
        + 2 * (s_pp + s_qq) * s_pq / (n**3 * n1)
    )
    zeta2 = (
        (sq_pp + sq_qq) / (n * n1)
        - within / (n * n1) ** 2
        + 2 * sq_pq / n**2
        - 2 * s_pq**2 / n**4
        - 4 * cross / (n * n * n1)
        + 4 * (s_pp + s_qq) * s_pq / (n**3 * n1)
    )
    variance = 4 * n2 / (n * n1) * zeta1 + 2 / (n * n1) * zeta2
    return float(mmd2), float(variance)


def mmd_with_error(
    P, Q, kernel: str = "polynomial", sigma=None, scales=MIXTURE_SCALES
) -> tuple[float, float]:
    """(unbiased MMD^2, its standard error) for two samples of equal size n >= 4.

    The default kernel (x.y / d + 1)^3 on classifier features is the Kernel Inception
    Distance of Binkowski et al. 2018 with this project's classifier in place of
    Inception; ``kernel``, ``sigma`` and ``scales`` are those of :func:`MMD`. The standard
    error is the square root of Sutherland et al.'s (2017) unbiased variance estimate
    (0 where that estimate comes out negative, which happens only for tiny n).
    """
    P, Q = as_pair(P, Q)
    n = len(P)
    if len(Q) != n or n < 4:
        raise ValueError(
            f"mmd_with_error needs two samples of equal size n >= 4 (the variance estimate "
            f"is for n = m); got {len(P)} and {len(Q)}: subsample the larger one"
        )
    K = pooled_kernel_matrix(P, Q, kernel, sigma, scales)
    mmd2, variance = mmd2_and_variance(K[:n, :n], K[n:, n:], K[:n, n:])
    return mmd2, math.sqrt(max(variance, 0.0))
