"""Tests for ucl.divergence against closed forms, independent solvers and naive loops.

Tolerances are derived from the sample size (standard errors, known bias bounds) with
fixed seeds; each closed-form test also checks its tolerance is a small fraction of the
value it tests, so a broken estimator cannot hide behind a loose bound.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist
from scipy.special import digamma, gamma
from scipy.stats import norm, wasserstein_distance

import ucl.divergence as dv
from ucl.divergence import _distances, _pooled, kernel_mmd

# ---------------------------------------------------------------- closed forms


def kl_uniform_normal(a: float, b: float, s: float, d: int) -> float:
    """KL(U([a, b]^d) || N(0, s^2 I)) = -log vol + d/2 log(2 pi s^2) + E||x||^2 / (2 s^2)."""
    second_moment = d * (a * a + a * b + b * b) / 3.0  # E||x||^2 under the uniform box
    return (
        -d * math.log(b - a) + d / 2 * math.log(2 * math.pi * s * s) + second_moment / (2 * s * s)
    )


def gaussian_kernel_mean(sigma, s1, s2, delta, d):
    """E exp(-||x - y||^2 / (2 sigma^2)) for x ~ N(mu1, s1^2 I), y ~ N(mu2, s2^2 I)."""
    v = sigma**2 + s1**2 + s2**2
    return (sigma**2 / v) ** (d / 2) * math.exp(-(delta**2) / (2 * v))


def mmd2_normals(sigma, s1, s2, delta, d):
    """Population MMD^2 between N(mu1, s1^2 I) and N(mu2, s2^2 I), ||mu1 - mu2|| = delta."""
    kxx = gaussian_kernel_mean(sigma, s1, s1, 0.0, d)
    kyy = gaussian_kernel_mean(sigma, s2, s2, 0.0, d)
    kxy = gaussian_kernel_mean(sigma, s1, s2, delta, d)
    return kxx, kyy, kxx + kyy - 2 * kxy


# ---------------------------------------------------------------- naive references


def naive_kl_knn(P, Q, k):
    """Adaptive WKV estimator with explicit per-point loops (reference for small n)."""
    n, d = P.shape
    m = len(Q)
    DPP, DPQ = cdist(P, P), cdist(P, Q)
    total = 0.0
    for i in range(n):
        own = np.sort(np.delete(DPP[i], i))
        other = np.sort(DPQ[i])
        ki = next(r for r in range(k, n) if own[r - 1] > 0)
        li = next(r for r in range(k, m + 1) if other[r - 1] > 0)
        total += d * math.log(other[li - 1] / own[ki - 1]) + digamma(ki) - digamma(li)
    return total / n + math.log(m / (n - 1))


def naive_mmd2(X, Y, sigma, unbiased):
    def k(a, b):
        return math.exp(-np.sum((a - b) ** 2) / (2 * sigma**2))

    n, m = len(X), len(Y)
    xx = sum(k(X[i], X[j]) for i in range(n) for j in range(n) if not (unbiased and i == j))
    yy = sum(k(Y[i], Y[j]) for i in range(m) for j in range(m) if not (unbiased and i == j))
    xy = sum(k(x, y) for x in X for y in Y)
    if unbiased:
        return xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2 * xy / (n * m)
    return xx / n**2 + yy / m**2 - 2 * xy / (n * m)


# ---------------------------------------------------------------- input handling


@pytest.mark.parametrize(
    "P, Q, fragment",
    [
        (np.zeros((4, 2, 2)), np.zeros((4, 4)), "reshape"),
        (np.zeros((4, 2)), np.zeros((4, 3)), "same dimension"),
        (np.array([[0.0, np.nan], [1.0, 1.0]]), np.zeros((2, 2)), "non-finite"),
        (np.zeros((3, 1)), np.array([0.0, np.inf]), "non-finite"),
        (np.zeros((0, 2)), np.zeros((3, 2)), "empty"),
        (np.float64(1.0), np.zeros(3), "got 0-D"),
        ([["a", "b"]], np.zeros((3, 2)), "float64"),
    ],
)
@pytest.mark.parametrize(
    "measure",
    [dv.kl_histogram, dv.kl_knn, dv.emd_opencv, dv.emd_exact, dv.MMD, dv.median_sigma],
)
def test_invalid_inputs_raise_value_error(measure, P, Q, fragment):
    with pytest.raises(ValueError, match=fragment):
        measure(P, Q)


def test_invalid_parameters_raise_value_error():
    rng = np.random.default_rng(0)
    P, Q = rng.normal(size=(20, 2)), rng.normal(size=(15, 2))
    with pytest.raises(ValueError, match="k must be between 1 and 15"):
        dv.kl_knn(P, Q, k=16)
    with pytest.raises(ValueError, match="at least 2 samples"):
        dv.kl_knn(P[:1], Q)
    with pytest.raises(ValueError, match="method"):
        dv.kl_knn(P, Q, method="ball")
    with pytest.raises(ValueError, match="emd_opencv"):
        dv.emd_exact(P, Q)
    with pytest.raises(ValueError, match="sigma must be a finite positive"):
        dv.MMD(P, Q, sigma=0.0)
    with pytest.raises(ValueError, match="sigma"):
        dv.kernel(P, Q, sigma=-1.0)
    with pytest.raises(ValueError, match="unbiased"):
        dv.MMD(P[:1], Q, unbiased=True)
    with pytest.raises(ValueError, match="permutations"):
        dv.mmd_permutation_test(P, Q, permutations=0)
    with pytest.raises(ValueError, match="max_cells"):
        dv.kl_histogram(rng.random((10, 8)), rng.random((10, 8)), bins=10)
    with pytest.raises(ValueError, match="one int per coordinate"):
        dv.kl_histogram(P, Q, bins=[3, 4, 5])
    with pytest.raises(ValueError, match="smoothing"):
        dv.kl_histogram(P, Q, smoothing=-1.0)
    with pytest.raises(ValueError, match="sigma = 0"):
        dv.median_sigma(np.zeros((5, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="no neighbour at a positive distance"):
        dv.kl_knn(np.zeros((5, 2)), Q)


def test_torch_and_1d_inputs_match_numpy():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=50), rng.normal(0.5, 1.0, size=50)
    X, Y = x[:, None], y[:, None]
    tx, ty = torch.tensor(x, requires_grad=True), torch.from_numpy(y)
    for measure in (dv.kl_knn, dv.emd_exact, dv.MMD, dv.median_sigma):
        expected = measure(X, Y)
        assert measure(x, y) == expected
        assert measure(tx, ty) == expected
    # float32 tensors are accepted; they hold x rounded to float32.
    assert dv.MMD(tx.float(), ty.float()) == pytest.approx(dv.MMD(X, Y), rel=1e-5)
    assert dv.kl_histogram(x, y, 5, smoothing=1.0) == dv.kl_histogram(X, Y, 5, smoothing=1.0)


# ---------------------------------------------------------------- KL


@pytest.mark.parametrize("a, b, s", [(-1.0, 1.0, 1.0), (-1.0, 1.0, 1.5), (-0.5, 1.5, 0.7)])
def test_kl_knn_uniform_box_vs_normal_3d(a, b, s):
    d, n, m = 3, 50_000, 100_000
    rng = np.random.default_rng(0)
    P, Q = rng.uniform(a, b, size=(n, d)), rng.normal(0.0, s, size=(m, d))
    truth = kl_uniform_normal(a, b, s, d)
    error = dv.kl_knn(P, Q) - truth
    # Noise: each log NN-distance^d term (k = 1) has variance pi^2/6; the Q side is as
    # noisy as the number of Q points inside the box, m_eff = m Q(box).
    m_eff = m * (norm.cdf(b / s) - norm.cdf(a / s)) ** d
    se = math.sqrt(math.pi**2 / 6 * (1 / n + 1 / m_eff))
    # Bias: P's support has a boundary; points within a NN distance of a face see at most
    # half a ball, which lowers the estimate by at most log 2 each.
    side = b - a
    mean_nn = gamma(1 + 1 / d) * (n * math.pi ** (d / 2) / gamma(d / 2 + 1)) ** (-1 / d) * side
    boundary_bias = math.log(2) * 2 * d * mean_nn / side
    assert -(boundary_bias + 4 * se) <= error <= 4 * se
    assert boundary_bias + 4 * se < 0.1 * truth


@pytest.mark.parametrize("a, b, s", [(-1.0, 1.0, 1.0), (-1.0, 1.0, 2.0), (-0.5, 1.5, 0.7)])
def test_kl_histogram_uniform_vs_normal_1d(a, b, s):
    n = m = 200_000
    bins = 200
    rng = np.random.default_rng(0)
    P, Q = rng.uniform(a, b, size=n), rng.normal(0.0, s, size=m)
    truth = kl_uniform_normal(a, b, s, 1)
    error = dv.kl_histogram(P, Q, bins) - truth
    # Bias: the two bins cut by a or b hold a fraction f of a bin of P's mass and
    # contribute (f w / L) log f too little, at most w / (e L) each (w bin width, L = b - a).
    width = (max(P.max(), Q.max()) - min(P.min(), Q.min())) / bins
    edge_bias = 2 * width / (math.e * (b - a))
    # Noise: log(p/q) = const + x^2 / (2 s^2) over P's sample, plus the Q counts' noise
    # E_P[p/q] / m; the plug-in's upward bias is below bins / m times E_P[p/q].
    ratio = np.mean(1 / ((b - a) * norm.pdf(P, scale=s)))
    se = math.sqrt(np.var(P**2 / (2 * s * s)) / n + ratio / m)
    upward = bins * ratio / m
    assert -(edge_bias + 4 * se) <= error <= 4 * se + upward
    assert edge_bias + 4 * se + upward < 0.1 * truth


def test_kl_histogram_empty_bins_infinite_unless_smoothed():
    rng = np.random.default_rng(2)
    P, Q = rng.uniform(0, 2, size=(500, 2)), rng.uniform(0, 1, size=(500, 2))
    assert dv.kl_histogram(P, Q, bins=4) == math.inf
    smoothed = dv.kl_histogram(P, Q, bins=4, smoothing=1.0)
    assert 0 < smoothed < math.inf
    # Q's support lies inside P's: finite without smoothing in the other direction.
    assert 0 < dv.kl_histogram(Q, P, bins=4) < math.inf
    # More smoothing pulls both histograms towards uniform, hence the value towards 0.
    assert dv.kl_histogram(P, Q, bins=4, smoothing=100.0) < smoothed


def test_kl_histogram_is_discrete_kl_on_shared_bins():
    rng = np.random.default_rng(3)
    P, Q = rng.normal(size=(300, 2)), rng.normal(0.3, 1.2, size=(400, 2))
    lo, hi = np.minimum(P.min(0), Q.min(0)), np.maximum(P.max(0), Q.max(0))
    edges = [np.linspace(lo[j], hi[j], 6 + 1) for j in range(2)]
    p = np.histogramdd(P, bins=edges)[0].ravel() + 0.5
    q = np.histogramdd(Q, bins=edges)[0].ravel() + 0.5
    p, q = p / p.sum(), q / q.sum()
    expected = float(np.sum(p * np.log(p / q)))
    assert dv.kl_histogram(P, Q, bins=6, smoothing=0.5) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("k", [1, 3])
def test_kl_knn_matches_naive_with_duplicates(k):
    rng = np.random.default_rng(4)
    base = rng.normal(size=(30, 4))
    # Duplicates inside P (up to 6 copies, beyond the first K neighbours) and shared with Q.
    P = np.vstack([base, base[:10], base[:3], base[:3], base[:3], base[:3]])
    Q = np.vstack([rng.normal(0.2, 1.0, size=(40, 4)), base[:5], base[:5]])
    expected = naive_kl_knn(P, Q, k)
    assert math.isfinite(expected)
    for method in ("tree", "brute"):
        assert dv.kl_knn(P, Q, k=k, method=method) == pytest.approx(expected, rel=1e-10)


def test_kl_knn_without_duplicates_is_the_fixed_k_formula():
    rng = np.random.default_rng(5)
    P, Q = rng.normal(size=(80, 3)), rng.normal(0.5, 1.0, size=(60, 3))
    rho = np.sort(cdist(P, P), axis=1)[:, 2]  # column 0 is the point itself
    nu = np.sort(cdist(P, Q), axis=1)[:, 1]
    expected = 3 * np.mean(np.log(nu / rho)) + math.log(60 / 79)
    assert dv.kl_knn(P, Q, k=2) == pytest.approx(expected, rel=1e-12)


def test_kl_knn_high_dimension_brute_force_chunks(monkeypatch):
    rng = np.random.default_rng(6)
    P = rng.random((300, 784))
    P[50:60] = P[:10]  # repeated images
    Q = rng.random((250, 784)) ** 1.5
    expected = dv.kl_knn(P, Q, k=2)
    assert math.isfinite(expected) and expected > 0
    monkeypatch.setattr(_distances, "CHUNK_ELEMENTS", 50_000)  # 20 row chunks of 15
    assert dv.kl_knn(P, Q, k=2) == pytest.approx(expected, rel=1e-12)
    assert dv.kl_knn(P[:60], Q[:70], k=2) == pytest.approx(
        naive_kl_knn(P[:60], Q[:70], 2), rel=1e-10
    )


# ---------------------------------------------------------------- EMD


@pytest.mark.parametrize("n, shift, scale", [(10, 0.0, 1.0), (200, 0.5, 1.0), (300, -1.0, 3.0)])
def test_emd_exact_1d_matches_scipy(n, shift, scale):
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=n), rng.normal(shift, scale, size=n)
    assert dv.emd_exact(x, y) == pytest.approx(wasserstein_distance(x, y), rel=1e-12)


def test_emd_exact_1d_embedded_along_an_axis():
    # W1 of distributions living on one coordinate axis of R^4 is their 1-D W1.
    rng = np.random.default_rng(7)
    x, y = rng.exponential(size=150), rng.uniform(0, 2, size=150)
    P, Q = np.zeros((150, 4)), np.zeros((150, 4))
    P[:, 2], Q[:, 2] = x, y
    assert dv.emd_exact(P, Q) == pytest.approx(wasserstein_distance(x, y), rel=1e-12)


def test_emd_translation_is_the_shift_length():
    # W1(mu, mu + v) = ||v||: the identity coupling attains it, and the 1-Lipschitz
    # f(x) = x.v / ||v|| shows nothing cheaper exists (Kantorovich-Rubinstein).
    rng = np.random.default_rng(8)
    P = rng.normal(size=(60, 5))
    v = np.array([0.3, -1.0, 0.0, 2.0, 0.5])
    assert dv.emd_exact(P, P + v) == pytest.approx(np.linalg.norm(v), rel=1e-12)
    assert dv.emd_opencv(P, P + v) == pytest.approx(np.linalg.norm(v), rel=1e-4)


@pytest.mark.parametrize("n, d", [(5, 2), (40, 3), (80, 10)])
def test_emd_exact_matches_pot(n, d):
    import ot

    rng = np.random.default_rng(n + d)
    P, Q = rng.normal(size=(n, d)), rng.standard_t(3, size=(n, d))
    w = np.full(n, 1.0 / n)
    expected = ot.emd2(w, w, cdist(P, Q))
    exact = dv.emd_exact(P, Q)
    assert exact == pytest.approx(expected, rel=1e-10)
    # cv2.EMD works in float32 and may stop early: never meaningfully below the optimum.
    assert dv.emd_opencv(P, Q) >= exact * (1 - 1e-5)


def test_emd_opencv_unequal_sizes_matches_pot():
    import ot

    rng = np.random.default_rng(9)
    P, Q = rng.normal(size=(30, 3)), rng.normal(1.0, 1.0, size=(45, 3))
    expected = ot.emd2(np.full(30, 1 / 30), np.full(45, 1 / 45), cdist(P, Q))
    assert dv.emd_opencv(P, Q) == pytest.approx(expected, rel=1e-4)


# ---------------------------------------------------------------- MMD


def test_kernel_matches_definition():
    rng = np.random.default_rng(10)
    A, B = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    expected = np.exp(-cdist(A, B, "sqeuclidean") / (2 * 0.8**2))
    assert np.allclose(dv.kernel(A, B, 0.8), expected, rtol=1e-12, atol=0)
    K = dv.kernel(torch.from_numpy(A), A, 0.8)
    assert np.array_equal(K, K.T) and np.all(np.diag(K) == 1.0)


@pytest.mark.parametrize("n, m", [(5, 4), (6, 4), (300, 200), (700, 650)])
def test_median_sigma_is_median_pooled_distance(n, m):
    rng = np.random.default_rng(n)
    P, Q = rng.normal(size=(n, 3)), rng.normal(1.0, 2.0, size=(m, 3))
    expected = np.median(pdist(np.vstack([P, Q])))
    assert dv.median_sigma(P, Q) == pytest.approx(expected, rel=1e-12)
    # Heavily tied distances (integer grid) exercise the bracket's edges.
    P, Q = rng.integers(0, 3, size=(n, 2)), rng.integers(0, 4, size=(m, 2))
    expected = np.median(pdist(np.vstack([P, Q]).astype(float)))
    assert dv.median_sigma(P, Q) == pytest.approx(expected, rel=1e-12)


def test_median_sigma_exact_when_the_bracket_misses(monkeypatch):
    # A zero-width bracket around the subsample's median almost surely misses the two
    # middle pairs: the full selection must take over and give the same exact median.
    monkeypatch.setattr(_pooled, "BRACKET_HALF_WIDTH", 0.0)
    rng = np.random.default_rng(18)
    P, Q = rng.normal(size=(400, 3)), rng.normal(0.5, 1.0, size=(300, 3))
    expected = np.median(pdist(np.vstack([P, Q])))
    assert dv.median_sigma(P, Q) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "d, delta, s1, s2, sigma",
    [(1, 1.0, 1.0, 1.0, 1.0), (2, 1.0, 1.0, 1.5, 2.0), (3, 0.0, 1.0, 0.5, 1.0)],
)
def test_mmd_matches_population_closed_form(d, delta, s1, s2, sigma):
    n = 3000
    rng = np.random.default_rng(11)
    mu2 = np.zeros(d)
    mu2[0] = delta
    X, Y = rng.normal(0.0, s1, size=(n, d)), rng.normal(mu2, s2, size=(n, d))
    kxx, kyy, truth = mmd2_normals(sigma, s1, s2, delta, d)
    # Standard error of the U-statistic from its kernel h over pairs z_i = (x_i, y_i),
    # h(z_i, z_j) = k(x_i, x_j) + k(y_i, y_j) - k(x_i, y_j) - k(x_j, y_i), |h| <= 2:
    # first-order term 2 sd(h1) / sqrt(n), h1(z_i) = E h(z_i, Z), plus a bound on the
    # degenerate second-order term, sqrt(2 E h^2) / n <= 2 sqrt(2) / n. sd(h1) is a
    # population quantity, estimated on the first n_sd pairs.
    n_sd = 1000
    x, y = X[:n_sd], Y[:n_sd]
    rows = [dv.kernel(A, B, sigma).sum(axis=1) for A, B in ((x, x), (y, y), (x, y), (y, x))]
    h1 = rows[0] + rows[1] - rows[2] - rows[3] - 2 + 2 * dv.kernel(x, y, sigma).diagonal()
    h1 /= n_sd - 1
    se = 2 * h1.std() / math.sqrt(n) + 2 * math.sqrt(2) / n
    tol = 4 * se
    assert tol < max(0.25 * truth, 0.01)
    assert dv.MMD(X, Y, sigma, unbiased=True) == pytest.approx(truth, abs=tol)
    # The biased estimate is off by the diagonal terms: E = MMD^2 + (1 - kxx)/n + (1 - kyy)/n.
    biased_mean = truth + (1 - kxx) / n + (1 - kyy) / n
    assert dv.MMD(X, Y, sigma) == pytest.approx(biased_mean, abs=tol)


def test_mmd_matches_naive_double_loop():
    rng = np.random.default_rng(12)
    X, Y = rng.normal(size=(9, 2)), rng.normal(0.5, 1.0, size=(7, 2))
    for unbiased in (False, True):
        expected = naive_mmd2(X, Y, 1.3, unbiased)
        assert dv.MMD(X, Y, 1.3, unbiased=unbiased) == pytest.approx(expected, rel=1e-12)
    sigma = np.median(pdist(np.vstack([X, Y])))
    assert dv.mmd(X, Y) == pytest.approx(naive_mmd2(X, Y, sigma, False), rel=1e-12)


def test_biased_mmd_of_a_sample_with_itself_is_exactly_zero():
    P = np.random.default_rng(13).random((200, 784))
    assert dv.MMD(P, P) == 0.0
    assert dv.MMD(P, P.copy(), sigma=3.0) == 0.0
    assert dv.MMD(torch.from_numpy(P), P) == 0.0
    assert dv.mmd_permutation_test(P, P, permutations=20)[0] == 0.0


def test_permutation_test_separates_different_from_same():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(200, 2))
    stat, p = dv.mmd_permutation_test(X, rng.normal(0.5, 1.0, size=(200, 2)))
    assert stat > 0 and p == pytest.approx(1 / 1001)  # no permutation beats the data
    stat, p = dv.mmd_permutation_test(X, rng.normal(size=(200, 2)))
    assert p > 0.05


@pytest.mark.parametrize("unbiased", [False, True])
def test_permutation_statistics_equal_naive_loop(unbiased, monkeypatch):
    rng = np.random.default_rng(15)
    P, Q = rng.normal(size=(25, 3)), rng.normal(0.3, 1.0, size=(18, 3))
    sigma = dv.median_sigma(P, Q)
    stat, p, null = dv.mmd_permutation_test(
        P, Q, permutations=50, seed=3, unbiased=unbiased, return_null=True
    )
    assert stat == dv.MMD(P, Q, unbiased=unbiased)
    assert p == (1 + np.sum(null >= stat)) / 51
    pooled = np.vstack([P, Q])
    masks = dv.permutation_masks(25, 18, 50, np.random.default_rng(3))
    for j in range(5):  # a naive recomputation of a few permutations
        X, Y = pooled[masks[j]], pooled[~masks[j]]
        assert null[j] == pytest.approx(dv.MMD(X, Y, sigma, unbiased), rel=1e-10, abs=1e-13)
    # Batching the permutations does not change them.
    monkeypatch.setattr(kernel_mmd, "CHUNK_ELEMENTS", 43 * 7)
    _, _, batched = dv.mmd_permutation_test(
        P, Q, permutations=50, seed=3, unbiased=unbiased, return_null=True
    )
    assert np.allclose(batched, null, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- convergence


def test_estimators_converge_as_n_grows():
    rng = np.random.default_rng(17)
    truth_kl = kl_uniform_normal(-1.0, 1.0, 1.0, 3)
    _, _, truth_mmd = mmd2_normals(1.0, 1.0, 1.0, 1.0, 2)
    shift = np.array([1.0, 0.0])  # W1(N(0, I), N(shift, I)) = ||shift|| = 1
    errors = {"kl_knn": [], "MMD": [], "emd_exact": []}
    for n in (100, 1000):
        P, Q = rng.uniform(-1, 1, size=(10 * n, 3)), rng.normal(size=(10 * n, 3))
        errors["kl_knn"].append(abs(dv.kl_knn(P, Q) - truth_kl))
        X, Y = rng.normal(size=(n, 2)), rng.normal(shift, 1.0, size=(n, 2))
        errors["emd_exact"].append(abs(dv.emd_exact(X, Y) - 1.0))
        errors["MMD"].append(abs(dv.MMD(X, Y, 1.0, unbiased=True) - truth_mmd))
    for name, (small_n, large_n) in errors.items():
        assert large_n < small_n, name
