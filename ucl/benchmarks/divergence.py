"""Timings of the divergence measures on image-sized samples (1000 by 784 by default).

    python -c "from ucl.benchmarks.divergence import run; print(run())"

Each row is the median wall time (``time.perf_counter``) over ``repeats`` calls, after
one untimed warm-up call (lazy imports, allocator, thread pool), and the target it
should meet. Targets are for the default 1000-by-784 inputs on 2 CPU cores.
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
)
from ucl.divergence._arrays import as_pair

# Target seconds per call, for n = 1000 samples of d = 784.
TARGET_MMD_S = 0.05
TARGET_PERMUTATION_S = 1.0
TARGET_EMD_EXACT_S = 0.5
TARGET_KNN_BOTH_S = 0.5

PERMUTATIONS = 1000
# cv2.EMD grows roughly like n**2 to n**3: above this many seconds per call (predicted
# from a probe at OPENCV_PROBE_N points, assuming n**3) it is timed on fewer points.
OPENCV_BUDGET_S = 30.0
OPENCV_PROBE_N = 250
# kl_histogram cannot bin 784 dimensions (bins**784 cells): it is timed on the 1-D
# distribution of all pixel values instead, with this many bins.
HISTOGRAM_BINS = 64


class Seconds(float):
    """Median seconds of a set of calls, carrying the fastest call as ``.min``."""

    min: float


def _timed_calls(fn: Callable[[], object], repeats: int) -> tuple[Seconds, object]:
    """Median seconds of ``repeats`` calls (with ``.min``), and the last call's result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    seconds = Seconds(statistics.median(times))
    seconds.min = min(times)
    return seconds, value


def _median_time(fn: Callable[[], object], repeats: int) -> tuple[Seconds, object]:
    fn()  # warm-up, untimed
    return _timed_calls(fn, repeats)


def _row(measure, seconds: Seconds, target, value, n, d, repeats, note=""):
    return {
        "measure": measure,
        "median_s": round(seconds, 4),
        "target_s": target,
        "ok": None if target is None else seconds <= target,
        "min_s": round(seconds.min, 4),
        "value": float(value) if np.isscalar(value) else value,
        "n": n,
        "d": d,
        "repeats": repeats,
        "note": note,
    }


def _time_opencv(P, Q, repeats: int, budget_s: float):
    n, d = len(P), P.shape[1]
    probe = min(n, OPENCV_PROBE_N)
    start = time.perf_counter()
    emd_opencv(P[:probe], Q[:probe])
    probe_s = time.perf_counter() - start
    predicted = probe_s * (n / probe) ** 3
    if predicted <= budget_s:
        # The probe was the warm-up; as many repeats as fit in the budget.
        reps = max(1, min(repeats, int(budget_s // max(predicted, 1e-9))))
        seconds, value = _timed_calls(lambda: emd_opencv(P, Q), reps)
        note = "float32 simplex with an iteration cap; compare with emd_exact"
        return _row("emd_opencv (cv2.EMD)", seconds, None, value, n, d, reps, note)
    n_small = max(2, int(probe * (budget_s / probe_s) ** (1 / 3)))
    n_small = min(n_small, n)
    seconds, value = _timed_calls(lambda: emd_opencv(P[:n_small], Q[:n_small]), 1)
    note = (
        f"timed at n = {n_small}, not {n}: predicted {predicted:.0f} s per call at n = {n} "
        f"from {probe_s:.2f} s at n = {probe}, over the {budget_s:.0f} s budget"
    )
    return _row("emd_opencv (cv2.EMD)", seconds, None, value, n_small, d, 1, note)


def run(
    repeats: int = 5,
    n: int = 1000,
    d: int = 784,
    seed: int = 0,
    P=None,
    Q=None,
    opencv_budget_s: float = OPENCV_BUDGET_S,
) -> list[dict]:
    """Time every measure; returns one dict per measure.

    Rows: ``measure``, ``median_s``, ``target_s`` (None: for information), ``ok``,
    ``min_s`` (fastest call), ``value`` (the measure's result, as a sanity check),
    ``n``, ``d``, ``repeats``, ``note``. The first row is a matmul baseline.

    Without ``P`` and ``Q`` the samples are seeded pixel-like data in [0, 1]: P uniform,
    Q uniform**1.5 (darker). Pass e.g. two sets of flattened MNIST digits as ``P`` and
    ``Q`` (n-by-784) to time real images; ``n`` and ``d`` then come from them, and
    emd_exact and the OpenCV EMD use the first min(n, m) rows of each.
    """
    if P is None or Q is None:
        rng = np.random.default_rng(seed)
        P, Q = rng.random((n, d)), rng.random((n, d)) ** 1.5
    P, Q = as_pair(P, Q)
    n, d = len(P), P.shape[1]
    n_eq = min(len(P), len(Q))
    sigma = median_sigma(P, Q)
    rows = []

    # Baseline: one float64 n-by-d times d-by-n product, the floor under every measure
    # here; compare rows against it when the machine is shared or slower.
    a, b = torch.from_numpy(P), torch.from_numpy(Q)
    seconds, _ = _median_time(lambda: a @ b.T, repeats)
    note = "baseline, not a measure: one float64 P @ Q.T (torch)"
    rows.append(_row("matmul baseline", seconds, None, float("nan"), n, d, repeats, note))

    seconds, value = _median_time(lambda: MMD(P, Q), repeats)
    note = "biased MMD^2, sigma by the median heuristic (included in the time)"
    rows.append(_row("MMD", seconds, TARGET_MMD_S, value, n, d, repeats, note))

    seconds, value = _median_time(lambda: MMD(P, Q, sigma), repeats)
    note = f"biased MMD^2, sigma = {sigma:.4g} given"
    rows.append(_row("MMD (sigma given)", seconds, TARGET_MMD_S, value, n, d, repeats, note))

    seconds, (stat, p_value) = _median_time(
        lambda: mmd_permutation_test(P, Q, permutations=PERMUTATIONS, seed=seed), repeats
    )
    note = f"{PERMUTATIONS} permutations, median-heuristic sigma; p = {p_value:.4g}"
    rows.append(
        _row("MMD permutation test", seconds, TARGET_PERMUTATION_S, stat, n, d, repeats, note)
    )

    Pe, Qe = P[:n_eq], Q[:n_eq]
    seconds, value = _median_time(lambda: emd_exact(Pe, Qe), repeats)
    note = "Euclidean cost matrix + linear_sum_assignment"
    rows.append(_row("emd_exact", seconds, TARGET_EMD_EXACT_S, value, n_eq, d, repeats, note))

    seconds, values = _median_time(lambda: (kl_knn(P, Q), kl_knn(Q, P)), repeats)
    note = f"k = 1; D(P||Q) = {values[0]:.4g}, D(Q||P) = {values[1]:.4g}"
    rows.append(
        _row("kl_knn both directions", seconds, TARGET_KNN_BOTH_S, values[0], n, d, repeats, note)
    )

    rows.append(_time_opencv(Pe, Qe, repeats, opencv_budget_s))

    flat_p, flat_q = P.reshape(-1), Q.reshape(-1)
    seconds, value = _median_time(lambda: kl_histogram(flat_p, flat_q, HISTOGRAM_BINS), repeats)
    note = (
        f"1-D histogram of all {flat_p.size} pixel values, {HISTOGRAM_BINS} bins "
        f"(histogramdd over d = {d} would need bins**{d} cells)"
    )
    rows.append(_row("kl_histogram", seconds, None, value, flat_p.size, 1, repeats, note))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
