"""A hyperparameter search's sweep dir (Hydra's Optuna sweeper) summarised: the trials ranked
by the metric they were chosen by, the best parameters, and the optimisation history as a
figure, read from the study stored beside the trials."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from ucl.aggregate import choose_metric
from ucl.summary import Job, swept_keys
from ucl.sweeps import higher_is_better, markdown

RESULTS = "optimization_results.yaml"  # what the Optuna sweeper writes at the end of a search
STUDY = "study.db"  # the study (sqlite), as conf/hydra/sweeper/mlp_search.yaml stores it
SHOWN = 10  # trials in the ranking


def is_search(sweep_dir: Path) -> bool:
    return (Path(sweep_dir) / RESULTS).is_file() or (Path(sweep_dir) / STUDY).is_file()


def ranked(jobs: list[Job], metric: str) -> list[Job]:
    done = [j for j in jobs if j.status == "completed" and metric in j.metrics]
    sign = 1 if higher_is_better(metric) else -1
    return sorted(done, key=lambda j: -sign * float(j.metrics[metric]))


def study_values(sweep_dir: Path) -> list[float | None] | None:
    """Each trial's value in the study's order (None for a failed or running one); None
    when there is no study or Optuna is not installed (pip install -e '.[search]')."""
    path = Path(sweep_dir) / STUDY
    if not path.is_file():
        return None
    try:
        import optuna
    except ImportError:
        return None
    storage = f"sqlite:///{path.resolve()}"
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if not names:
        return None
    study = optuna.load_study(study_name=names[-1], storage=storage)
    return [t.value if t.value is not None else None for t in study.trials]


def section(sweep_dir: Path, jobs: list[Job], plot: bool) -> tuple[str, dict]:
    """Markdown (the ranking, the best parameters) and, with plot=True, the history as
    a figure {name: figure}."""
    metric = choose_metric(jobs) or "test/accuracy"
    order = ranked(jobs, metric)
    keys = swept_keys(jobs, frozenset({"seed"}))
    report = "test/accuracy"
    header = ["rank", "job", *keys, metric, report]
    rows = [
        [i + 1, j.path.name, *(short(j.params.get(k, "")) for k in keys), j.metrics.get(metric),
         j.metrics.get(report)]
        for i, j in enumerate(order[:SHOWN])
    ]  # fmt: skip
    text = f"Search: {len(jobs)} trials, {len(order)} completed; ranked by {metric}:\n\n"
    text += markdown(pd.DataFrame(rows, columns=header))
    results = Path(sweep_dir) / RESULTS
    if order:
        best = order[0]
        params = ", ".join(f"{k}={short(best.params[k])}" for k in keys if k in best.params)
        text += (
            f"\nBest trial ({best.path.name}): {params}; {metric} "
            f"{best.metrics[metric]:.4f}, {report} {best.metrics.get(report, float('nan')):.4f}\n"
        )
    if results.is_file():
        found = yaml.safe_load(results.read_text()) or {}
        text += f"The sweeper's best parameters ({RESULTS}): {found.get('best_params')}\n"
    values = study_values(sweep_dir) if plot else None
    if not values:
        return text, {}
    from ucl.plots import sweep as plots

    title = "search: each trial and the best so far"
    fig = plots.history(values, metric, title, higher_is_better(metric))
    return text, {"optimization_history": fig}


def short(value: str) -> str:
    """A sampled float to 4 significant digits (0.020289666732948148 -> 0.02029)."""
    try:
        x = float(value)
    except ValueError:
        return value
    return value if x.is_integer() and "." not in value else f"{x:.4g}"
