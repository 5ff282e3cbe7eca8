"""Maximum mean discrepancy with a Gaussian kernel, and its permutation test.

Gretton, Borgwardt, Rasch, Schoelkopf & Smola, "A kernel two-sample test", JMLR 13
(2012), 723-773. With k(x, y) = exp(-||x - y||^2 / (2 sigma^2)),

    MMD^2(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y),   x, x' ~ P,  y, y' ~ Q.

Every function here returns MMD^2, the squared discrepancy (never its square root: the
unbiased estimate is negative half the time when P = Q).

Bandwidth convention (the median heuristic of Gretton et al. 2012): sigma = the median
of the Euclidean distances ||z_i - z_j||, i < j, over all pairs of the pooled sample
z = P u Q. It is a symmetric function of the pooled sample, so it is the same for every
permutation of the test.
"""

from __future__ import annotations

import numpy as np
import torch

from ._arrays import as_pair, check_int, check_positive, same_sample
from ._distances import (
    CHUNK_ELEMENTS,
    factor_sq_dists,
    left_factor,
    pooled_center,
    right_factor,
    sq_dists,
    within_sq_dists,
)

# Median heuristic on many points: a subsample of about this many pooled points guesses
# a bracket [lo, hi] of pair distances around the median, at its quantiles
# 0.5 -+ BRACKET_HALF_WIDTH; the exact median is then selected among the pairs inside.
# If the guess misses, the full selection runs instead, so these only affect speed.
BRACKET_POINTS = 256
BRACKET_HALF_WIDTH = 0.05
# Within-sample blocks are read above the diagonal only, in bands of this many rows.
UPPER_BAND = 128

# Two permutation statistics closer than this count as tied (p-value counts ties): they
# are differences of kernel means in [0, 1], so float64 round-off is orders of magnitude
# below it and genuine differences between distinct splits orders of magnitude above.
TIE_TOLERANCE = 1e-12


