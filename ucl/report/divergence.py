"""The report's divergence section and answers, from the divergence task's runs: each
holds `divergence_table` (one row per measure: mean and spread per pair of samples, mean
seconds per call, and with two pairs their ratio) and metrics `ratio/<measure>`,
`time/<measure>`, `<pair>/<measure>`."""

from __future__ import annotations

import math

from ucl.report.doc import Block, Figure, Heading, Table, Text
from ucl.report.facts import num
from ucl.report.sources import Run, Source

STAGES = {
    "divergence_simple": "Uniform box against normals of growing variance (3-D)",
    "divergence_mnist": "MNIST against MNIST (784-D)",
    "divergence_gan": "MNIST against the GAN's samples (784-D)",
}
CLOSED_FORM = "uniform_vs_normal/kl_closed_form_pq"  # KL(U || N) in closed form
# a p-value shrinks as samples separate: a ratio of p-values ranks nothing
NOT_A_DISTANCE = ("p_value",)
BASELINE = "mnist_vs_mnist"  # the real-vs-real pair of the divergence_gan study
# a baseline mean below this many of its own spreads is too close to 0 for a clear ratio
NOISE_SPREADS = 2.0


def divergences(src: Source) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Divergences")]
    blocks += _simple(src)
    for stage in ("divergence_mnist", "divergence_gan"):
        run = src.run(stage)
        blocks.append(Heading(3, STAGES[stage]))
        if not run.ok:
            blocks.append(Text(run.why_missing()))
            continue
        blocks += _pairs_table(run)
        blocks += _figure(run)
    return blocks


def _simple(src: Source) -> list[Block]:
    blocks: list[Block] = [Heading(3, STAGES["divergence_simple"])]
    runs = [r for r in src.job_runs("divergence_simple") if r.ok]
    if not runs:
        return [*blocks, Text(src.run("divergence_simple").why_missing())]
    runs.sort(key=_var_key)
    variances = [_var(r) for r in runs]
    measures = [row["measure"] for row in runs[0].get("divergence_table", [])]
    rows = []
    for m in measures:
        cells = [_mean_std(_row(r, m), "uniform_vs_normal") for r in runs]
        seconds = [_row(r, m).get("seconds") for r in runs]
        rows.append([m, *cells, _mean([s for s in seconds if s is not None])])
    if any(CLOSED_FORM in r.metrics for r in runs):
        rows.append(["KL(U‖N), closed form", *(r.metrics.get(CLOSED_FORM) for r in runs), None])
    blocks.append(
        Text(
            "Mean ± spread over the seeded repeats, one column per variance of the normal; "
            "`_pq` is D(uniform ‖ normal), `_qp` the reverse; MMD² with the median-heuristic "
            "kernel width."
        )
    )
    blocks.append(Table(["measure", *(f"var {v}" for v in variances), "s per call"], rows))
    for r in (runs[0], runs[-1]):
        blocks += _figure(r, f" (normal_var={_var(r)})")
    return blocks


def _pairs_table(run: Run) -> list[Block]:
    table = run.get("divergence_table") or []
    if not table:
        return [Text("the run holds no divergence_table")]
    pairs = [k for k in table[0] if k not in ("measure", "seconds", "ratio")]
    pairs = [p for p in pairs if not p.endswith(" std")]
    header = ["measure", *pairs]
    if len(pairs) == 2:
        header.append(f"ratio {pairs[1]} / {pairs[0]}")
    header.append("s per call")
    rows = []
    for row in table:
        cells = [row["measure"], *(_mean_std(row, p) for p in pairs)]
        if len(pairs) == 2:
            cells.append(row.get("ratio"))
        rows.append([*cells, row.get("seconds")])
    return [Text("Mean ± spread over the seeded repeats."), Table(header, rows)]


def _figure(run: Run, what: str = "") -> list[Block]:
    path = run.figure("divergences")
    if path is None:
        return []
    name = f"{run.stage.replace('/', '_')}_divergences.png"
    return [Figure(path, f"{run.stage}: every measure{what}", name)]


# -- answers ------------------------------------------------------------------------------


def separation(run: Run) -> list[tuple[str, float, bool]]:
    """(measure, ratio real-vs-GAN / real-vs-real, baseline within noise), the clearly
    measured ratios first, each group largest first. Left out: p-values, non-finite ratios
    (an infinite histogram KL) and baselines <= 0 (the kNN KL and unbiased MMD² estimators
    can go below 0 when two samples share a distribution, and then no ratio means much)."""
    out = []
    for row in run.get("divergence_table") or []:
        measure, ratio = row.get("measure", ""), row.get("ratio")
        base, spread = row.get(BASELINE), row.get(f"{BASELINE} std")
        if any(word in measure for word in NOT_A_DISTANCE) or ratio is None or base is None:
            continue
        if not math.isfinite(ratio) or ratio <= 0 or base <= 0:
            continue
        noisy = spread is not None and math.isfinite(spread) and base < NOISE_SPREADS * spread
        out.append((measure, float(ratio), noisy))
    return sorted(out, key=lambda m: (m[2], -m[1]))


def divergence_answers(src: Source) -> list[str]:
    gan = src.run("divergence_gan")
    if gan.ok and (ranked := separation(gan)):
        listed = ", ".join(
            f"{m} {v:.3g}x{' (baseline within noise)' if n else ''}" for m, v, n in ranked
        )
        separates = (
            f"{ranked[0][0]}: real-vs-GAN is {ranked[0][1]:.3g} times real-vs-real "
            f"(ratios: {listed})"
        )
    else:
        separates = gan.why_missing() if not gan.ok else "no finite ratio was measured"
    timed = gan if gan.ok else src.run("divergence_mnist")
    times = sorted(
        ((k.split("/", 1)[1], v) for k, v in timed.metrics.items() if k.startswith("time/")),
        key=lambda kv: kv[1],
    )
    if times:
        runtimes = f"seconds per call on {timed.stage}'s samples: " + ", ".join(
            f"{m} {num(v)}" for m, v in times
        )
    else:
        runtimes = timed.why_missing()
    return [
        "**Which divergence separates real-vs-GAN from real-vs-real most?** " + separates,
        "**How long do the measures take?** " + runtimes,
        "**Do the KL estimators find the closed form on the simple case?** "
        + _closed_form_answer(src),
    ]


def _closed_form_answer(src: Source) -> str:
    runs = sorted((r for r in src.job_runs("divergence_simple") if r.ok), key=_var_key)
    if not runs:
        return src.run("divergence_simple").why_missing()
    parts = []
    for r in runs:
        m = r.metrics
        parts.append(
            f"var {_var(r)}: closed form {num(m.get(CLOSED_FORM))}, kNN "
            f"{num(m.get('uniform_vs_normal/kl_knn_pq'))}, histogram "
            f"{num(m.get('uniform_vs_normal/kl_hist_pq'))}"
        )
    return "KL(uniform ‖ normal): " + "; ".join(parts)


def _row(run: Run, measure: str) -> dict:
    return next((r for r in run.get("divergence_table", []) if r["measure"] == measure), {})


def _mean_std(row: dict, pair: str) -> str:
    mean, std = row.get(pair), row.get(f"{pair} std")
    if mean is None:
        return "–"
    return f"{num(mean)} ± {num(std, 2)}" if std is not None else num(mean)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _var(run: Run) -> str:
    for item in (run.record or {}).get("overrides", []):
        if item.startswith("normal_var="):
            return item.partition("=")[2]
    return "?"


def _var_key(run: Run) -> float:
    try:
        return float(_var(run))
    except ValueError:
        return math.inf
