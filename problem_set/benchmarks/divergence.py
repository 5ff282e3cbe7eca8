"""Timings of the divergence measures on image-sized samples (1000 by 784 by default),
as seconds and as ratios to the arithmetic each one cannot avoid, measured in the same
process:

    python scripts/bench.py --only divergence

References (float64, torch):

- "Gram": one ``torch.mm`` of the stacked 2n-by-d samples by its transpose. It holds every
  pooled pair distance, so it bounds what MMD (the median heuristic included) and the kNN
  KL in both directions need (the kNN KL needs exactly its four n-by-n blocks).
- "indicator product": one (B, 2n) 0/1 matrix times the pooled (2n, 2n) kernel matrix,
  per row: the arithmetic of one permutation of the MMD permutation test.

Each ratio is the median over ``repeats`` of (measure / reference) timed back to back, so
load that comes and goes hits both; each time is the median of ``repeats`` calls after one
untimed warm-up call.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from ucl.divergence import (
    MMD,
    emd_exact,
    emd_opencv,
    kl_histogram,
    kl_knn,
    median_sigma,
    mmd_permutation_test,
    mmd_with_error,
)
from ucl.divergence._arrays import as_pair
from ucl.divergence.kernel_mmd import pooled_kernel_matrix
from ucl.divergence.measures import value_histograms

# Targets for n = 1000 samples of d = 784 on 2 CPU cores: seconds per call, and ratios.
TARGET_MMD_S = 0.05
TARGET_MMD_RATIO = 1.5  # MMD with the median heuristic against the Gram product
TARGET_PERMUTATION_S = 1.0
TARGET_EMD_EXACT_S = 0.5
TARGET_KNN_BOTH_S = 0.5

PERMUTATIONS = 1000
FEW_PERMUTATIONS = 10  # the per-permutation cost is the difference to a test with this many
# cv2.EMD grows roughly like n**2 to n**3: above this many seconds per call (predicted
# from a probe at OPENCV_PROBE_N points, assuming n**3) it is timed on fewer points.
OPENCV_BUDGET_S = 30.0
OPENCV_PROBE_N = 250
# kl_histogram cannot bin 784 dimensions (bins**784 cells): it is timed on the 1-D
# distribution of all pixel values instead, with this many bins.
HISTOGRAM_BINS = 64
VALUE_BINS = 10  # conf/divergence/base.yaml's bins, as the GAN study uses them


def _median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls after an untimed warm-up, and the last result."""
    value = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def _ratio(fn: Callable[[], object], reference: Callable[[], object], repeats: int):
    """(median of fn / reference timed back to back, median seconds of fn, last result)."""
    fn(), reference()
    ratios, times, value = [], [], None
    for _ in range(repeats):
        start = time.perf_counter()
        reference()
        ref = time.perf_counter() - start
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
        ratios.append(times[-1] / ref)
    return statistics.median(ratios), statistics.median(times), value


def _row(benchmark: str, value: float, unit: str, target=None, note: str = "") -> dict:
    return {"benchmark": benchmark, "value": value, "unit": unit, "target": target,
            "sense": "<=", "note": note}  # fmt: skip