def _blocks(P: np.ndarray, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Squared-distance blocks (PP, QQ, PQ) of the pooled sample, float64 arrays.

    Identical samples share one block, so MMD^2(P, P) is exactly 0.
    """
    center = pooled_center(P, Q)
    left_p = left_factor(P, center)
    right_p = right_factor(left_p)
    PP = factor_sq_dists(left_p, right_p, within=True)
    if same_sample(P, Q):
        return PP, PP, PP
    left_q = left_factor(Q, center)
    QQ = factor_sq_dists(left_q, right_factor(left_q), within=True)
    return PP, QQ, factor_sq_dists(left_p, right_factor(left_q))


def _upper_parts(block: np.ndarray):
    """Arrays covering the strict upper triangle (i < j) of a square block once each:
    per band of rows, its small diagonal square masked, the rest of the band a view."""
    n = len(block)
    for i0 in range(0, n, UPPER_BAND):
        i1 = min(i0 + UPPER_BAND, n)
        rows = np.arange(i1 - i0)
        yield block[i0:i1, i0:i1][rows[:, None] < rows]
        yield block[i0:i1, i1:]


def _pair_values(PP, QQ, PQ, lo: float = -np.inf, hi: float = np.inf) -> tuple[int, np.ndarray]:
    """Pooled pair values (PP and QQ above the diagonal, all of PQ): how many lie below
    lo, and those lying in [lo, hi]."""
    below, inside = 0, []
    for part in (*_upper_parts(PP), *_upper_parts(QQ), PQ):
        keep = part >= lo
        below += part.size - int(np.count_nonzero(keep))
        keep &= part <= hi
        inside.append(part[keep])
    return below, np.concatenate(inside)


def _select(values: np.ndarray, ranks: tuple[int, int]) -> np.ndarray:
    return np.partition(values, ranks)[list(ranks)]


def _median_distance(PP, QQ, PQ) -> float:
    """Median pooled pair distance, exact, from the squared-distance blocks."""
    n, m = len(PP), len(QQ)
    pairs = (n + m) * (n + m - 1) // 2
    ranks = ((pairs - 1) // 2, pairs // 2)  # the two middle order statistics, 0-based
    middle = None
    if n + m > 2 * BRACKET_POINTS:
        s = -(-(n + m) // BRACKET_POINTS)  # ceil: stride of the pooled subsample
        _, guess = _pair_values(PP[::s, ::s], QQ[::s, ::s], PQ[::s, ::s])
        lo, hi = np.quantile(guess, [0.5 - BRACKET_HALF_WIDTH, 0.5 + BRACKET_HALF_WIDTH])
        below, inside = _pair_values(PP, QQ, PQ, lo, hi)
        if below <= ranks[0] and ranks[1] < below + len(inside):
            middle = _select(inside, (ranks[0] - below, ranks[1] - below))
    if middle is None:
        middle = _select(_pair_values(PP, QQ, PQ)[1], ranks)
    return float(np.sqrt(middle).mean())


def _resolve_sigma(sigma, PP, QQ, PQ) -> float:
    if sigma is not None:
        return check_positive(sigma, "sigma")
    if len(PP) + len(QQ) < 2:
        raise ValueError("the median heuristic needs at least 2 pooled points; pass sigma")
    sigma = _median_distance(PP, QQ, PQ)
    if sigma <= 0:
        raise ValueError(
            "the median heuristic gives sigma = 0: at least half of the pooled pairwise "
            "distances are 0 (duplicated points); pass sigma explicitly"
        )
    return sigma


def _gaussian(D: np.ndarray, sigma: float, out: np.ndarray | None = None) -> np.ndarray:
    """exp(-D / (2 sigma^2)) for squared distances D; ``out=D`` works in place."""
    K = np.multiply(D, -0.5 / sigma**2, out=out)
    return np.exp(K, out=K)


def _kernel_blocks(P: np.ndarray, Q: np.ndarray, sigma) -> tuple[np.ndarray, ...]:
    """Gaussian kernel blocks (K_PP, K_QQ, K_PQ); sigma None means the median heuristic."""
    PP, QQ, PQ = _blocks(P, Q)
    sigma = _resolve_sigma(sigma, PP, QQ, PQ)
    KPP = _gaussian(PP, sigma, out=PP)  # in place: the distances are not needed again
    if PQ is PP:  # the same sample twice: one kernel block
        return KPP, KPP, KPP
    return KPP, _gaussian(QQ, sigma, out=QQ), _gaussian(PQ, sigma, out=PQ)


def _mmd2(KPP, KQQ, KPQ, unbiased: bool) -> float:
    n, m = len(KPP), len(KQQ)
    if not unbiased:  # biased V-statistic: every pair, i = j included
        return float(KPP.mean() + KQQ.mean() - 2.0 * KPQ.mean())
    # unbiased U-statistic: the i = j terms k(x_i, x_i) are left out.
    xx = (KPP.sum() - np.trace(KPP)) / (n * (n - 1))
    yy = (KQQ.sum() - np.trace(KQQ)) / (m * (m - 1))
    return float(xx + yy - 2.0 * KPQ.mean())


def _check_unbiased(n: int, m: int, unbiased: bool) -> None:
    if unbiased and min(n, m) < 2:
        raise ValueError(
            f"the unbiased MMD^2 needs at least 2 samples on each side; got n = {n}, m = {m} "
            "(use unbiased=False)"
        )


def kernel(A, B, sigma: float) -> np.ndarray:
    """Gaussian kernel matrix K[i, j] = exp(-||A_i - B_j||^2 / (2 sigma^2)), float64 (n, m).

    A is n-by-d, B is m-by-d (numpy or torch; 1-D means d = 1); sigma > 0 is the bandwidth
    in the units of the data (see :func:`median_sigma`). For B equal to A the matrix is
    exactly symmetric with a unit diagonal.
    """
    A, B = as_pair(A, B, ("A", "B"))
    sigma = check_positive(sigma, "sigma")
    if not same_sample(A, B):
        D = sq_dists(A, B)
        return _gaussian(D, sigma, out=D)
    K = _gaussian(within_sq_dists(A), sigma)
    K += K.T  # exactly symmetric: the mean of the two roundings of each pair
    K *= 0.5
    return K


def median_sigma(P, Q) -> float:
    """Median heuristic bandwidth: the median Euclidean distance over all pairs i < j of the
    pooled sample P u Q (Gretton et al. 2012). For an even number of pairs it is the mean
    of the two middle distances. Raises ValueError if it is 0 (mostly duplicates)."""
    P, Q = as_pair(P, Q)
    return _resolve_sigma(None, *_blocks(P, Q))


def MMD(P, Q, sigma: float | None = None, unbiased: bool = False) -> float:
    """Squared maximum mean discrepancy MMD^2 between samples P (n-by-d) and Q (m-by-d).

    Gaussian kernel k(x, y) = exp(-||x - y||^2 / (2 sigma^2)); sigma defaults to the
    median heuristic (:func:`median_sigma`). Estimates (Gretton et al. 2012):

    - ``unbiased=False`` (the problem set's): the biased V-statistic
      mean K_PP + mean K_QQ - 2 mean K_PQ, >= 0, exactly 0 for a sample with itself;
      its expectation exceeds MMD^2 by (1 - E k(x, x'))/n + (1 - E k(y, y'))/m.
    - ``unbiased=True``: the U-statistic, diagonals of K_PP and K_QQ left out; unbiased,
      can be negative. Needs n, m >= 2.

    Returns MMD^2 as a float (take the square root yourself for MMD; it is only defined
    for the biased estimate).
    """
    P, Q = as_pair(P, Q)
    _check_unbiased(len(P), len(Q), unbiased)
    return _mmd2(*_kernel_blocks(P, Q, sigma), unbiased)


mmd = MMD


def permutation_masks(n: int, m: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean (count, n + m) array, row j marking the pooled points that permutation j
    assigns to P: ``rng.permuted`` of [True] * n + [False] * m along each row.

    Drawing in consecutive chunks from one generator gives the same rows as one draw.
    """
    base = np.zeros(n + m, dtype=bool)
    base[:n] = True
    return rng.permuted(np.broadcast_to(base, (count, n + m)), axis=1)


def mmd_permutation_test(
    P,
    Q,
    sigma: float | None = None,
    permutations: int = 1000,
    seed: int = 0,
    unbiased: bool = False,
    return_null: bool = False,
):
    """Permutation two-sample test of P = Q with the MMD^2 statistic (Gretton et al. 2012).

    Returns ``(statistic, p_value)``, and the null statistics as a third element if
    ``return_null``. The statistic is ``MMD(P, Q, sigma, unbiased)``; sigma (median
    heuristic by default) is fixed once from the pooled sample. Each of ``permutations``
    random relabellings of the pooled sample (``permutation_masks`` with
    ``np.random.default_rng(seed)``) gives a null statistic, and

        p = (1 + #{null >= statistic}) / (1 + permutations)

    (Phipson & Smyth 2010: counts the observed labelling, never 0, valid at any size).

    Vectorised: the pooled (N, N) kernel matrix K is built once. For a 0/1 indicator
    row a of the points labelled P (b = 1 - a), a^T K a, a^T K b and b^T K b are the
    kernel sums of the blocks, and a batch of indicators A needs one product A @ K:
    with row sums r = K 1, column sums c = K^T 1 and t = 1^T K 1, a^T K b = a.r - a^T K a,
    b^T K a = a.c - a^T K a and b^T K b = t - a.r - a.c + a^T K a. For the unbiased
    statistic K's diagonal is zeroed first. Batches hold at most 2**22 entries.
    """
    P, Q = as_pair(P, Q)
    n, m = len(P), len(Q)
    N = n + m
    _check_unbiased(n, m, unbiased)
    permutations = check_int(permutations, "permutations", 1)
    KPP, KQQ, KPQ = _kernel_blocks(P, Q, sigma)
    statistic = _mmd2(KPP, KQQ, KPQ, unbiased)

    K = np.block([[KPP, KPQ], [KPQ.T, KQQ]])
    if unbiased:
        np.fill_diagonal(K, 0.0)
    # Row and column sums: K is symmetric only up to round-off within the blocks.
    r, c = K.sum(axis=1), K.sum(axis=0)
    t = r.sum()
    K_t, rc_t = torch.from_numpy(K), torch.from_numpy(np.stack([r, c], axis=1))
    # Weights of a^T K a, b^T K b and a^T K b in the statistic.
    if unbiased:
        wa, wb = 1.0 / (n * (n - 1)), 1.0 / (m * (m - 1))
    else:
        wa, wb = 1.0 / n**2, 1.0 / m**2
    wab = -2.0 / (n * m)

    rng = np.random.default_rng(seed)
    null = np.empty(permutations)
    batch = max(1, CHUNK_ELEMENTS // N)
    for start in range(0, permutations, batch):  # loop over batches of permutations only
        stop = min(start + batch, permutations)
        A = permutation_masks(n, m, stop - start, rng).astype(np.float64)
        AK = torch.mm(torch.from_numpy(A), K_t).numpy()  # the one O(B N^2) step, MKL
        aKa = np.einsum("ij,ij->i", AK, A)
        ar, ac = torch.mm(torch.from_numpy(A), rc_t).numpy().T  # a.r = a^T K 1, a.c = 1^T K a
        aKb, bKa = ar - aKa, ac - aKa
        bKb = t - ar - ac + aKa
        null[start:stop] = wa * aKa + wb * bKb + 0.5 * wab * (aKb + bKa)
    p_value = (1 + int(np.sum(null >= statistic - TIE_TOLERANCE))) / (1 + permutations)
    if return_null:
        return statistic, p_value, null
    return statistic, p_value
