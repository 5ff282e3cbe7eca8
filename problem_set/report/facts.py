"""The measured facts that answer the problem set's questions, drawn from metrics.json and
history.csv. Each function takes the reproduction's Source and returns one answer (Markdown
text); a stage that did not complete gives "not run" (or why it failed) instead."""

from __future__ import annotations

import math

from problem_set.report.sources import Run, Source
from ucl import aggregate, class_names, sweeps

# What the answers call "enough": the problem set asks for > 95% test accuracy; "close to
# the best" is within half a percentage point of the run's best test accuracy.
ACCURACY_BAR = 0.95
NEAR_BEST = 0.005
# A retina class "separates" in the 2-D code when most of its test cells have its own class
# as the majority of their 5 nearest training codes, and its cells lie on average closer to
# their own class than to the nearest other (silhouette > 0).
SEPARATES_KNN = 0.8
SEPARATES_SILHOUETTE = 0.0
SHOWN_PAIRS = 5  # confused pairs / closest centroid pairs named in an answer


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"


def num(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return f"{v:.{digits}g}" if abs(v) >= 1000 or abs(v) < 0.01 else f"{v:.{digits}f}"


short = class_names.short  # 'RBC (Rod Bipolar cell)' -> 'RBC'


# -- classification ---------------------------------------------------------------------


def accuracy_steps(run: Run) -> dict:
    """Final and best test accuracy, and the first iterations reaching the bar and coming
    within NEAR_BEST of the best (from history.csv's evaluations)."""
    rows = [r for r in run.history if "test/accuracy" in r]
    out = {
        "final": run.metrics.get("test/accuracy"),
        "best": run.metrics.get("test/best_accuracy"),
        "best_step": run.metrics.get("test/best_step"),
        "steps": run.metrics.get("steps"),
        "bar_step": None,
        "near_step": None,
    }
    if rows:
        best = max(r["test/accuracy"] for r in rows)
        out["bar_step"] = next((r["step"] for r in rows if r["test/accuracy"] > ACCURACY_BAR), None)
        out["near_step"] = next(r["step"] for r in rows if r["test/accuracy"] >= best - NEAR_BEST)
    return out


def accuracy_answer(run: Run, label: str) -> str:
    if not run.ok:
        return f"{label}: {run.why_missing()}"
    a = accuracy_steps(run)
    bar = (
        f"above {pct(ACCURACY_BAR)} from iteration {int(a['bar_step'])}"
        if a["bar_step"] is not None
        else f"never above {pct(ACCURACY_BAR)}"
    )
    near = (
        f"; within {100 * NEAR_BEST:g} points of its best from iteration {int(a['near_step'])}"
        if a["near_step"] is not None
        else ""
    )
    return (
        f"{label}: test accuracy {pct(a['final'])} after {_int(a['steps'])} iterations "
        f"(best {pct(a['best'])} at iteration {_int(a['best_step'])}); {bar}{near}"
    )


def best_cell(src: Source, stage: str) -> tuple[aggregate.Cell, str] | None:
    """A sweep's best cell (the jobs that differ only in seed), chosen by validation accuracy
    when the jobs report it, else by test accuracy, and the metric it was chosen by."""
    jobs = src.jobs(stage)
    choose = aggregate.choose_metric(jobs)
    cells = aggregate.cells(jobs)
    best = aggregate.best_cell(cells, choose) if choose else None
    return None if best is None else (best, choose)


def sweep_answer(src: Source, stage: str, keys: list[str], label: str) -> str:
    found = best_cell(src, stage)
    if found is None:
        return f"{label}: {src.run(stage).why_missing()}"
    best, choose = found
    chosen = ", ".join(f"{k}={best.params[k]}" for k in keys if k in best.params)
    cells = aggregate.cells(src.jobs(stage))
    test = best.agg("test/accuracy")
    seeds = f"mean of {test.n} seeds, " if test.n > 1 else ""
    text = (
        f"{label}: {chosen or 'the only cell'} ({sweeps.mean_pm(test, pct=True)} test "
        f"accuracy, {seeds}chosen by {choose} among {len(cells)})"
    )
    marked = aggregate.marks(cells, choose)
    near = [c for c in cells if marked.get(id(c)) == sweeps.NEAR]
    if near:
        names = ", ".join(", ".join(f"{k}={c.params[k]}" for k in keys) for c in near)
        text += f", within noise of {names}"
    return text


def confused_answer(run: Run) -> str:
    pairs = run.get("most_confused") or []
    if not run.ok:
        return run.why_missing()
    if not pairs:
        return "no test digit was misclassified"
    tested = sum(map(sum, run.get("confusion_matrix") or [])) or None
    shown = ", ".join(f"{p['true']}→{p['predicted']} ({p['count']})" for p in pairs[:SHOWN_PAIRS])
    return f"true→predicted (count of {_int(tested)} test digits): {shown}"


# -- autoencoders and VAE -----------------------------------------------------------------


def embedding_answer(run: Run) -> str:
    if not run.ok:
        return run.why_missing()
    pairs = run.metrics.get("latent/closest_pairs") or []
    closest = ", ".join(
        f"{short(p['a'])}–{short(p['b'])} ({num(p['distance'])})" for p in pairs[:SHOWN_PAIRS]
    )
    per_class = run.metrics.get("latent/knn_accuracy_per_class") or {}
    worst = sorted(per_class.items(), key=lambda kv: kv[1])[:3]
    mixed = ", ".join(f"{short(k)} ({pct(v)})" for k, v in worst)
    return (
        f"closest class centroids in the 2-D code: {closest or '–'}; kNN (k=5) accuracy "
        f"{pct(run.metrics.get('latent/knn_accuracy'))}, silhouette "
        f"{num(run.metrics.get('latent/silhouette'))}; the most mixed classes: {mixed or '–'}"
    )


def separated_classes(run: Run) -> tuple[list[str], int]:
    """(classes that separate, number of classes) by SEPARATES_KNN and SEPARATES_SILHOUETTE."""
    knn = run.metrics.get("latent/knn_accuracy_per_class") or {}
    sil = run.metrics.get("latent/silhouette_per_class") or {}
    good = [
        c for c in knn if knn[c] >= SEPARATES_KNN and sil.get(c, -math.inf) > SEPARATES_SILHOUETTE
    ]
    return good, len(knn)


def retina_answer(run: Run) -> str:
    if not run.ok:
        return run.why_missing()
    good, total = separated_classes(run)
    data = "the synthetic stand-in" if run.synthetic else "the real Shekhar et al. cells"
    return (
        f"{len(good)} of {total} classes separate ({', '.join(map(short, good)) or 'none'}: "
        f"per-class kNN accuracy ≥ {pct(SEPARATES_KNN)} and silhouette > "
        f"{SEPARATES_SILHOUETTE:g}); overall kNN accuracy "
        f"{pct(run.metrics.get('latent/knn_accuracy'))}, silhouette "
        f"{num(run.metrics.get('latent/silhouette'))} on {data}"
    )


def ae_vae_values(src: Source) -> dict[str, dict[str, float | None]]:
    """AE and VAE test MSE, interpolant confidence and kNN accuracy. The VAE run measures
    the autoencoder on its own test set and interpolation pairs (autoencoder/...); the
    autoencoder's own run is the fallback."""
    vae, ae = src.run("vae"), src.run("autoencoder_mnist")
    keys = ("test/mse", "interpolation/confidence", "latent/knn_accuracy")
    out = {"VAE": {k: vae.metrics.get(k) for k in keys} if vae.ok else {}}
    out["autoencoder"] = {
        k: vae.metrics.get(f"autoencoder/{k}", ae.metrics.get(k) if ae.ok else None) for k in keys
    }
    return out


def ae_vae_answer(src: Source) -> str:
    vae, ae = src.run("vae"), src.run("autoencoder_mnist")
    if not vae.ok:
        return f"VAE: {vae.why_missing()}"
    v = ae_vae_values(src)
    a, b = v["autoencoder"], v["VAE"]
    if a["test/mse"] is None:
        return f"autoencoder: {ae.why_missing()}"
    conf_a, conf_b = a["interpolation/confidence"], b["interpolation/confidence"]
    verdict = ""
    if conf_a is not None and conf_b is not None and conf_a != conf_b:
        more = "VAE" if conf_b > conf_a else "autoencoder"
        verdict = f"; the {more}'s interpolants look more like digits to the classifier"
    return (
        f"test MSE per pixel: autoencoder {num(a['test/mse'], 4)}, VAE {num(b['test/mse'], 4)}; "
        f"classifier confidence on decoded interpolants: autoencoder {num(conf_a)}, VAE "
        f"{num(conf_b)}{verdict}"
    )


# -- GAN ---------------------------------------------------------------------------------


def histogram_answer(src: Source) -> str:
    gan = src.run("gan")
    if not gan.ok:
        return f"GAN: {gan.why_missing()}"
    counts = gan.metrics.get("samples/class_counts") or []
    if not counts:
        return "the GAN's samples were not classified (no classifier given)"
    total = sum(counts)
    rare = min(range(len(counts)), key=counts.__getitem__)
    common = max(range(len(counts)), key=counts.__getitem__)
    mnist = mnist_shares(src)
    against = f" (MNIST: {pct(mnist[rare])} and {pct(mnist[common])})" if mnist is not None else ""
    missing = sum(c == 0 for c in counts)
    never = f" ({missing} classes never drawn)" if missing > 1 else ""
    return (
        f"rarest class {rare} at {pct(counts[rare] / total)}{never}, most common {common} at "
        f"{pct(counts[common] / total)}{against}; chi-squared against MNIST's class "
        f"frequencies {num(gan.metrics.get('samples/chi2'))} (p = "
        f"{num(gan.metrics.get('samples/chi2_p'))}), real test digits "
        f"{num(gan.metrics.get('real/chi2'))}"
    )


def mnist_shares(src: Source) -> list[float] | None:
    """MNIST's test class shares: the row sums of the best classifier's confusion matrix."""
    matrix = src.run("best_mlp").get("confusion_matrix") or src.run("logreg").get(
        "confusion_matrix"
    )
    if not matrix:
        return None
    rows = [sum(r) for r in matrix]
    return [r / sum(rows) for r in rows]


def _int(v) -> str:
    return "–" if v is None else str(int(v))
