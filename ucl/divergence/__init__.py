"""Information-theory measures between two samples, as pure functions.

Samples are n-by-d arrays (numpy or torch, one sample per row; 1-D means d = 1).

- KL divergence D(P||Q), nats: :func:`kl_histogram` (shared-bin histograms, the problem
  set's method, low d) and :func:`kl_knn` (Wang-Kulkarni-Verdu kNN estimator, any d).
- Earth mover's distance W1, Euclidean ground cost: :func:`emd_opencv` (``cv2.EMD``)
  and :func:`emd_exact` (optimal assignment, equal sizes).
- Maximum mean discrepancy: :func:`kernel` (Gaussian), :func:`median_sigma`, :func:`MMD`
  (returns MMD^2; alias ``mmd``; kernels "gaussian", "mixture" of bandwidths, "polynomial")
  and :func:`mmd_permutation_test`; :func:`mmd_with_error` gives the unbiased MMD^2 with
  its standard error (the KID of Binkowski et al. 2018 on classifier features).
"""

from .emd import emd_exact, emd_opencv
from .kernel_mmd import (
    KERNELS,
    MIXTURE_SCALES,
    MMD,
    kernel,
    median_sigma,
    mmd,
    mmd_permutation_test,
    permutation_masks,
)
from .kl import kl_histogram, kl_knn
from .mmd_error import mmd_with_error

__all__ = [
    "KERNELS",
    "MIXTURE_SCALES",
    "MMD",
    "emd_exact",
    "emd_opencv",
    "kernel",
    "kl_histogram",
    "kl_knn",
    "median_sigma",
    "mmd",
    "mmd_permutation_test",
    "mmd_with_error",
    "permutation_masks",
]
