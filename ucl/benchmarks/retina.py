"""Timing of the retina preprocessing's PCA at the real data's size, on the synthetic
stand-in's counts (`ucl.data.retina.synthetic.synthetic_counts`: the numbers its files
hold, without writing ~1 GB of text):

    python scripts/bench.py --only retina --repeats 1

Both PCAs run on the same gene-filtered, sqrt-normalised sparse matrix (~28k cells by ~13k
genes, ~5% nonzero, as the real kept cells and genes), with BLAS on one thread as the
loader runs them. Each ratio is the median over ``repeats`` of the two timed back to back,
so load that comes and goes hits both. "variance captured" is the share of the total
variance the k components hold: the exact top-k components hold the most.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from sklearn.decomposition import PCA

from ucl.data.retina.preprocess import normalize_sqrt, randomized_pca, single_threaded_blas
from ucl.data.retina.synthetic import synthetic_counts

CELLS, GENES, COMPONENTS = 28_000, 13_000, 100  # the real data's kept size and pca_dim
MIN_CELLS = 10  # the loader's default gene filter


def run(repeats: int = 3) -> list[dict]:
    started = time.perf_counter()
    x = _normalised_counts()
    made = time.perf_counter() - started
    note = f"{x.shape[0]} x {x.shape[1]}, {x.nnz / np.prod(x.shape):.1%} nonzero, k={COMPONENTS}"
    hand_s, sklearn_s, ratios = [], [], []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        hand, _ = randomized_pca(x, COMPONENTS)
        hand_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        exact = _sklearn_pca(x)
        sklearn_s.append(time.perf_counter() - start)
        ratios.append(sklearn_s[-1] / hand_s[-1])
    total = _total_variance(x)
    captured = {name: float((s**2).sum()) / total for name, s in (("hand", hand), ("sk", exact))}
    return [
        _row("synthetic counts, made and normalised", made, "s", note),
        _row("PCA, hand-written randomized SVD", statistics.median(hand_s), "s", note),
        _row("PCA, sklearn ARPACK (implicit centring)", statistics.median(sklearn_s), "s", note),
        _row("PCA: sklearn / hand-written", statistics.median(ratios), "x", note),
        _row("variance captured: hand-written / sklearn", captured["hand"] / captured["sk"], "x",
             f"sklearn holds {captured['sk']:.4f} of the total"),
    ]  # fmt: skip


def _normalised_counts():
    counts = synthetic_counts(CELLS, GENES, seed=0)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    return normalize_sqrt(counts[:, np.diff(counts.indptr) >= MIN_CELLS], totals)


def _sklearn_pca(x) -> np.ndarray:
    with single_threaded_blas():
        return PCA(COMPONENTS, svd_solver="arpack", random_state=0).fit_transform(x)


def _total_variance(x) -> float:
    mean = np.asarray(x.mean(axis=0)).ravel()
    return float(x.data @ x.data - x.shape[0] * mean @ mean)


def _row(benchmark: str, value: float, unit: str, note: str) -> dict:
    return {"benchmark": benchmark, "value": value, "unit": unit, "target": None, "note": note}
