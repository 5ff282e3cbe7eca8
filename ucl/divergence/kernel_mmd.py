"""Maximum mean discrepancy and its permutation test, with three kernels.

Gretton, Borgwardt, Rasch, Schoelkopf & Smola, "A kernel two-sample test", JMLR 13
(2012), 723-773: for a kernel k,

    MMD^2(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y),   x, x' ~ P,  y, y' ~ Q.

Kernels (``kernel=`` of :func:`MMD` and :func:`mmd_permutation_test`):

- "gaussian" (the problem set's): k(x, y) = exp(-||x - y||^2 / (2 sigma^2)), sigma by
  the median heuristic unless given.
- "mixture": the mean of Gaussian kernels at bandwidths sigma * s, s in ``scales``
  (default 0.25 to 4 around the median). One median bandwidth makes a weak test in high
  dimension; a sum of bandwidths keeps power whichever scale the difference lives at
  (Gretton et al., "Optimal kernel choice for large-scale two-sample tests", NeurIPS
  2012; Sutherland et al., "Generative models and model criticism via optimized maximum
  mean discrepancy", ICLR 2017).
- "polynomial": k(x, y) = (x.y / d + 1)^3, the kernel of the Kernel Inception Distance
  (Binkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs", ICLR 2018), meant for
  a classifier's features rather than pixels.

Every function returns MMD^2, the squared discrepancy (never its square root: the
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
from ._distances import CHUNK_ELEMENTS, sq_dists, within_sq_dists
from ._pooled import PooledBands

KERNELS = ("gaussian", "mixture", "polynomial")
# Bandwidth multipliers of the "mixture" kernel, around the median heuristic.
MIXTURE_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
POLYNOMIAL_DEGREE = 3  # KID's kernel (x.y / d + 1)^3
POLYNOMIAL_COEF0 = 1.0

# Two permutation statistics closer than this count as tied (p-value counts ties): they
# are differences of kernel means, so float64 round-off is orders of magnitude below it
# and genuine differences between distinct splits orders of magnitude above.
TIE_TOLERANCE = 1e-12


def _gaussian(D: np.ndarray, sigma: float, out: np.ndarray | None = None) -> np.ndarray:
    """exp(-D / (2 sigma^2)) for squared distances D; ``out=D`` works in place."""
    K = np.multiply(D, -0.5 / sigma**2, out=out)
    return np.exp(K, out=K)


def _check_unbiased(n: int, m: int, unbiased: bool) -> None:
    if unbiased and min(n, m) < 2:
        raise ValueError(
            f"the unbiased MMD^2 needs at least 2 samples on each side; got n = {n}, m = {m} "
            "(use unbiased=False)"
        )


def _check_kernel(kernel: str, sigma, scales) -> tuple[float, ...]:
    """Validate the kernel options; returns the bandwidth multipliers (empty: polynomial)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel={kernel!r}: use one of {', '.join(KERNELS)}")
    if kernel == "polynomial":
        if sigma is not None:
            raise ValueError(
                f"sigma={sigma} applies to the Gaussian kernels only; drop it for "
                "kernel='polynomial' (or use kernel='gaussian')"
            )
        return ()
    if kernel == "gaussian":
        return (1.0,)
    scales = tuple(check_positive(s, "scales[i]") for s in scales)
    if not scales:
        raise ValueError("scales must hold at least one bandwidth multiplier, e.g. (0.5, 1, 2)")
    return scales


def _resolve_sigma(sigma, bands: PooledBands) -> float:
    if sigma is not None:
        return check_positive(sigma, "sigma")
    if bands.n + bands.m < 2:
        raise ValueError("the median heuristic needs at least 2 pooled points; pass sigma")
    sigma = bands.median_distance()
    if sigma <= 0:
        raise ValueError(
            "the median heuristic gives sigma = 0: at least half of the pooled pairwise "
            "distances are 0 (duplicated points); pass sigma explicitly"
        )
    return sigma


def _mmd2_from_sums(xx, yy, xy, n: int, m: int, unbiased: bool) -> float:
    """MMD^2 from the kernel sums over all ordered P-P pairs, Q-Q pairs and P-Q pairs
    (i = j left out of xx, yy when unbiased, included when biased)."""
    if unbiased:  # U-statistic: the i = j terms k(x_i, x_i) are left out
        return float(xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2.0 * xy / (n * m))
    return float(xx / n**2 + yy / m**2 - 2.0 * xy / (n * m))  # V-statistic: every pair


