"""The divergence measures a study can name in `divergence.measures`, registered by name.

Each is a function of (P, Q, settings, seed): P and Q are `Sample`s (pixels `.x`, and
classifier features `.f` for the measures that need them), the settings are the
`divergence` config node; it returns a float, or a (value, standard error) pair. Names
ending in p_value are tests. Adding a measure is one `MEASURES.register` line here.
"""

from __future__ import annotations

import numpy as np

from ucl import divergence as dv
from ucl.keys import MEASURES


class Sample:
    """One sample of a pair: its pixels ``x`` (n-by-d) and, once computed, its classifier
    features ``f``."""

    def __init__(self, x: np.ndarray):
        self.x, self.f = x, None


def _kl_hist(P, Q, s):
    if P.shape[1] > s.hist_max_dim:
        # bins**784 cells cannot be filled by 1000 points: compare the distributions of
        # single pixel values instead (all coordinates pooled), as a 1-D histogram
        P, Q = P.reshape(-1, 1), Q.reshape(-1, 1)
    return dv.kl_histogram(P, Q, bins=s.bins, smoothing=s.smoothing)


def value_histograms(P: np.ndarray, Q: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Each image as the histogram of its own pixel values, (n, bins) shares summing to 1,
    on `bins` equal bins over the range of both samples: the feature the pooled histogram
    KL sees (how bright the pixels are), kept per image so that a two-sample test can
    permute images."""
    lo, hi = min(P.min(), Q.min()), max(P.max(), Q.max())
    width = (hi - lo) or 1.0

    def histograms(X: np.ndarray) -> np.ndarray:
        cell = np.clip(((X - lo) / width * bins).astype(np.int64), 0, bins - 1)  # (n, d)
        rows = np.repeat(np.arange(len(X)), X.shape[1])
        counts = np.bincount(rows * bins + cell.ravel(), minlength=len(X) * bins)
        return counts.reshape(len(X), bins) / X.shape[1]

    return histograms(P), histograms(Q)


def _test(P, Q, s, seed, **kernel):
    return dv.mmd_permutation_test(P, Q, permutations=s.permutations, seed=seed, **kernel)[1]


def _mixture(P, Q, s, sigma=None):
    """Unbiased MMD^2 with the bandwidth mixture at `s.mixture_scales` times sigma (the
    median heuristic when None)."""
    return dv.MMD(P, Q, sigma=sigma, unbiased=True, kernel="mixture", scales=s.mixture_scales)


def _mixture_test(P, Q, s, seed, sigma=None):
    return _test(P, Q, s, seed, sigma=sigma, kernel="mixture", scales=s.mixture_scales)


def needs_features(measure: str) -> bool:
    return measure.startswith("kid") or "_features" in measure


def is_test(measure: str) -> bool:
    return measure.endswith("p_value")


@MEASURES.register()
def kl_hist_pq(P, Q, s, seed):
    return _kl_hist(P.x, Q.x, s)


@MEASURES.register()
def kl_hist_qp(P, Q, s, seed):
    return _kl_hist(Q.x, P.x, s)


@MEASURES.register()
def kl_knn_pq(P, Q, s, seed):
    return dv.kl_knn(P.x, Q.x, k=s.knn_k)


@MEASURES.register()
def kl_knn_qp(P, Q, s, seed):
    return dv.kl_knn(Q.x, P.x, k=s.knn_k)


@MEASURES.register()
def emd_opencv(P, Q, s, seed):
    return dv.emd_opencv(P.x, Q.x)


@MEASURES.register()
def emd_exact(P, Q, s, seed):
    return dv.emd_exact(P.x, Q.x)


@MEASURES.register()
def mmd2_biased(P, Q, s, seed):
    return dv.MMD(P.x, Q.x, sigma=s.sigma)


@MEASURES.register()
def mmd2_unbiased(P, Q, s, seed):
    return dv.MMD(P.x, Q.x, sigma=s.sigma, unbiased=True)


@MEASURES.register()
def mmd_p_value(P, Q, s, seed):
    return _test(P.x, Q.x, s, seed, sigma=s.sigma)


@MEASURES.register()
def mmd2_mixture(P, Q, s, seed):
    return _mixture(P.x, Q.x, s, s.sigma)


@MEASURES.register()
def mmd_mixture_p_value(P, Q, s, seed):
    return _mixture_test(P.x, Q.x, s, seed, s.sigma)


@MEASURES.register()
def mmd2_mixture_values(P, Q, s, seed):
    """The bandwidth mixture on each image's histogram of pixel values (`value_histograms`):
    an MMD that sees what the histogram KL sees, with a test that permutes whole images."""
    return _mixture(*value_histograms(P.x, Q.x, s.bins), s)


@MEASURES.register()
def mmd_mixture_values_p_value(P, Q, s, seed):
    return _mixture_test(*value_histograms(P.x, Q.x, s.bins), s, seed)


@MEASURES.register()
def kl_knn_features_pq(P, Q, s, seed):
    return dv.kl_knn(P.f, Q.f, k=s.knn_k)


@MEASURES.register()
def kl_knn_features_qp(P, Q, s, seed):
    return dv.kl_knn(Q.f, P.f, k=s.knn_k)


@MEASURES.register()
def mmd2_mixture_features(P, Q, s, seed):
    """The bandwidth mixture on classifier features: what the classifier has learnt to tell
    apart (strokes, shapes) instead of pixel distances, where one far-off pixel counts as
    much as a missing stroke."""
    return _mixture(P.f, Q.f, s, s.sigma)


@MEASURES.register()
def mmd_mixture_features_p_value(P, Q, s, seed):
    return _mixture_test(P.f, Q.f, s, seed, s.sigma)


@MEASURES.register()
def kid(P, Q, s, seed):
    """KID's analogue: unbiased MMD^2 on classifier features, polynomial kernel, with its
    standard error."""
    return dv.mmd_with_error(P.f, Q.f, kernel="polynomial")


@MEASURES.register()
def kid_p_value(P, Q, s, seed):
    return _test(P.f, Q.f, s, seed, kernel="polynomial")
