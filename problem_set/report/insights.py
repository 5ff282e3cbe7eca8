"""Interesting insights and extra experiments: what the runs show beyond the problem set's
questions -- how far the seeds let the tables rank, what the validation split changes,
where the best scheme came from, how powerful and calibrated the two-sample tests are, and
smaller findings. Every number comes from the runs."""

from __future__ import annotations

from problem_set.report.divergence import _row, separation
from problem_set.report.doc import Block, Bullets, Heading, Text
from problem_set.report.questions import T_DIV_GAN
from problem_set.report.sources import Source
from problem_set.report.words import figure_anchor, link, measure, pct, sig, slug
from ucl import aggregate, sweeps

SECTION = "Interesting insights and extra experiments"
SWEEPS = {
    "activation_sweep": "activation",
    "width_sweep": "width",
    "lr_sweep": "learning-rate",
    "optimizer_sweep": "optimizer",
}


def insights(src: Source) -> list[Block]:
    items = [
        seeds(src),
        validation(src),
        search(src),
        test_power(src),
        emd_solvers(src),
        interpolation_ends(src),
    ]
    items = [i for i in items if i]
    blocks: list[Block] = [
        Heading(2, SECTION),
        Text(
            "Beyond the questions: what the seeds, the validation split, the search and the "
            "tests' error rates add to the answers above."
        ),
    ]
    if items:
        blocks.append(Bullets(items))
    else:
        blocks.append(Text("None of the stages these rest on completed."))
    return blocks


def seeds(src: Source) -> str:
    parts = []
    for stage, label in SWEEPS.items():
        jobs = src.jobs(stage)
        choose = aggregate.choose_metric(jobs)
        cells = aggregate.cells(jobs)
        best = aggregate.best_cell(cells, choose) if choose else None
        if best is None:
            continue
        a = best.agg("test/accuracy")
        n = aggregate.seeds_per_cell(cells)
        if a.half_width is None:
            parts.append(f"the {label} table ran one seed per setting")
            continue
        near = sum(v == sweeps.NEAR for v in aggregate.marks(cells, choose).values())
        parts.append(
            f"the {label} table's best setting is known to ±{100 * a.half_width:.2f} points "
            f"over {n} seeds, and {near} of its other {len(cells) - 1} settings are within "
            "noise of it"
        )
    if not parts:
        return ""
    return (
        "**Seed intervals.** Every table cell is a mean over seeds with its 95% interval, and "
        "a Welch t-test marks the settings the seeds cannot rank: " + "; ".join(parts) + ". "
        "A single run per setting would have ranked them all, most of those rankings noise."
    )


def validation(src: Source) -> str:
    run = src.run("best_mlp")
    val, test = run.metrics.get("val/accuracy"), run.metrics.get("test/accuracy")
    if not run.ok or val is None:
        return ""
    flips, tables = [], 0
    for stage, label in SWEEPS.items():
        cells = aggregate.cells(src.jobs(stage))
        tables += bool(cells)
        by_val = aggregate.best_cell(cells, "val/accuracy")
        by_test = aggregate.best_cell(cells, "test/accuracy")
        if by_val is not None and by_test is not None and by_val is not by_test:
            flips.append(
                f"{label}: {aggregate.describe(by_val)} by validation, "
                f"{aggregate.describe(by_test)} by test"
            )
    text = (
        "**The validation split.** Settings are chosen on digits held out from training, never "
        f"on the test digits: the best network scores {pct(val, 2)} on its validation digits "
        f"and {pct(test, 2)} on the test digits, an unbiased figure because the test set took "
        "no part in choosing it. "
    )
    if flips:
        text += (
            "Choosing on the test set would have picked other settings (" + "; ".join(flips)
        ) + "), and reported their test accuracy with the selection's optimism in it."
    elif tables:
        text += "In these tables the choice by validation and by test agree."
    return text


def search(src: Source) -> str:
    run = src.run("best_mlp")
    if not run.ok:
        return ""
    choices = (run.record or {}).get("choices") or {}
    scheme = ", ".join(f"{k} {choices[k]}" for k in ("activation", "optimizer") if k in choices)
    return (
        "**The search.** The best network's scheme (`experiment=best_mlp`: "
        f"{scheme}) comes from a hyperparameter search over all the tables' knobs at once "
        "(`python train.py -m experiment=mlp_search`, Optuna, chosen on validation), not "
        "from combining each table's winner: the knobs interact (the best learning rate "
        "depends on the optimizer), which one-at-a-time tables cannot show. The search is "
        "not rerun by the reproduction; its choice is."
    )


def test_power(src: Source) -> str:
    run = src.run("divergence_gan")
    if not run.ok:
        return ""
    _, tests = separation(run)
    if not tests:
        return ""
    repeats = (run.get("divergence_settings") or {}).get("repeats", "the")
    listed = "; ".join(
        f"{measure(t.measure)}: {pct(t.power, 0)} power, {pct(t.false_positives, 0)} false "
        "positives"
        for t in tests
    )
    return (
        "**Test power.** Each permutation test ran on "
        f"{repeats} fresh pairs of samples, so its rejection rates are measured, not assumed "
        f"({link('divergence table', slug(T_DIV_GAN))}): "
        f"{listed}. A test whose false-positive rate on real-against-real exceeds its "
        "nominal 5% cannot be trusted even when it is powerful; the recommendation in 5.3.3 "
        "takes only calibrated ones."
    )


def emd_solvers(src: Source) -> str:
    run = src.run("divergence_gan")
    if not run.ok:
        return ""
    cv, exact = _row(run, "emd_opencv"), _row(run, "emd_exact")
    if not cv or not exact or cv.get("mnist_vs_gan") is None:
        return ""
    return (
        "**Two EMD solvers.** OpenCV's `cv2.EMD`, which the problem set names, gives "
        f"{sig(cv['mnist_vs_gan'], 3)} for real against GAN where the exact optimal transport "
        f"(an assignment problem) gives {sig(exact['mnist_vs_gan'], 3)}: OpenCV's simplex "
        "stops after a fixed number of iterations, so its value can lie above the optimum, and "
        f"it takes {sig(cv.get('seconds'))} s against {sig(exact.get('seconds'))} s per call."
    )


def interpolation_ends(src: Source) -> str:
    vae = src.run("vae")
    if not vae.ok or "interpolation/confidence_ends" not in vae.metrics:
        return ""
    m = vae.metrics
    return (
        "**Reconstructions as a yardstick.** The classifier's confidence on decoded test "
        "digits themselves (the interpolation lines' end points) is "
        f"{sig(m.get('interpolation/confidence_ends'))} for the "
        f"VAE and {sig(m.get('autoencoder/interpolation/confidence_ends'))} for the "
        f"autoencoder, against {sig(m.get('real/confidence'))} on real test digits: part of "
        "what the interpolants lose is lost by decoding alone, before any interpolation "
        f"({link('VAE interpolations', figure_anchor('vae_interpolations.png'))})."
    )
