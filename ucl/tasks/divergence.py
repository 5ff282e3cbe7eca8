"""Divergence studies: every measure of ucl.divergence, both directions where it is not
symmetric, timed with time.perf_counter, over several seeded repeats.

P is the first sample of a pair (the uniform box, MNIST), Q the second (the normal, the
other MNIST set, the GAN): `kl_knn_pq` is KL(P || Q), `kl_knn_qp` is KL(Q || P).

Three sources of sample pairs (`divergence.source`):
- simple: n points of a d-D uniform box against n points of N(0, normal_var I);
- mnist: two disjoint random sets of n MNIST test digits (784-D);
- gan: n MNIST test digits against n samples of a trained GAN (`generator=<run dir>`),
  beside the mnist-vs-mnist baseline drawn the same way.

With two pairs, each estimate's separation of the second from the first is an effect size
(difference of means over the pooled spread of the repeats, with a confidence interval),
and each test's rejection rate at `divergence.alpha` is its false-positive rate on the
first pair and its power on the second (ucl/divergence/separation.py).

Measures ending in `_features` or starting with `kid` work on the penultimate-layer
features of a classifier (`classifier=<run dir>`, else the one the GAN run was judged
with); the forward pass is timed on its own, per sample, as `features`.
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

from ucl.context import Context
from ucl.divergence.measures import Sample, is_test, needs_features
from ucl.divergence.separation import effect_size, rejection_rate
from ucl.earlier_runs import judge, load_classifier, load_generator
from ucl.errors import ConfigError
from ucl.keys import MEASURES, TASKS
from ucl.lifecycle import atomic_write
from ucl.loop import SAMPLES, load_pt
from ucl.plots.divergence import divergence_figure, separation_figure

log = logging.getLogger(__name__)
FEATURES = "features"  # the seconds row of the classifier's forward pass


@TASKS.register("divergence")
def divergence(ctx: Context) -> dict[str, float]:
    cfg = ctx.cfg
    s = cfg.divergence
    draw = SOURCES[s.source]  # the measures, the source and its generator: ucl.schema's
    features = feature_extractor(ctx) if any(map(needs_features, s.measures)) else None

    # values[pair][measure], errors[pair][measure] and seconds[measure]: one per repeat
    values: dict[str, dict[str, list[float]]] = {}
    errors: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, list[float]] = {m: [] for m in s.measures}
    if features is not None:
        seconds[FEATURES] = []
    for r in range(int(s.repeats)):
        rng = np.random.default_rng(int(cfg.seed) + r)
        samples: dict[int, Sample] = {}  # the pairs share their first sample
        pairs = {name: tuple(samples.setdefault(id(x), Sample(x)) for x in xs)
                 for name, xs in draw(ctx, rng).items()}  # fmt: skip
        if features is not None:  # timed per sample, apart from the measures
            for sample in samples.values():
                started = time.perf_counter()
                sample.f = features(sample.x)
                seconds[FEATURES].append(time.perf_counter() - started)
        for pair, (P, Q) in pairs.items():
            for measure in s.measures:
                started = time.perf_counter()
                value = MEASURES.get(measure)(P, Q, s, int(cfg.seed) + r)
                seconds[measure].append(time.perf_counter() - started)
                if isinstance(value, tuple):
                    value, error = value
                    errors.setdefault(pair, {}).setdefault(measure, []).append(float(error))
                values.setdefault(pair, {}).setdefault(measure, []).append(float(value))
            ctx.tracker.log(r, {f"{pair}/{m}": v[-1] for m, v in values[pair].items()
                                if math.isfinite(v[-1])})  # fmt: skip
        log.info("repeat %d/%d done", r + 1, s.repeats)

    metrics, table = summarise(values, errors, seconds, float(s.alpha))
    if s.source == "gan":  # name the two roles of the rejection rates
        for row in table:
            if "rejected" in row:
                metrics[f"false_positive/{row['measure']}"] = row["rejected"][0][0]
                metrics[f"power/{row['measure']}"] = row["rejected"][1][0]
    if s.source == "simple":  # the truth the KL estimators are after
        kl = kl_uniform_normal(s.uniform_low, s.uniform_high, int(s.dim), float(cfg.normal_var))
        metrics["uniform_vs_normal/kl_closed_form_pq"] = kl
    ctx.record["divergence_table"] = table
    settings = {"repeats": int(s.repeats), "n": int(s.n), "alpha": float(s.alpha)}
    ctx.record["divergence_settings"] = {**settings, "pairs": list(values)}
    text = markdown(table, list(values), float(s.alpha))
    atomic_write(ctx.run_dir / "divergence.md", text)
    log.info("\n%s", text)
    title = f"divergences, {s.source}"
    if s.source == "simple":
        title += f", normal_var={cfg.normal_var}"
    measured = [row for row in table if row["measure"] != FEATURES]
    ctx.tracker.figure("divergences", divergence_figure(measured, list(values), title))
    if len(values) == 2:
        fig = separation_figure(table, list(values), float(s.alpha), int(s.repeats))
        ctx.tracker.figure("separation", fig)
    return metrics


def summarise(values, errors, seconds, alpha: float) -> tuple[dict[str, float], list[dict]]:
    """Per measure: mean, spread (and mean standard error where the measure gives one) per
    pair, mean seconds per call; for tests the rejection rate per pair with its interval;
    for estimates with two pairs the effect size of the second against the first."""
    metrics: dict[str, float] = {}
    table = []
    pairs = list(values)
    for measure, times in seconds.items():
        row: dict = {"measure": measure, "seconds": statistics.fmean(times)}
        metrics[f"time/{measure}"] = row["seconds"]
        table.append(row)
        if measure == FEATURES:
            continue
        if needs_features(measure) and FEATURES in seconds:  # both samples' forward passes
            row["seconds with features"] = row["seconds"] + 2 * statistics.fmean(seconds[FEATURES])
        for pair in pairs:
            v = values[pair][measure]
            row[pair] = statistics.fmean(v)
            row[f"{pair} std"] = statistics.stdev(v) if _finite(v) and len(v) > 1 else math.nan
            metrics[f"{pair}/{measure}"] = row[pair]
            metrics[f"{pair}/{measure}/std"] = row[f"{pair} std"]
            if measure in errors.get(pair, {}):
                row[f"{pair} se"] = statistics.fmean(errors[pair][measure])
                metrics[f"{pair}/{measure}/se"] = row[f"{pair} se"]
        if is_test(measure):
            row["rejected"] = [list(rejection_rate(values[p][measure], alpha)) for p in pairs]
            for pair, (rate, _, _) in zip(pairs, row["rejected"], strict=True):
                metrics[f"{pair}/{measure}/rejected"] = rate
        elif len(pairs) == 2:
            d, low, high = effect_size(values[pairs[0]][measure], values[pairs[1]][measure])
            row["separation"] = [d, low, high]
            metrics[f"separation/{measure}"] = d
            metrics[f"separation/{measure}/ci_low"] = low
            metrics[f"separation/{measure}/ci_high"] = high
            per_second = abs(d) / row.get("seconds with features", row["seconds"])
            metrics[f"separation_per_second/{measure}"] = per_second
    return metrics, table


def _finite(v) -> bool:
    return all(map(math.isfinite, v))


def markdown(table: list[dict], pairs: list[str], alpha: float) -> str:
    header = ["measure", *(f"{p} (mean ± sd)" for p in pairs)]
    if len(pairs) == 2:
        header.append(f"separation (d, 95% CI) or rejected at {alpha:g}")
    else:
        header.append(f"rejected at {alpha:g}")
    header.append("seconds per call")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        if row["measure"] == FEATURES:
            cells = ["classifier features (forward pass, per sample)", *("" for _ in pairs), ""]
        else:
            cells = [row["measure"], *(_mean_sd(row, p) for p in pairs), _verdict(row, pairs)]
        cells.append(f"{row['seconds']:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean_sd(row: dict, pair: str) -> str:
    text = f"{row[pair]:.4g} ± {row[f'{pair} std']:.2g}"
    if f"{pair} se" in row:
        text += f" (se {row[f'{pair} se']:.2g})"
    return text


def _verdict(row: dict, pairs: list[str]) -> str:
    if "rejected" in row:
        rates = zip(pairs, row["rejected"], strict=True)
        return ", ".join(f"{p}: {r:.0%} [{lo:.0%}, {hi:.0%}]" for p, (r, lo, hi) in rates)
    if "separation" in row:
        d, low, high = row["separation"]
        return f"{d:.3g} [{low:.3g}, {high:.3g}]"
    return ""


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


# -- classifier features --------------------------------------------------------------------
def feature_extractor(ctx: Context) -> Callable[[np.ndarray], np.ndarray]:
    """Images (n, 784) -> penultimate-layer features (n, F) of `classifier=<run dir>`, or of
    the classifier the GAN run (`generator=`) was judged with."""
    from ucl.sample_quality import classifier_features

    links = ctx.cfg.task_settings
    path = links.classifier or (judge(links.generator) if links.generator else None)
    if not path or ctx.data is None:
        wanted = [m for m in ctx.cfg.divergence.measures if needs_features(m)]
        raise ConfigError(
            f"divergence.measures {wanted} need a classifier's features: give "
            "classifier=<run dir of a classify run on MNIST> (e.g. python train.py "
            "experiment=best_mlp), or drop them from divergence.measures"
        )
    classifier = load_classifier(path, ctx.data, torch.device("cpu"))

    def features(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            f, _ = classifier_features(classifier, torch.from_numpy(x).float())
        return f.double().numpy()

    return features


# -- the sources of sample pairs -----------------------------------------------------------
def _simple(ctx: Context, rng: np.random.Generator) -> dict[str, tuple]:
    s, var = ctx.cfg.divergence, ctx.cfg.normal_var  # checked by ucl.schema
    P = rng.uniform(s.uniform_low, s.uniform_high, size=(s.n, s.dim))
    Q = rng.normal(0.0, math.sqrt(var), size=(s.n, s.dim))
    return {"uniform_vs_normal": (P, Q)}


def _mnist_pair(ctx: Context, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    x = ctx.data.x_test.cpu().numpy().astype(np.float64)
    n = int(ctx.cfg.divergence.n)
    if count * n > len(x):
        raise ConfigError(
            f"divergence.n={n}: {count} disjoint sets need {count * n} test digits, the split "
            f"has {len(x)}; e.g. divergence.n={len(x) // count}"
        )
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
    run_dir = Path(ctx.cfg.task_settings.generator)
    model, _ = load_generator(run_dir, "cpu")
    if hasattr(model, "sample"):
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        with torch.no_grad():
            x = model.sample(n, generator=g)
    else:
        x = load_pt(run_dir / SAMPLES)["samples"]  # (N, 784)
        x = x[torch.as_tensor(rng.permutation(len(x))[:n])]
    return x.reshape(len(x), -1).double().clamp(0, 1).numpy()


SOURCES = {"simple": _simple, "mnist": _mnist, "gan": _gan}
