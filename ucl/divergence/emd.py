"""Earth mover's distance (Wasserstein-1) between two samples, with Euclidean ground cost.

Both functions give each point of a sample the same mass (1/n, resp. 1/m) and return

    W1(P, Q) = min over couplings pi of sum_ij pi_ij ||P_i - Q_j||,

the optimal-transport cost between the two empirical measures, in the units of the data.
"""

from __future__ import annotations

import numpy as np

from ._arrays import as_pair
from ._distances import sq_dists


def emd_opencv(P, Q) -> float:
    """EMD with OpenCV's ``cv2.EMD`` (Rubner, Tomasi & Guibas, 2000), as the problem set asks.

    Each sample becomes a signature: one row per point, a weight column (1/n, resp. 1/m)
    followed by the coordinates, float32; the ground distance is ``cv2.DIST_L2``. Sizes
    may differ. Returns the distance (total cost / total flow, i.e. W1 since the weights
    sum to 1).

    Caveats: OpenCV solves the transportation problem in float32 with a simplex method
    that stops after a fixed number of iterations, so on large inputs it can return more
    than the optimum (on the benchmark's 1000-by-784 samples: 11.3628 against the exact
    11.3443, +0.16%); :func:`emd_exact` is exact (equal sizes only). Its time grows
    faster than n**2 (about 5 s at n = 1000 in 784-D, 0.2 s at n = 250).
    """
    import cv2

    P, Q = as_pair(P, Q)
    sig_p = np.hstack([np.full((len(P), 1), 1.0 / len(P)), P]).astype(np.float32)
    sig_q = np.hstack([np.full((len(Q), 1), 1.0 / len(Q)), Q]).astype(np.float32)
    distance, _, _ = cv2.EMD(sig_p, sig_q, cv2.DIST_L2)
    return float(distance)


def emd_exact(P, Q) -> float:
    """Exact W1 between two equal-size samples with equal weights, by optimal assignment.

    For two uniform empirical measures with the same number of points n, an optimal
    coupling can be taken to be a permutation (the extreme points of the doubly
    stochastic matrices are the permutation matrices, Birkhoff-von Neumann), so

        W1 = min over permutations s of 1/n sum_i ||P_i - Q_s(i)||,

    solved exactly by ``scipy.optimize.linear_sum_assignment`` on the n-by-n Euclidean
    distance matrix. The returned mean matched cost is recomputed from the coordinates
    of the matched pairs, so it carries full float64 precision.

    Unlike ``cv2.EMD`` (see :func:`emd_opencv`), which stops its simplex iterations
    after a fixed budget and can return more than the optimum, this is the optimum.
    Unequal sizes raise ValueError: use :func:`emd_opencv` for those.
    """
    from scipy.optimize import linear_sum_assignment

    P, Q = as_pair(P, Q)
    if len(P) != len(Q):
        raise ValueError(
            f"emd_exact needs samples of equal size (an optimal coupling of two uniform "
            f"measures is then a matching); got n = {len(P)} and m = {len(Q)}. Use "
            "emd_opencv(P, Q) for unequal sizes, or subsample the larger one"
        )
    cost = sq_dists(P, Q)
    rows, cols = linear_sum_assignment(np.sqrt(cost, out=cost))
    matched = P[rows] - Q[cols]
    return float(np.sqrt(np.einsum("ij,ij->i", matched, matched)).mean())