def _time_opencv(P, Q, repeats: int, budget_s: float) -> dict:
    n = len(P)
    probe = min(n, OPENCV_PROBE_N)
    start = time.perf_counter()
    emd_opencv(P[:probe], Q[:probe])
    probe_s = time.perf_counter() - start
    predicted = probe_s * (n / probe) ** 3
    if predicted <= budget_s:  # the probe was the warm-up
        reps = max(1, min(repeats, int(budget_s // max(predicted, 1e-9))))
        seconds = statistics.median(_once(lambda: emd_opencv(P, Q)) for _ in range(reps))
        note = "float32 simplex with an iteration cap; compare with emd_exact"
        return _row("emd_opencv (cv2.EMD)", seconds, "s", note=note)
    n_small = min(n, max(2, int(probe * (budget_s / probe_s) ** (1 / 3))))
    seconds = _once(lambda: emd_opencv(P[:n_small], Q[:n_small]))
    note = (
        f"timed at n = {n_small}, not {n}: predicted {predicted:.0f} s per call at n = {n} "
        f"from {probe_s:.2f} s at n = {probe}, over the {budget_s:.0f} s budget"
    )
    return _row("emd_opencv (cv2.EMD)", seconds, "s", note=note)


def _once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(
    repeats: int = 5,
    n: int = 1000,
    d: int = 784,
    seed: int = 0,
    P=None,
    Q=None,
    opencv_budget_s: float = OPENCV_BUDGET_S,
) -> list[dict]:
    """Time every measure; returns rows ``benchmark``, ``value``, ``unit`` ("s" or "x" for
    a ratio), ``target`` (None: for information), ``sense``, ``note``.

    Without ``P`` and ``Q`` the samples are seeded pixel-like data in [0, 1]: P uniform,
    Q uniform**1.5 (darker). Pass e.g. two sets of flattened MNIST digits (n-by-784) to
    time real images; emd_exact and the OpenCV EMD use the first min(n, m) rows of each.
    """
    if P is None or Q is None:
        rng = np.random.default_rng(seed)
        P, Q = rng.random((n, d)), rng.random((n, d)) ** 1.5
    P, Q = as_pair(P, Q)
    n, d = len(P), P.shape[1]
    n_eq = min(len(P), len(Q))
    threads = torch.get_num_threads()
    rows = []

    Z = torch.from_numpy(np.concatenate([P, Q]))
    gram_s, _ = _median_time(lambda: torch.mm(Z, Z.T), repeats)
    note = f"reference: torch.mm of the stacked ({len(Z)}, {d}) samples by its transpose"
    rows.append(_row("Gram reference", gram_s, "s", note=f"{note}, {threads} threads"))

    def gram():
        return torch.mm(Z, Z.T)

    ratio, seconds, value = _ratio(lambda: MMD(P, Q), gram, repeats)
    rows.append(_row("MMD / Gram", ratio, "x", TARGET_MMD_RATIO,
                     f"biased MMD^2 = {value:.4g}, median-heuristic sigma included"))  # fmt: skip
    rows.append(_row("MMD", seconds, "s", TARGET_MMD_S, "median-heuristic sigma included"))
    sigma = median_sigma(P, Q)
    ratio, seconds, _ = _ratio(lambda: MMD(P, Q, sigma), gram, repeats)
    rows.append(_row("MMD (sigma given) / Gram", ratio, "x", note=f"{seconds:.4f} s"))
    ratio, seconds, _ = _ratio(lambda: MMD(P, Q, kernel="mixture"), gram, repeats)
    rows.append(_row("MMD mixture / Gram", ratio, "x",
                     note=f"{seconds:.4f} s; Gaussians at 0.25x-4x the median"))  # fmt: skip

    def values_mmd():  # the GAN study's value-histogram variant: histograms, then a small MMD
        hp, hq = value_histograms(P, Q, VALUE_BINS)
        return MMD(hp, hq, unbiased=True, kernel="mixture")

    ratio, seconds, _ = _ratio(values_mmd, gram, repeats)
    rows.append(_row("MMD mixture on value histograms / Gram", ratio, "x",
                     note=f"{seconds:.4f} s; each image's {VALUE_BINS}-bin histogram of its "
                     "pixel values, then the mixture on those"))  # fmt: skip
    ratio, seconds, _ = _ratio(lambda: mmd_with_error(P, Q), gram, repeats)
    rows.append(_row("MMD polynomial with standard error / Gram", ratio, "x",
                     note=f"{seconds:.4f} s; KID's kernel on the {d}-D inputs"))  # fmt: skip

    # The permutation test: total time, and the cost of one permutation against the product
    # of one indicator row with the pooled kernel matrix (its unavoidable arithmetic).
    def test(permutations: int):
        return mmd_permutation_test(P, Q, permutations=permutations, seed=seed)

    # The two sizes alternate and the differences are taken call by call, so that load that
    # comes and goes does not land on one size only.
    test(PERMUTATIONS), test(FEW_PERMUTATIONS)
    totals, extra = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        _, p_value = test(PERMUTATIONS)
        totals.append(time.perf_counter() - start)
        start = time.perf_counter()
        test(FEW_PERMUTATIONS)
        extra.append(totals[-1] - (time.perf_counter() - start))
    total_s = statistics.median(totals)
    K = pooled_kernel_matrix(P, Q)
    K_t = torch.from_numpy(K)
    masks = np.zeros((PERMUTATIONS, len(K)))
    masks[:, :n] = 1.0
    A = torch.from_numpy(np.random.default_rng(seed).permuted(masks, axis=1))
    product_s, _ = _median_time(lambda: torch.mm(A, K_t), repeats)
    per_permutation = statistics.median(extra) / (PERMUTATIONS - FEW_PERMUTATIONS)
    rows.append(_row("MMD permutation test", total_s, "s", TARGET_PERMUTATION_S,
                     f"{PERMUTATIONS} permutations, median sigma; p = {p_value:.4g}"))  # fmt: skip
    per_row = product_s / PERMUTATIONS
    note = (
        f"{per_permutation * 1e3:.3f} ms per permutation against {per_row * 1e3:.3f} ms "
        f"for one indicator row times the pooled ({len(K)}, {len(K)}) kernel matrix"
    )
    rows.append(_row("permutation / indicator product", per_permutation * PERMUTATIONS
                     / product_s, "x", note=note))  # fmt: skip

    ratio, seconds, values = _ratio(lambda: (kl_knn(P, Q), kl_knn(Q, P)), gram, repeats)
    note = f"k = 1; D(P||Q) = {values[0]:.4g}, D(Q||P) = {values[1]:.4g}"
    rows.append(_row("kl_knn both directions / Gram", ratio, "x", note=note))
    rows.append(_row("kl_knn both directions", seconds, "s", TARGET_KNN_BOTH_S))

    Pe, Qe = P[:n_eq], Q[:n_eq]
    seconds, _ = _median_time(lambda: emd_exact(Pe, Qe), repeats)
    note = "Euclidean cost matrix + linear_sum_assignment"
    rows.append(_row("emd_exact", seconds, "s", TARGET_EMD_EXACT_S, note))
    rows.append(_time_opencv(Pe, Qe, repeats, opencv_budget_s))

    flat_p, flat_q = P.reshape(-1), Q.reshape(-1)
    seconds, _ = _median_time(lambda: kl_histogram(flat_p, flat_q, HISTOGRAM_BINS), repeats)
    note = f"1-D histogram of all {flat_p.size} pixel values, {HISTOGRAM_BINS} bins"
    rows.append(_row("kl_histogram", seconds, "s", note=note))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
