"""Information-theory measures between two samples, as pure functions.

Samples are n-by-d arrays (numpy or torch, one sample per row; 1-D means d = 1).

- KL divergence D(P||Q), nats: :func:`kl_histogram` (shared-bin histograms, the problem
  set's method, low d) and :func:`kl_knn` (Wang-Kulkarni-Verdu kNN estimator, any d).
- Earth mover's distance W1, Euclidean ground cost: :func:`emd_opencv` (``cv2.EMD``)
  and :func:`emd_exact` (optimal assignment, equal sizes).
- Maximum mean discrepancy with a Gaussian kernel: :func:`kernel`, :func:`median_sigma`,
  :func:`MMD` (returns MMD^2; alias ``mmd``) and :func:`mmd_permutation_test`.
"""

from .emd import emd_exact, emd_opencv
from .kernel_mmd import MMD, kernel, median_sigma, mmd, mmd_permutation_test, permutation_masks
from .kl import kl_histogram, kl_knn

__all__ = [
    "MMD",
    "emd_exact",
    "emd_opencv",
    "kernel",
    "kl_histogram",
    "kl_knn",
    "median_sigma",
    "mmd",
    "mmd_permutation_test",
    "permutation_masks",
]
