"""Divergence studies: every measure of ucl.divergence, both directions where it is not
symmetric, timed with time.perf_counter, over several seeded repeats with the spread.

P is the first sample of a pair (the uniform box, MNIST), Q the second (the normal, the
other MNIST set, the GAN): `kl_knn_pq` is KL(P || Q), `kl_knn_qp` is KL(Q || P).

Three sources of sample pairs (`divergence.source`):
- simple: n points of a d-D uniform box against n points of N(0, normal_var I);
- mnist: two disjoint random sets of n MNIST test digits (784-D);
- gan: n MNIST test digits against n samples of a trained GAN (`generator=<run dir>`),
  beside the mnist-vs-mnist baseline drawn the same way, so each measure's separation is
  the ratio of the two.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ucl import divergence as dv
from ucl.context import Context
from ucl.plots.divergence import divergence_figure
from ucl.registry import TASKS

log = logging.getLogger(__name__)


# -- the measures: name -> function of (P, Q, settings, seed) returning a float -------------
def _kl_hist(P, Q, s, seed=None):
    if P.shape[1] > s.hist_max_dim:
        # bins**784 cells cannot be filled by 1000 points: compare the distributions of
        # single pixel values instead (all coordinates pooled), as a 1-D histogram
        P, Q = P.reshape(-1, 1), Q.reshape(-1, 1)
    return dv.kl_histogram(P, Q, bins=s.bins, smoothing=s.smoothing)


MEASURES: dict[str, Callable] = {
    "kl_hist_pq": _kl_hist,
    "kl_hist_qp": lambda P, Q, s, seed: _kl_hist(Q, P, s),
    "kl_knn_pq": lambda P, Q, s, seed: dv.kl_knn(P, Q, k=s.knn_k),
    "kl_knn_qp": lambda P, Q, s, seed: dv.kl_knn(Q, P, k=s.knn_k),
    "emd_opencv": lambda P, Q, s, seed: dv.emd_opencv(P, Q),
    "emd_exact": lambda P, Q, s, seed: dv.emd_exact(P, Q),
    "mmd2_biased": lambda P, Q, s, seed: dv.MMD(P, Q, sigma=s.sigma),
    "mmd2_unbiased": lambda P, Q, s, seed: dv.MMD(P, Q, sigma=s.sigma, unbiased=True),
    "mmd_p_value": lambda P, Q, s, seed: dv.mmd_permutation_test(
        P, Q, sigma=s.sigma, permutations=s.permutations, seed=seed
    )[1],
}


@TASKS.register("divergence")
def divergence(ctx: Context) -> dict[str, float]:
    cfg = ctx.cfg
    s = cfg.divergence
    unknown = [m for m in s.measures if m not in MEASURES]
    if unknown:
        raise ValueError(f"divergence.measures: unknown {unknown}; valid: {', '.join(MEASURES)}")
    draw = SOURCES.get(s.source)
    if draw is None:
        raise ValueError(f"divergence.source={s.source!r}; use one of {', '.join(SOURCES)}")
    if s.source == "gan" and not cfg.get("generator"):
        raise ValueError("divergence.source=gan needs generator=<run dir of a GAN run>")

    # values[pair][measure] and seconds[measure]: one entry per repeat
    values: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, list[float]] = {m: [] for m in s.measures}
    for r in range(int(s.repeats)):
        rng = np.random.default_rng(int(cfg.seed) + r)
        for pair, (P, Q) in draw(ctx, rng).items():
            for measure in s.measures:
                started = time.perf_counter()
                value = float(MEASURES[measure](P, Q, s, int(cfg.seed) + r))
                seconds[measure].append(time.perf_counter() - started)
                values.setdefault(pair, {}).setdefault(measure, []).append(value)
            ctx.tracker.log(r, {f"{pair}/{m}": v[-1] for m, v in values[pair].items()
                                if math.isfinite(v[-1])})  # fmt: skip
        log.info("repeat %d/%d done", r + 1, s.repeats)

    metrics, table = summarise(values, seconds)
    if s.source == "simple":  # the truth the KL estimators are after
        kl = kl_uniform_normal(s.uniform_low, s.uniform_high, int(s.dim), float(cfg.normal_var))
        metrics["uniform_vs_normal/kl_closed_form_pq"] = kl
    ctx.record["divergence_table"] = table
    text = markdown(table, list(values))
    (ctx.run_dir / "divergence.md").write_text(text)
    log.info("\n%s", text)
    title = f"divergences, {s.source}"
    if s.source == "simple":
        title += f", normal_var={cfg.normal_var}"
    ctx.tracker.figure("divergences", divergence_figure(table, list(values), title))
    return metrics


def summarise(values, seconds) -> tuple[dict[str, float], list[dict]]:
    """Mean and spread per pair and measure, mean seconds per measure, and for two pairs
    the ratio of the second to the first (how far the measure separates them)."""
    metrics: dict[str, float] = {}
    table = []
    pairs = list(values)
    for measure, times in seconds.items():
        row = {"measure": measure, "seconds": statistics.fmean(times)}
        for pair in pairs:
            v = values[pair][measure]
            row[pair] = statistics.fmean(v)
            row[f"{pair} std"] = statistics.pstdev(v) if all(map(math.isfinite, v)) else math.nan
            metrics[f"{pair}/{measure}"] = row[pair]
            metrics[f"{pair}/{measure}/std"] = row[f"{pair} std"]
        if len(pairs) == 2:
            base, other = row[pairs[0]], row[pairs[1]]
            row["ratio"] = other / base if base not in (0.0,) and math.isfinite(base) else math.inf
            metrics[f"ratio/{measure}"] = row["ratio"]
        metrics[f"time/{measure}"] = row["seconds"]
        table.append(row)
    return metrics, table


def markdown(table: list[dict], pairs: list[str]) -> str:
    header = ["measure", *(f"{p} (mean ± std)" for p in pairs)]
    if len(pairs) == 2:
        header.append(f"ratio {pairs[1]} / {pairs[0]}")
    header.append("seconds per call")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        cells = [row["measure"], *(f"{row[p]:.4g} ± {row[f'{p} std']:.2g}" for p in pairs)]
        if len(pairs) == 2:
            cells.append(f"{row['ratio']:.3g}")
        cells.append(f"{row['seconds']:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def kl_uniform_normal(low: float, high: float, dim: int, var: float) -> float:
    """KL(U || N) for U uniform on [low, high]^dim and N = N(0, var I), in nats:
    -log vol + dim/2 log(2 pi var) + E_U ||x||^2 / (2 var), E_U x_i^2 = (l^2 + l h + h^2) / 3.
    (KL(N || U) is infinite: the normal puts mass outside the box.)"""
    second_moment = (low * low + low * high + high * high) / 3
    return (
        -dim * math.log(high - low)
        + dim / 2 * math.log(2 * math.pi * var)
        + dim * second_moment / (2 * var)
    )


# -- the sources of sample pairs -----------------------------------------------------------
def _simple(ctx: Context, rng: np.random.Generator) -> dict[str, tuple]:
    s, var = ctx.cfg.divergence, ctx.cfg.normal_var
    if var is None or var <= 0:
        raise ValueError(f"normal_var={var!r}: give the normal's variance > 0, e.g. normal_var=4")
    P = rng.uniform(s.uniform_low, s.uniform_high, size=(s.n, s.dim))
    Q = rng.normal(0.0, math.sqrt(var), size=(s.n, s.dim))
    return {"uniform_vs_normal": (P, Q)}


def _mnist_pair(ctx: Context, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    x = ctx.data.x_test.cpu().numpy().astype(np.float64)
    n = int(ctx.cfg.divergence.n)
    if count * n > len(x):
        raise ValueError(f"divergence.n={n}: {count} disjoint sets need {count * n} test digits, "
                         f"the split has {len(x)}")  # fmt: skip
    order = rng.permutation(len(x))
    return [x[order[i * n : (i + 1) * n]] for i in range(count)]


def _mnist(ctx: Context, rng: np.random.Generator) -> dict[str, tuple]:
    A, B = _mnist_pair(ctx, rng, 2)
    return {"mnist_vs_mnist": (A, B)}


def _gan(ctx: Context, rng: np.random.Generator) -> dict[str, tuple]:
    A, B = _mnist_pair(ctx, rng, 2)
    samples = generator_samples(ctx, int(ctx.cfg.divergence.n), rng)
    return {"mnist_vs_mnist": (A, B), "mnist_vs_gan": (A, samples)}


def generator_samples(ctx: Context, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of the GAN run `generator=<run dir>`, flattened to rows in [0, 1]:
    fresh ones from its generator when it can sample, else its saved samples.pt."""
    run_dir = Path(ctx.cfg.generator)
    from ucl.checkpoint import load_model

    model, _ = load_model(run_dir, "cpu")
    if hasattr(model, "sample"):
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        with torch.no_grad():
            x = model.sample(n, generator=g)
    else:
        x = torch.load(run_dir / "samples.pt", weights_only=True)["samples"]  # (N, 784)
        x = x[torch.as_tensor(rng.permutation(len(x))[:n])]
    return x.reshape(len(x), -1).double().clamp(0, 1).numpy()


SOURCES = {"simple": _simple, "mnist": _mnist, "gan": _gan}