def _polynomial_matrix(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """The pooled (N, N) polynomial kernel matrix (z.z' / d + 1)^3, exactly symmetric."""
    Z = torch.from_numpy(np.concatenate([P, Q]))
    G = torch.mm(Z, Z.T).numpy()
    G += G.T  # exactly symmetric: the mean of the two roundings of each pair
    G *= 0.5 / P.shape[1]
    G += POLYNOMIAL_COEF0
    return G**POLYNOMIAL_DEGREE


def _prepare(P: np.ndarray, Q: np.ndarray, kernel: str, sigma, scales):
    """(bands, bandwidths) for the Gaussian kernels, (None, ()) for the polynomial one."""
    multipliers = _check_kernel(kernel, sigma, scales)
    if kernel == "polynomial":
        return None, ()
    bands = PooledBands(P, Q)
    sigma = _resolve_sigma(sigma, bands)
    return bands, tuple(sigma * s for s in multipliers)


def _kernel(P, Q, bands: PooledBands | None, sigmas):
    """The polynomial (N, N) matrix, or the Gaussian kernel's values in the bands' buffer."""
    return _polynomial_matrix(P, Q) if bands is None else bands.gaussian(sigmas)


def _kernel_matrix(bands: PooledBands | None, K) -> np.ndarray:
    return K if bands is None else bands.matrix(K)


def _statistic(n: int, m: int, unbiased: bool, bands: PooledBands | None, K) -> float:
    """MMD^2 from the output of :func:`_kernel`."""
    if bands is None:
        xx, yy, xy = K[:n, :n].sum(), K[n:, n:].sum(), K[:n, n:].sum()
        if unbiased:
            xx, yy = xx - np.trace(K[:n, :n]), yy - np.trace(K[n:, n:])
        return _mmd2_from_sums(xx, yy, xy, n, m, unbiased)
    pp, qq, pq = bands.sums(K)
    # The bands hold pairs i < j; the diagonal of a Gaussian kernel is 1.
    diagonal = not unbiased
    return _mmd2_from_sums(2 * pp + n * diagonal, 2 * qq + m * diagonal, pq, n, m, unbiased)


def pooled_kernel_matrix(P, Q, kernel: str = "gaussian", sigma=None, scales=MIXTURE_SCALES):
    """The kernel matrix of the pooled sample P u Q, (n + m)-square, exactly symmetric."""
    P, Q = as_pair(P, Q)
    bands, sigmas = _prepare(P, Q, kernel, sigma, scales)
    return _kernel_matrix(bands, _kernel(P, Q, bands, sigmas))


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
    return _resolve_sigma(None, PooledBands(P, Q))


def MMD(
    P,
    Q,
    sigma: float | None = None,
    unbiased: bool = False,
    kernel: str = "gaussian",
    scales=MIXTURE_SCALES,
) -> float:
    """Squared maximum mean discrepancy MMD^2 between samples P (n-by-d) and Q (m-by-d).

    Default kernel: Gaussian, k(x, y) = exp(-||x - y||^2 / (2 sigma^2)), sigma by the
    median heuristic (:func:`median_sigma`). ``kernel="mixture"`` averages Gaussians at
    sigma * s for s in ``scales``; ``kernel="polynomial"`` is (x.y / d + 1)^3 (see the
    module docstring). Estimates (Gretton et al. 2012, eqs. 3 and 5):

    - ``unbiased=False`` (the problem set's): the biased V-statistic
      mean K_PP + mean K_QQ - 2 mean K_PQ, >= 0, exactly 0 for a sample with itself;
      its expectation exceeds MMD^2 by (E k(x, x) - E k(x, x'))/n + (same for y)/m.
    - ``unbiased=True``: the U-statistic, diagonals of K_PP and K_QQ left out; unbiased,
      can be negative. Needs n, m >= 2.

    Cost: the Gaussian kernels read the pooled pair distances above the diagonal, from one
    half-size product (see ``_pooled``), the median included. Returns MMD^2 as a float.
    """
    P, Q = as_pair(P, Q)
    n, m = len(P), len(Q)
    _check_unbiased(n, m, unbiased)
    _check_kernel(kernel, sigma, scales)
    if not unbiased and same_sample(P, Q):
        if sigma is not None:
            check_positive(sigma, "sigma")
        return 0.0  # every term cancels exactly, whatever the kernel
    bands, sigmas = _prepare(P, Q, kernel, sigma, scales)
    return _statistic(n, m, unbiased, bands, _kernel(P, Q, bands, sigmas))


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
    kernel: str = "gaussian",
    scales=MIXTURE_SCALES,
):
    """Permutation two-sample test of P = Q with the MMD^2 statistic (Gretton et al. 2012).

    Returns ``(statistic, p_value)``, and the null statistics as a third element if
    ``return_null``. The statistic is ``MMD(P, Q, sigma, unbiased, kernel, scales)``;
    sigma (median heuristic by default) is fixed once from the pooled sample. Each of
    ``permutations`` random relabellings of the pooled sample (``permutation_masks`` with
    ``np.random.default_rng(seed)``) gives a null statistic, and

        p = (1 + #{null >= statistic}) / (1 + permutations)

    (Phipson & Smyth 2010: counts the observed labelling, never 0, valid at any size).

    Vectorised: the pooled (N, N) kernel matrix K, exactly symmetric, is built once. For a
    0/1 indicator row a of the points labelled P (b = 1 - a), with row sums r = K 1 and
    t = 1^T K 1: a^T K b = a.r - a^T K a and b^T K b = t - 2 a.r + a^T K a, so a batch of
    indicators A needs one product A @ K. For the unbiased statistic K's diagonal is
    zeroed first. Batches hold at most 2**22 entries.
    """
    P, Q = as_pair(P, Q)
    n, m = len(P), len(Q)
    N = n + m
    _check_unbiased(n, m, unbiased)
    permutations = check_int(permutations, "permutations", 1)
    bands, sigmas = _prepare(P, Q, kernel, sigma, scales)
    values = _kernel(P, Q, bands, sigmas)  # once: the statistic and the null share it
    if not unbiased and same_sample(P, Q):
        statistic = 0.0  # as MMD gives it
    else:
        statistic = _statistic(n, m, unbiased, bands, values)
    K = _kernel_matrix(bands, values)
    if unbiased:
        np.fill_diagonal(K, 0.0)
    r = K.sum(axis=1)
    t = r.sum()
    K_t, r_t = torch.from_numpy(K), torch.from_numpy(r)
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
        aKa = np.einsum("ij,ij->i", AK, A)  # numpy: see _pooled on torch's threads
        ar = torch.mv(torch.from_numpy(A), r_t).numpy()
        null[start:stop] = wa * aKa + wb * (t - 2 * ar + aKa) + wab * (ar - aKa)
    p_value = (1 + int(np.sum(null >= statistic - TIE_TOLERANCE))) / (1 + permutations)
    if return_null:
        return statistic, p_value, null
    return statistic, p_value
