"""The report's divergence section and answers, from the divergence task's runs: each
holds `divergence_table` (one row per measure: mean and spread per pair of samples, mean
seconds per call; with two pairs each estimate's effect size `separation` = [d, low, high]
and each test's `rejected` = [[rate, low, high] per pair]), `divergence_settings`, and
metrics `time/<measure>`, `<pair>/<measure>`, `power/<test>`, `false_positive/<test>`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from problem_set.report import origins
from problem_set.report.doc import Block, Figure, Heading, Table, Text
from problem_set.report.facts import num
from problem_set.report.sources import Run, Source
from problem_set.report.words import measure as measure_words
from problem_set.report.words import sig

STAGES = {
    "divergence_simple": "Uniform box against normals of growing variance (3-D)",
    "divergence_mnist": "MNIST against MNIST (784-D)",
    "divergence_gan": "MNIST against the GAN's samples (784-D)",
}
CLOSED_FORM = "uniform_vs_normal/kl_closed_form_pq"  # KL(U || N) in closed form
FEATURES = "features"  # the classifier's forward pass, timed per sample
REAL, GAN = "mnist_vs_mnist", "mnist_vs_gan"
# A test is calibrated enough to recommend when it rejects real-vs-real at most this often
# (alpha = 0.05; 20 repeats cannot tell 5% from 10% apart).
MAX_FALSE_POSITIVES = 0.10
GOOD_POWER = 0.95
# What a test compares, where it is not the pixels as 784-D vectors
COMPARES = {
    "mmd_mixture_values": "each image's histogram of pixel values: how bright, not what shape",
    "mmd_mixture_features": "the classifier's penultimate features",
    "kid": "the classifier's penultimate features",
}


class Estimate(NamedTuple):
    measure: str
    d: float  # effect size of real-vs-GAN against real-vs-real
    low: float
    high: float
    seconds: float  # per call, the classifier's forward passes included

    @property
    def per_second(self) -> float:
        """|d| per second: a measure that falls from real-vs-real to real-vs-GAN separates
        them as well as one that rises."""
        return abs(self.d) / self.seconds


class Test(NamedTuple):
    measure: str
    false_positives: float  # rejection rate on real-vs-real
    power: float  # rejection rate on real-vs-GAN, with its interval
    low: float
    high: float
    seconds: float


def divergences(src: Source) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Divergences")]
    blocks += _simple(src)
    for stage in ("divergence_mnist", "divergence_gan"):
        run = src.run(stage)
        blocks.append(Heading(3, STAGES[stage]))
        if not run.ok:
            blocks.append(Text(run.why_missing()))
            continue
        if linked := origins.linked(src, run):
            blocks.append(Text(linked))
        blocks += _pairs_table(run)
        blocks += _figure(run)
        blocks += _figure(run, name="separation", what="effect sizes and rejection rates")
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
        name = measure_words(m, "uniform", "normal")
        rows.append([name, *cells, _mean([s for s in seconds if s is not None])])
    if any(CLOSED_FORM in r.metrics for r in runs):
        rows.append(["KL(U‖N), closed form", *(r.metrics.get(CLOSED_FORM) for r in runs), None])
    blocks.append(
        Text(
            "Mean ± sd over the seeded repeats, one column per variance of the normal; a "
            'direction "uniform to normal" is D(uniform ‖ normal); MMD² with the '
            "median-heuristic kernel width (over several widths: Gaussians at multiples of it); "
            "p-values of the permutation tests."
        )
    )
    blocks.append(Table(["measure", *(f"var {v}" for v in variances), "s per call"], rows))
    for r in (runs[0], runs[-1]):
        blocks += _figure(r, what=f"every measure (normal_var={_var(r)})")
    return blocks


def _pairs_table(run: Run) -> list[Block]:
    table = run.get("divergence_table") or []
    settings = run.get("divergence_settings") or {}
    pairs = settings.get("pairs") or [
        k for k in (table[0] if table else {}) if k in (REAL, GAN, "uniform_vs_normal")
    ]
    if not table or not pairs:
        return [Text("the run holds no divergence_table")]
    alpha = settings.get("alpha", 0.05)
    header = ["measure", *(f"{p} (mean ± sd)" for p in pairs)]
    header.append("effect size d [95% CI] / rejected" if len(pairs) == 2 else "rejected")
    header.append("s per call")
    rows = []
    for row in table:
        if row["measure"] == FEATURES:
            blank = ["" for _ in pairs]
            rows.append(["classifier features (per sample)", *blank, "", row.get("seconds")])
            continue
        name = measure_words(row["measure"], "real", "GAN" if "gan" in run.stage else "second")
        cells = [name, *(_mean_std(row, p) for p in pairs), _verdict(row, pairs)]
        rows.append([*cells, row.get("seconds")])
    repeats = settings.get("repeats", "the")
    intro = (
        f"Mean ± sd over {repeats} seeded repeats (se: the estimate's own standard error, "
        f"averaged). Estimates: effect size d = difference of the means over the pooled sd, "
        f"with its 95% interval. Tests: the fraction of repeats with p ≤ {alpha:g} per pair, "
        "with its exact 95% interval."
    )
    return [Text(intro), Table(header, rows)]


def _verdict(row: dict, pairs: list[str]) -> str:
    if "rejected" in row:
        rates = zip(pairs, row["rejected"], strict=False)
        return ", ".join(f"{p}: {r:.0%} [{lo:.0%}, {hi:.0%}]" for p, (r, lo, hi) in rates)
    if "separation" in row and math.isfinite(row["separation"][0]):
        d, low, high = row["separation"]
        return f"{num(d)} [{num(low)}, {num(high)}]"
    return ""


def _figure(run: Run, name: str = "divergences", what: str = "every measure") -> list[Block]:
    path = run.figure(name)
    if path is None:
        return []
    return [Figure(path, f"{run.stage}: {what}", f"{run.stage.replace('/', '_')}_{name}.png")]


# -- answers ------------------------------------------------------------------------------


def separation(run: Run) -> tuple[list[Estimate], list[Test]]:
    """The estimates with a finite effect size, largest |d| first, and the tests, most
    powerful first (ties: fewer false positives, then faster)."""
    features_s = 2 * next(
        (r["seconds"] for r in run.get("divergence_table") or [] if r["measure"] == FEATURES), 0.0
    )
    estimates, tests = [], []
    for row in run.get("divergence_table") or []:
        measure, seconds = row["measure"], row.get("seconds") or math.nan
        if "kid" in measure or "_features" in measure:
            seconds += features_s  # the forward passes of both samples
        if "separation" in row and all(map(math.isfinite, row["separation"])):
            estimates.append(Estimate(measure, *row["separation"], seconds))
        if len(row.get("rejected") or []) == 2:
            (fp, _, _), (power, low, high) = row["rejected"]
            tests.append(Test(measure, fp, power, low, high, seconds))
    estimates.sort(key=lambda e: -abs(e.d))
    tests.sort(key=lambda t: (-t.power, t.false_positives, t.seconds))
    return estimates, tests


def recommendation(
    estimates: list[Estimate], tests: list[Test], repeats, name: Callable[[str], str] = str
) -> str:
    """The test to use (calibrated and the most powerful, then clearly the fastest), else
    the estimate with clearly the largest separation per second; `name` words a measure's
    code name."""
    calibrated = [t for t in tests if t.false_positives <= MAX_FALSE_POSITIVES]
    power = max((t.power for t in calibrated), default=0.0)
    top = [t for t in calibrated if t.power == power]
    best = _quickest(top, lambda t: t.seconds, then=lambda t: (t.false_positives, t.measure))
    if best is not None and best.power >= GOOD_POWER:
        code = best.measure.removesuffix("_p_value")
        compares = f" (it compares {COMPARES[code]})" if code in COMPARES else ""
        label = name(best.measure) if name is not str else f"{code} permutation test"
        return (
            f"Recommended: the {label}{compares}. It "
            f"rejects real-vs-GAN in {best.power:.0%} of {repeats} repeats (95% CI "
            f"[{best.low:.0%}, {best.high:.0%}]) and real-vs-real in "
            f"{best.false_positives:.0%}, in {sig(best.seconds)} s per call; a test's "
            "verdict carries its own error rate, which an effect size over repeats does not."
        )
    if estimates:
        fastest = _quickest(
            estimates, lambda e: 1 / e.per_second, then=lambda e: (-abs(e.d), e.measure)
        )
        return (
            f"No test reaches {GOOD_POWER:.0%} power at a false-positive rate of at most "
            f"{MAX_FALSE_POSITIVES:.0%} here; recommended as a score: {name(fastest.measure)}, "
            f"the largest separation per second (d = {num(fastest.d)} in {num(fastest.seconds)} s)."
        )
    return "nothing was measured that separates the two cases"


# one measure's time per call differs by up to a fifth from run to run on a shared machine:
# a measure counts as faster only below two thirds of another's time, so that two runs of
# one pipeline recommend the same measure
CLEARLY_FASTER = 1.5
M = TypeVar("M", "Test", "Estimate")


def _quickest(found: list[M], seconds: Callable[[M], float], then: Callable) -> M | None:
    """Of the measures within CLEARLY_FASTER of the fastest, the first by `then`."""
    if not found:
        return None
    near = [m for m in found if seconds(m) <= CLEARLY_FASTER * min(map(seconds, found))]
    return min(near, key=then)


def divergence_answers(src: Source) -> list[str]:
    gan = src.run("divergence_gan")
    if gan.ok:
        separates = _separation_answer(gan)
    else:
        separates = gan.why_missing()
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
        "**Why do the KL estimates behave as they do?** " + kl_answer(gan),
        "**Do the KL estimators find the closed form on the simple case?** "
        + _closed_form_answer(src),
    ]


def _separation_answer(run: Run) -> str:
    estimates, tests = separation(run)
    repeats = (run.get("divergence_settings") or {}).get("repeats", "the")
    parts = []
    if estimates:
        top = ", ".join(
            f"{e.measure} {num(e.d)} [{num(e.low)}, {num(e.high)}]" for e in estimates[:4]
        )
        parts.append(f"By effect size |d| (95% CI) over {repeats} repeats: {top}.")
        quick = sorted(estimates, key=lambda e: -e.per_second)[:3]
        rates = ", ".join(f"{e.measure} {num(e.per_second)} d/s" for e in quick)
        parts.append(f"Per second of compute: {rates}.")
    if tests:
        verdicts = ", ".join(
            f"{t.measure} {t.power:.0%} / {t.false_positives:.0%} in {num(t.seconds)} s"
            for t in tests
        )
        parts.append(
            f"As tests (power on real-vs-GAN / false positives on real-vs-real): {verdicts}."
        )
    if not parts:
        return "no effect size or rejection rate was recorded"
    return " ".join([*parts, recommendation(estimates, tests, repeats)])


def kl_answer(run: Run) -> str:
    """The histogram KL on pixels, the kNN KL in 784-D and on features, with the numbers."""
    if not run.ok:
        return run.why_missing()
    hist, knn, feat = (_row(run, m) for m in ("kl_hist_pq", "kl_knn_qp", "kl_knn_features_qp"))
    parts = []
    if hist:
        parts.append(
            f"The histogram KL bins the pixel values of all 784 coordinates pooled into one "
            f"1-D histogram, so it sees how bright the pixels are, not the shapes they form: "
            f"{num(hist.get(REAL))} nats real-vs-real against {num(hist.get(GAN))} real-vs-GAN."
        )
    if knn:
        parts.append(
            f"The kNN KL multiplies the mean log ratio of nearest-neighbour distances by "
            f"d = 784, so a 1% change in those distances moves it by 7.8 nats: "
            f"{_mean_std(knn, REAL)} real-vs-real and {_mean_std(knn, GAN)} real-vs-GAN."
        )
    if feat:
        d = feat.get("separation", [math.nan])[0]
        parts.append(
            f"On the classifier's penultimate features: {_mean_std(feat, REAL)} real-vs-real "
            f"and {_mean_std(feat, GAN)} real-vs-GAN (effect size {num(d)})."
        )
    return " ".join(parts) or "the run holds no KL measures"


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
    text = f"{num(mean)} ± {num(std, 2)}" if std is not None else num(mean)
    if row.get(f"{pair} se") is not None:
        text += f" (se {num(row[f'{pair} se'], 2)})"
    return text


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
