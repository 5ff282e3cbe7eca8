"""Timing of the retina preprocessing's PCA (`ucl.data.retina.preprocess.pca`) at the real
data's size, on the synthetic stand-in's counts (`ucl.data.retina.synthetic.synthetic_counts`:
the numbers its files hold, without writing ~1 GB of text):

    python scripts/bench.py --only retina --repeats 1

The PCA runs on the gene-filtered, sqrt-normalised sparse matrix (~28k cells by ~13k genes,
~5% nonzero, as the real kept cells and genes). Reference: one product pair of that
matrix with k columns each way (x @ (genes, k), x.T @ (cells, k)), the least any PCA that
keeps x sparse does to score the cells. The ratio is the median over ``repeats`` of the two
timed back to back, so load that comes and goes hits both.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from ucl.data.retina.preprocess import normalize_sqrt, pca
from ucl.data.retina.synthetic import synthetic_counts

CELLS, GENES, COMPONENTS = 28_000, 13_000, 100  # the real data's kept size and pca_dim
MIN_CELLS = 10  # the loader's default gene filter


def run(repeats: int = 3) -> list[dict]:
    started = time.perf_counter()
    x = _normalised_counts()
    made = time.perf_counter() - started
    note = f"{x.shape[0]} x {x.shape[1]}, {x.nnz / np.prod(x.shape):.1%} nonzero, k={COMPONENTS}"
    rng = np.random.default_rng(0)
    right = rng.standard_normal((x.shape[1], COMPONENTS))
    left = rng.standard_normal((x.shape[0], COMPONENTS))
    pca_s, ratios = [], []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        x @ right, x.T @ left
        reference = time.perf_counter() - start
        start = time.perf_counter()
        pca(x, COMPONENTS)
        pca_s.append(time.perf_counter() - start)
        ratios.append(pca_s[-1] / reference)
    return [
        _row("synthetic counts, made and normalised", made, "s", note),
        _row("PCA (scikit-learn ARPACK, implicit centring)", statistics.median(pca_s), "s", note),
        _row("PCA / one product pair of width k", statistics.median(ratios), "x", note),
    ]


def _normalised_counts():
    counts = synthetic_counts(CELLS, GENES, seed=0)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    return normalize_sqrt(counts[:, np.diff(counts.indptr) >= MIN_CELLS], totals)


def _row(benchmark: str, value: float, unit: str, note: str) -> dict:
    return {"benchmark": benchmark, "value": value, "unit": unit, "target": None, "note": note}
