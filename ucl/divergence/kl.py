"""Kullback-Leibler divergence D(P||Q) between two samples, in nats.

Two estimators:

- :func:`kl_histogram`, the problem set's method: histogram both samples on shared bins
  and take the discrete KL divergence of the bin frequencies. Simple, but only usable in
  a few dimensions (bins**d cells) and biased by the binning.
- :func:`kl_knn`, the k-nearest-neighbour estimator of Wang, Kulkarni and Verdu (2009),
  consistent in any dimension, usable on 784-D images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._arrays import as_pair, check_int, check_positive
from ._distances import NeighbourSearch

# Histogram cells allowed by default: 10**7 float64 counts = 80 MB per histogram.
MAX_HISTOGRAM_CELLS = 10**7


def kl_histogram(
    P,
    Q,
    bins: int | Sequence[int] = 10,
    smoothing: float = 0.0,
    max_cells: int = MAX_HISTOGRAM_CELLS,
) -> float:
    """Plug-in KL divergence D(P||Q) of two samples histogrammed on shared bins, in nats.

    Both samples (n-by-d and m-by-d; 1-D arrays mean d = 1) are counted with
    ``np.histogramdd`` on the same grid: ``bins`` equal-width bins per coordinate (an int,
    or one int per coordinate) spanning the joint range [min, max] of the pooled sample.
    The counts become frequencies p and q and the result is
    ``scipy.stats.entropy(p, q) = sum_b p_b log(p_b / q_b)``.

    Empty bins. A bin with p_b = 0 contributes 0. A bin with p_b > 0 and q_b = 0 makes
    the divergence infinite, and by default (``smoothing=0``) the result is then
    ``math.inf``: the samples say P puts mass where Q was never seen, and this function
    does not hide that. With ``smoothing = a > 0`` every bin of both histograms gets a
    pseudo-count ``a`` before normalising (additive / Lidstone smoothing; ``a = 1`` is
    Laplace's rule), which gives a finite value, biased towards 0 by an amount that
    grows with ``a`` times the number of bins relative to n and m.

    This estimates the KL divergence between the *binned* distributions; it approaches
    D(P||Q) only as the bins shrink and the counts per bin grow. It needs bins**d cells,
    so it is limited to a few dimensions: more than ``max_cells`` cells raise ValueError
    (use :func:`kl_knn` in high dimension).
    """
    from scipy.stats import entropy

    P, Q = as_pair(P, Q)
    d = P.shape[1]
    if isinstance(bins, (Sequence, np.ndarray)):
        if len(bins) != d:
            raise ValueError(
                f"bins must be an int or one int per coordinate (d = {d}); got {len(bins)} values"
            )
        bins = [check_int(b, "bins[i]", 1) for b in bins]
    else:
        bins = [check_int(bins, "bins", 1)] * d
    smoothing = check_positive(smoothing, "smoothing", allow_zero=True)
    cells = math.prod(bins)
    if cells > max_cells:
        raise ValueError(
            f"histogram would have {cells:.3g} cells ({bins[0]} bins per coordinate ** d = {d}), "
            f"more than max_cells = {max_cells}; use fewer bins or dimensions, raise "
            "max_cells, or use kl_knn for high-dimensional samples"
        )
    # Shared grid: the joint range of both samples (np.histogramdd widens a zero-width
    # range by 0.5 on each side, so constant coordinates are fine).
    lo = np.minimum(P.min(axis=0), Q.min(axis=0))
    hi = np.maximum(P.max(axis=0), Q.max(axis=0))
    joint_range = list(zip(lo, hi, strict=True))
    hp, _ = np.histogramdd(P, bins=bins, range=joint_range)
    hq, _ = np.histogramdd(Q, bins=bins, range=joint_range)
    p = (hp.ravel() + smoothing) / (len(P) + smoothing * cells)
    q = (hq.ravel() + smoothing) / (len(Q) + smoothing * cells)
    if np.any((p > 0) & (q == 0)):
        return math.inf
    return float(entropy(p, q))


def _kth_positive_distance(
    X: np.ndarray, search: NeighbourSearch, k: int, exclude_self: bool
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of X, the smallest neighbour rank r >= k whose distance is > 0.

    Returns (distance, r). With ``exclude_self`` the reference sample is X itself and
    the point's own zero distance is skipped. Ranks grow adaptively (K doubles) only
    for the rows whose first K neighbours are all duplicates.
    """
    n_ref = len(search.Y)
    offset = 1 if exclude_self else 0  # sorted column c holds neighbour rank c + 1 - offset
    dist, rank = np.empty(len(X)), np.empty(len(X), dtype=np.int64)
    pending = np.arange(len(X))
    K = min(k + offset + 1, n_ref)  # one spare neighbour: a single duplicate costs no retry
    while pending.size:
        D = search.query(X[pending], K)
        zeros = (D <= 0).sum(axis=1)  # rows are sorted, so the zeros come first
        col = np.maximum(k - 1 + offset, zeros)
        ok = col < K
        dist[pending[ok]] = D[ok, col[ok]]
        rank[pending[ok]] = col[ok] + 1 - offset
        pending = pending[~ok]
        if pending.size and K == n_ref:
            i = pending[0]
            raise ValueError(
                f"sample point {i} has no neighbour at a positive distance (all {n_ref - offset} "
                "candidate points coincide with it); the kNN estimator is undefined for such "
                "degenerate samples, add more distinct points"
            )
        K = min(2 * K, n_ref)
    return dist, rank


def kl_knn(P, Q, k: int = 1, method: str = "auto") -> float:
    """k-nearest-neighbour estimate of D(P||Q) in nats (Wang, Kulkarni & Verdu, 2009).

    For samples P (n-by-d) and Q (m-by-d) of continuous distributions, with
    rho_k(i) the distance from P_i to its k-th nearest neighbour in P (excluding itself)
    and nu_k(i) the distance from P_i to its k-th nearest neighbour in Q:

        D(P||Q) ~ d/n sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1))

    ("Divergence estimation for multidimensional densities via k-nearest-neighbor
    distances", IEEE Trans. Inf. Theory 55(5), 2392-2405); consistent as n, m -> inf.

    Duplicate points (zero distances, e.g. repeated images) would give log(0). They are
    handled with the paper's adaptive-k form: for each i, k_i and l_i are the smallest
    neighbour ranks >= k whose distances rho, nu are strictly positive, and

        D ~ d/n sum_i log(nu_{l_i}(i) / rho_{k_i}(i)) + 1/n sum_i (psi(k_i) - psi(l_i))
            + log(m / (n - 1)),

    psi the digamma function. Without duplicates k_i = l_i = k and this is the formula above.
    The result is finite, but duplicates mean atoms, where no density-based estimate is
    consistent; read it as a finite summary then, not as D(P||Q).

    ``method``: "tree" (scipy cKDTree), "brute" (distance matrix in row chunks,
    candidate distances recomputed exactly) or "auto" (tree for d <= 10, else brute).
    Needs n >= 2, 1 <= k <= n - 1 and k <= m. The estimate can be negative for close
    distributions and small n.
    """
    from scipy.special import digamma

    P, Q = as_pair(P, Q)
    n, d = P.shape
    m = len(Q)
    if n < 2:
        raise ValueError(f"kl_knn needs at least 2 samples in P to find neighbours; got n = {n}")
    k = check_int(k, "k", 1, min(n - 1, m), why=f" (n - 1 = {n - 1}, m = {m})")
    rho, k_i = _kth_positive_distance(P, NeighbourSearch(P, method), k, exclude_self=True)
    nu, l_i = _kth_positive_distance(P, NeighbourSearch(Q, method), k, exclude_self=False)
    log_ratio = np.log(nu) - np.log(rho)
    # E log(rank-r NN distance^d) grows like psi(r): undo the mismatch of unequal ranks.
    correction = digamma(k_i) - digamma(l_i)  # exactly 0 where k_i == l_i
    return float(d * log_ratio.mean() + correction.mean() + math.log(m / (n - 1)))
