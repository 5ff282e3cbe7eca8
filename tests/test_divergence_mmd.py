"""MMD's kernels, its standard error, and its permutation test's calibration and power.

The calibration tests draw enough seeded null data sets that a test rejecting at 10%
instead of 5% (or at 2.5%) fails them with high probability, on inputs small enough to
keep them fast.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist
from scipy.stats import binom

import ucl.divergence as dv
from ucl.divergence import _pooled


def naive_mmd2(KPP, KQQ, KPQ, unbiased):
    n, m = len(KPP), len(KQQ)
    if unbiased:
        xx = (KPP.sum() - np.trace(KPP)) / (n * (n - 1))
        yy = (KQQ.sum() - np.trace(KQQ)) / (m * (m - 1))
        return xx + yy - 2 * KPQ.mean()
    return KPP.mean() + KQQ.mean() - 2 * KPQ.mean()


def gaussian_blocks(X, Y, sigmas):
    def k(A, B):
        return np.mean([np.exp(-cdist(A, B, "sqeuclidean") / (2 * s * s)) for s in sigmas], 0)

    return k(X, X), k(Y, Y), k(X, Y)


def polynomial_blocks(X, Y):
    def k(A, B):
        return (A @ B.T / A.shape[1] + 1.0) ** 3

    return k(X, X), k(Y, Y), k(X, Y)


@pytest.mark.parametrize("unbiased", [False, True])
def test_banded_gaussian_and_mixture_match_the_definition(unbiased, monkeypatch):
    # 5 bands per sample over 41 + 33 points: partial last bands on both sides.
    monkeypatch.setattr(_pooled, "BANDS_PER_SAMPLE", 5)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(41, 3)), rng.normal(0.4, 1.2, size=(33, 3))
    sigma = np.median(pdist(np.vstack([X, Y])))
    assert dv.median_sigma(X, Y) == pytest.approx(sigma, rel=1e-12)
    expected = naive_mmd2(*gaussian_blocks(X, Y, [sigma]), unbiased)
    assert dv.MMD(X, Y, unbiased=unbiased) == pytest.approx(expected, rel=1e-10)
    scales = dv.MIXTURE_SCALES
    expected = naive_mmd2(*gaussian_blocks(X, Y, [sigma * s for s in scales]), unbiased)
    got = dv.MMD(X, Y, unbiased=unbiased, kernel="mixture")
    assert got == pytest.approx(expected, rel=1e-10)
    expected = naive_mmd2(*gaussian_blocks(X, Y, [0.7, 2.1]), unbiased)
    got = dv.MMD(X, Y, sigma=1.0, unbiased=unbiased, kernel="mixture", scales=(0.7, 2.1))
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("unbiased", [False, True])
def test_polynomial_kernel_matches_the_definition(unbiased):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(30, 5)), rng.normal(0.3, 1.0, size=(25, 5))
    expected = naive_mmd2(*polynomial_blocks(X, Y), unbiased)
    got = dv.MMD(X, Y, unbiased=unbiased, kernel="polynomial")
    assert got == pytest.approx(expected, rel=1e-10)


def test_kernel_options_are_checked():
    X = np.zeros((5, 2))
    with pytest.raises(ValueError, match="kernel='rbf': use one of gaussian, mixture"):
        dv.MMD(X, X + 1, kernel="rbf")
    with pytest.raises(ValueError, match="sigma=1.0 applies to the Gaussian kernels only"):
        dv.MMD(X, X + 1, sigma=1.0, kernel="polynomial")
    with pytest.raises(ValueError, match="scales"):
        dv.MMD(X, X + 1, kernel="mixture", scales=(1.0, -2.0))
    with pytest.raises(ValueError, match="equal size n >= 4"):
        dv.mmd_with_error(X, np.zeros((6, 2)))


@pytest.mark.parametrize("kernel, sigma", [("polynomial", None), ("gaussian", 2.0)])
def test_standard_error_matches_the_spread_over_repeats(kernel, sigma):
    # The standard error of one estimate, averaged over many seeded data sets, against the
    # spread of the estimates themselves: both measure the same sd, to sampling error.
    rng = np.random.default_rng(2)
    estimates, errors = [], []
    for _ in range(300):
        X, Y = rng.normal(size=(60, 4)), rng.normal(0.25, 1.0, size=(60, 4))
        value, se = dv.mmd_with_error(X, Y, kernel=kernel, sigma=sigma)
        assert value == pytest.approx(dv.MMD(X, Y, sigma, unbiased=True, kernel=kernel))
        estimates.append(value)
        errors.append(se)
    spread = np.std(estimates, ddof=1)  # its own relative sd is about 1/sqrt(2 * 299) = 4%
    assert np.mean(errors) == pytest.approx(spread, rel=0.2)


# ------------------------------------------------------- calibration and power, every kernel

ALPHA = 0.05
NULL_SETS = 1000  # rejections ~ Binomial(1000, 0.05): mean 50, sd 6.9
PERMUTATIONS = 99  # p <= 0.05 has probability exactly 5 / 100 under the null
# Two-sided bounds with a false-alarm chance of 0.2% for a calibrated test; a test that
# rejects 10% of the time (mean 100) lands outside with probability 0.998, one that
# rejects 2.5% of the time (mean 25) with probability 0.87.
LOW, HIGH = binom.ppf(0.001, NULL_SETS, ALPHA), binom.isf(0.001, NULL_SETS, ALPHA)


@pytest.mark.parametrize("kernel", dv.KERNELS)
def test_permutation_test_rejects_five_percent_of_null_sets(kernel):
    assert binom.cdf(HIGH, NULL_SETS, 0.10) < 0.01 and binom.sf(LOW, NULL_SETS, 0.025) < 0.15
    rng = np.random.default_rng(3)
    rejections = 0
    for seed in range(NULL_SETS):
        X, Y = rng.normal(size=(12, 2)), rng.normal(size=(12, 2))
        _, p = dv.mmd_permutation_test(X, Y, permutations=PERMUTATIONS, seed=seed, kernel=kernel)
        rejections += p <= ALPHA
    assert LOW <= rejections <= HIGH, f"{rejections} of {NULL_SETS} null sets rejected"


@pytest.mark.parametrize("kernel", dv.KERNELS)
def test_permutation_test_has_power_on_a_shifted_pair(kernel):
    # 25 points of N(0, I) against 25 of N((1.2, 0), I) in 2-D: each kernel's test rejects
    # nearly always (measured 97-100% over 100 sets), far above the 5% of a blind test.
    rng = np.random.default_rng(4)
    rejections = 0
    for seed in range(100):
        X, Y = rng.normal(size=(25, 2)), rng.normal((1.2, 0.0), 1.0, size=(25, 2))
        _, p = dv.mmd_permutation_test(X, Y, permutations=PERMUTATIONS, seed=seed, kernel=kernel)
        rejections += p <= ALPHA
    assert rejections >= 80


def test_unbiased_and_biased_tests_agree_on_p_values_for_equal_sizes():
    # With n = m both statistics are increasing affine functions of the within-sample
    # kernel sum (the total and the diagonal are permutation invariant): same p-values.
    rng = np.random.default_rng(5)
    X, Y = rng.normal(size=(30, 3)), rng.normal(0.2, 1.0, size=(30, 3))
    for kernel in dv.KERNELS:
        _, p_biased = dv.mmd_permutation_test(X, Y, permutations=200, kernel=kernel)
        _, p_unbiased = dv.mmd_permutation_test(X, Y, permutations=200, unbiased=True,
                                                kernel=kernel)  # fmt: skip
        assert p_biased == p_unbiased and not math.isnan(p_biased)


def test_value_histograms_are_each_images_own_histogram_on_shared_bins():
    from ucl.divergence.measures import value_histograms

    rng = np.random.default_rng(6)
    P, Q = rng.random((5, 50)), rng.random((4, 50)) ** 2
    hp, hq = value_histograms(P, Q, 10)
    edges = np.linspace(min(P.min(), Q.min()), max(P.max(), Q.max()), 11)
    for H, X in ((hp, P), (hq, Q)):
        assert H.shape == (len(X), 10)
        for h, x in zip(H, X, strict=True):
            np.testing.assert_allclose(h, np.histogram(x, bins=edges)[0] / 50)


def test_the_value_histogram_test_sees_brightness_and_permutes_whole_images():
    # 40 "images" of 30 pixels each: Q's pixels are P's distribution squared (darker, the
    # same for every pixel), which the test on per-image value histograms rejects in every
    # set; two samples of the same distribution it rejects at about alpha
    from types import SimpleNamespace

    from ucl.divergence.measures import Sample, mmd_mixture_values_p_value

    s = SimpleNamespace(bins=10, mixture_scales=[0.25, 0.5, 1.0, 2.0, 4.0], permutations=200)
    rng = np.random.default_rng(7)
    shifted = same = 0
    for seed in range(40):
        P, Q, R = (Sample(rng.random((40, 30))) for _ in range(3))
        Q.x = Q.x**2
        shifted += mmd_mixture_values_p_value(P, Q, s, seed) <= ALPHA
        same += mmd_mixture_values_p_value(P, R, s, seed) <= ALPHA
    assert shifted == 40
    assert same <= 8  # a calibrated test: 2 expected, P(> 8) < 0.001
