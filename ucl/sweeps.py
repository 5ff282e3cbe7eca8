"""A sweep as a pandas DataFrame: one row per job, one row per cell over the seeds, and the
tables summarize.py and the report print of them (per job, per cell, two-way, in words).

    from ucl import sweeps
    frame = sweeps.load("runs/multirun/2026-12-04/10-00-00")   # one row per job
    table = sweeps.cells(frame, metric="test/accuracy")        # mean, 95% interval, marks

load() reads the jobs of ucl.summary.find_jobs, in its order; cells() groups them by the
resolved config minus seed and runtime keys (never across data), and the numbers come from
ucl.stats (Student-t interval, Welch's test) on each cell's values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ucl import stats
from ucl.errors import CorruptFileError
from ucl.keys import RUNTIME_KEYS
from ucl.lifecycle import is_number
from ucl.rundir import read_config_record
from ucl.summary import DATA_COLUMN, Job, find_jobs, ordered, swept_keys, varying_keys

STATS = ("mean", "std", "ci95 low", "ci95 high", "ci95 ±")  # per metric, in cells()
# two jobs that differ only in these (where and how they ran) or in their seed are one cell
CELL_IGNORES = RUNTIME_KEYS | {"seed"}
CHOOSE_BY = ("val/accuracy", "test/accuracy")  # the first a sweep's jobs report picks the best
BEST, NEAR = "best", "≈ best"  # the marks of the best cell and of those within noise of it
# a classifier's default columns; val/accuracy shows when the jobs held out a validation split
CLASSIFY_COLUMNS = [
    "val/accuracy", "test/accuracy", "test/error", "test/best_accuracy", "test/best_step"
]  # fmt: skip
MAX_DEFAULT_METRICS = 6  # any other task's default: its first numeric metrics


def load(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per job dir below `sweep_dir` (summary.find_jobs' jobs, in its order).

    Columns: `job` (the dir name); the swept parameters (typed as the job's config holds
    them, else the override as written); every other key of the resolved config (dotted);
    `data` (the data fingerprint's digest); `status`, `reason`; each metric (a metric named
    like a config key, `steps`, is `metrics/steps`); `seconds/<part>`; `run_dir` (a Path);
    `overrides` (the job's overrides as written, key -> string). frame.attrs names the
    groups: "swept", "config", "metrics" (metric -> column) and "seconds"."""
    return from_jobs(find_jobs(Path(sweep_dir)))


def from_jobs(jobs: list[Job]) -> pd.DataFrame:
    """load()'s frame of jobs already found (summary.find_jobs)."""
    swept = swept_keys(jobs)
    configs = [_config(j.path) for j in jobs]
    config_keys = [k for k in dict.fromkeys(k for c in configs for k in c) if k not in swept]
    columns: dict[str, object] = {"job": [j.path.name for j in jobs]}
    for key in swept:
        if key == DATA_COLUMN:
            columns[key] = [j.data for j in jobs]
        else:
            pairs = zip(jobs, configs, strict=True)
            columns[key] = [c[key] if key in c else j.params.get(key) for j, c in pairs]
    for key in config_keys:
        columns[key] = [c.get(key) for c in configs]
    if DATA_COLUMN not in columns:
        columns[DATA_COLUMN] = [j.data for j in jobs]
    columns["status"] = [j.status for j in jobs]
    columns["reason"] = [j.reason for j in jobs]
    metrics = {}
    for name in dict.fromkeys(k for j in jobs for k in j.metrics):
        column = f"metrics/{name}" if name in columns else name
        metrics[name] = column
        columns[column] = [j.metrics.get(name) for j in jobs]
    parts = list(dict.fromkeys(k for j in jobs for k in j.seconds))
    for part in parts:
        columns[f"seconds/{part}"] = [j.seconds.get(part) for j in jobs]
    columns["run_dir"] = [j.path for j in jobs]
    columns["overrides"] = [dict(j.params) for j in jobs]
    frame = pd.DataFrame({k: _column(v) for k, v in columns.items()})
    frame.attrs.update(
        swept=swept,
        config=[k for k in dict.fromkeys(k for c in configs for k in c)],
        metrics=metrics,
        seconds=[f"seconds/{p}" for p in parts],
    )
    return frame


def cells(
    frame: pd.DataFrame,
    metric: str | Iterable[str] | None = None,
    choose: str | None = None,
    *,
    as_written: bool = False,
) -> pd.DataFrame:
    """One row per cell (the jobs that differ only in seed and runtime keys), in the order of
    their first jobs: the swept parameters, `n` (completed jobs), per metric its mean, std
    and 95% Student-t interval over the seeds (`<metric> ci95 low`, `... high`, `... ±`, the
    half-width), `seconds/train mean`, `status` (which seeds did not complete), `mark` (best
    by `choose`'s mean, ≈ best where Welch's t-test at 5% cannot tell a cell from it),
    `seeds` and `jobs` (the frame's index labels of its rows). table.attrs["values"] holds
    each metric's values per cell (the completed jobs' numbers, NaN included).

    `metric`: one name or several (default: as summarize.py picks them); `choose`: the metric
    the best cell is chosen by (default val/accuracy when reported, else test/accuracy); it
    is shown too. `as_written`: the parameters and seeds as the overrides wrote them (the
    strings summarize.py prints) rather than typed."""
    names = _metrics_of(frame)
    wanted = [metric] if isinstance(metric, str) else list(metric or default_metrics(frame))
    choose = choose_metric(frame, choose)
    shown = list(dict.fromkeys([*wanted[:1], *([choose] if choose else []), *wanted[1:]]))
    ids = _cell_ids(frame)
    firsts = ~ids.duplicated()
    written = _written(frame)
    keys = cell_keys(frame)
    done = frame["status"].eq("completed")
    columns: dict[str, object] = {}
    for key in keys:
        source = key in frame and (not as_written or "overrides" not in frame)
        labels = frame[key] if source else written.get(key, pd.Series("", index=frame.index))
        columns[key] = _column(list(labels[firsts].fillna("") if not source else labels[firsts]))
    columns["n"] = done.groupby(ids).sum().astype(int).to_numpy()
    values = {}
    for m in shown:
        data = frame[names[m]] if m in names else _nothing(frame)
        values[m] = data.astype(object).where(done, None).groupby(ids).agg(_numbers).to_numpy()
        aggs = [stats.aggregate(v) for v in values[m]]
        for stat, field in zip(STATS, ("mean", "std", "low", "high", "half_width"), strict=True):
            columns[f"{m} {stat}"] = _column([getattr(a, field) for a in aggs])
    if "seconds/train" in frame:
        train = frame["seconds/train"].astype(object).where(done, None).groupby(ids).agg(_numbers)
        columns["seconds/train mean"] = _column([stats.aggregate(v).mean for v in train])
    seeds = _seeds(frame, written)
    statuses = pd.DataFrame({"status": frame["status"], "seed": seeds}).groupby(ids)
    columns["status"] = [_status(g["status"].tolist(), g["seed"].tolist()) for _, g in statuses]
    columns["mark"] = marks(values[choose], choose) if choose else [""] * len(columns["n"])
    shown_seeds = seeds if as_written or "seed" not in frame else frame["seed"].astype(object)
    present = shown_seeds.groupby(ids).agg(lambda s: [v for v in s if _present(v)])
    columns["seeds"] = present.to_numpy()
    columns["jobs"] = frame.index.to_series(index=frame.index).groupby(ids).agg(list).to_numpy()
    table = pd.DataFrame(columns)
    table.attrs = {"values": values}
    return table


def choose_metric(frame: pd.DataFrame, wanted: str | None = None) -> str | None:
    """`wanted`, else val/accuracy when a job reports it, else test/accuracy, else None."""
    return wanted or next((m for m in CHOOSE_BY if m in _metrics_of(frame)), None)


def default_metrics(frame: pd.DataFrame) -> list[str]:
    """The metrics summarize.py shows by default: a classifier's accuracies, else the first
    few numeric ones."""
    names = _metrics_of(frame)
    present = [m for m, c in names.items() if frame[c].map(is_number).any()]
    if "test/accuracy" in present:
        return [c for c in CLASSIFY_COLUMNS if c in present]
    return present[:MAX_DEFAULT_METRICS]


def cell_keys(frame: pd.DataFrame) -> list[str]:
    """The parameters that tell the cells apart (summary.swept_keys without seed and the
    runtime keys): those that vary across the jobs' overrides, else all of them."""
    if "overrides" not in frame:  # a frame of some columns only: its swept ones
        return [k for k in frame.attrs.get("swept", []) if k in frame and k not in CELL_IGNORES]
    return _varying(frame, CELL_IGNORES)


def seeds_per_cell(frame: pd.DataFrame) -> int:
    """The most jobs in one cell."""
    return int(_cell_ids(frame).value_counts().max()) if len(frame) else 0


# -- the tables summarize.py and the report print ---------------------------------------------
def job_table(frame: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per job: its dir name, the swept parameters as written, status, each metric
    (default_metrics) and the train seconds."""
    written, names = _written(frame), _metrics_of(frame)
    shown = [_plain(frame, names.get(m)).rename(m) for m in metrics or default_metrics(frame)]
    keys = [written[k].fillna("") for k in _varying(frame)]
    train = _plain(frame, "seconds/train").rename("train s")
    return pd.concat([frame["job"], *keys, frame["status"], *shown, train], axis=1)


def cell_table(table: pd.DataFrame, metric: str, choose: str | None = None) -> pd.DataFrame:
    """A table of cells(..., as_written=True) as printed: the swept parameters, n, the mean ±
    the 95% interval's half-width of `choose` and `metric`, `metric`'s std and interval, the
    mean train seconds, status and mark."""
    aggs = {m: [stats.aggregate(v) for v in table.attrs["values"][m]] for m in (choose, metric)
            if m}  # fmt: skip
    shown = {m: [mean_pm(a) for a in aggs[m]] for m in aggs}
    shown[f"{metric} std"] = [a.std for a in aggs[metric]]
    shown[f"{metric} 95% CI"] = [interval(a) for a in aggs[metric]]
    seconds = _plain(table, "seconds/train mean")
    shown["train s"] = [None if v is None else f"{v:.1f}" for v in seconds]
    columns = [pd.Series(v, table.index, object, k) for k, v in shown.items()]
    keys = table.iloc[:, : table.columns.get_loc("n") + 1]  # a key may share a metric's name
    return pd.concat([keys, *columns, table["status"], table["mark"]], axis=1)


def pivot(frame: pd.DataFrame, row_key: str, col_key: str, metric: str, over_seeds=True):
    """A two-way table of `metric`: one row per value of row_key, one column per value of
    col_key (as written; numbers in numeric order). Each square holds a cell's mean ± the
    half-width (the mean alone with one seed), or with over_seeds=False a job's value; the
    status where nothing completed."""
    if over_seeds:
        table = cells(frame, metric, as_written=True)
        labels = have = table.iloc[:, : table.columns.get_loc("n")]
        values = [
            mean_pm(stats.aggregate(v)) if n else status
            for v, n, status in zip(
                table.attrs["values"][metric], table["n"], table["status"], strict=True
            )
        ]
    else:
        labels, names = _written(frame), _metrics_of(frame)
        have = _varying(frame)
        done = frame["status"].eq("completed")
        values = _plain(frame, names.get(metric)).where(done, frame["status"])
    swept = ", ".join(have) or "none"
    if row_key == col_key:
        raise KeyError(
            f"--pivot {row_key} {col_key}: give two different keys (the swept parameters are: "
            f"{swept})"
        )
    for key in (row_key, col_key):
        if key == "seed" and over_seeds:
            raise KeyError(
                f"--pivot: the cells are means over seed; pivot two swept parameters ({swept}), "
                f"or add --per-seed for a square per job"
            )
        if key not in labels:
            raise KeyError(f"--pivot: no job sets {key!r}; the swept parameters are: {swept}")
    rows, cols = (labels[key].fillna("") for key in (row_key, col_key))
    square = dict(zip(zip(rows, cols, strict=True), values, strict=True))
    cols_v = ordered(set(cols))
    body = [[r, *(square.get((r, c)) for c in cols_v)] for r in ordered(set(rows))]
    return pd.DataFrame(body, columns=[f"{row_key} \\ {col_key}", *cols_v], dtype=object)


def conclusions(frame: pd.DataFrame, choose: str, report: str) -> list[str]:
    """What the seeds support, in words: the best cell by `choose` and its `report` result,
    the cells within noise of it, how many are significantly worse, and the neighbours in the
    ranking the seeds do not separate."""
    table = cells(frame, report, choose, as_written=True)
    if BEST not in set(table["mark"]):
        return []
    keys = table.columns[: table.columns.get_loc("n")]
    names = [describe(dict(zip(keys, row, strict=True))) for row in table[keys].itertuples(False)]
    marked, values = list(table["mark"]), table.attrs["values"][choose]
    best = marked.index(BEST)
    a = stats.aggregate(table.attrs["values"][report][best])
    lines = [
        f"Best by {choose}: {names[best]}, {report} {mean_pm(a, pct=True)} "
        f"(mean over {a.n} seed{'s' if a.n != 1 else ''}"
        + (", ± the 95% interval's half-width)" if a.half_width is not None else ")")
    ]
    if seeds_per_cell(frame) < 2 or len(values[best]) < 2:
        lines.append(
            "One seed per cell: no confidence interval or significance test can be given "
            "(run the sweep with seed=0,1,2)."
        )
        return lines
    near = [name for name, mark in zip(names, marked, strict=True) if mark == NEAR]
    worse = sum(1 for v, mark in zip(values, marked, strict=True) if len(v) and not mark)
    if near:
        lines.append(
            f"Within noise of the best (Welch's t-test on {choose}, p >= 0.05): "
            f"{', '.join(near)}; the seeds do not rank these."
        )
    else:
        lines.append(f"Every other cell is significantly worse on {choose} (Welch, p < 0.05).")
    if worse and near:
        lines.append(f"Significantly worse than the best (p < 0.05): {worse} cell(s).")
    sign = 1 if higher_is_better(choose) else -1
    ranked = sorted((i for i, v in enumerate(values) if len(v) >= 2),
                    key=lambda i: -sign * stats.aggregate(values[i]).mean)  # fmt: skip
    ties = [f"{names[i]} and {names[j]}" for i, j in zip(ranked, ranked[1:], strict=False)
            if best not in (i, j) and stats.within_noise(values[i], values[j])]  # fmt: skip
    if ties:
        lines.append(
            f"Neighbours in the ranking the seeds do not separate (p >= 0.05): {'; '.join(ties)}."
        )
    return lines


def describe(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "the only cell"


def mean_pm(a: stats.Aggregate, pct: bool = False) -> str | float | None:
    if a.mean is None:
        return None
    if pct:
        text = f"{100 * a.mean:.2f}%"
        return text if a.half_width is None else f"{text} ± {100 * a.half_width:.2f}"
    if a.half_width is None:
        return a.mean
    return f"{a.mean:.4f} ± {a.half_width:.4f}"


def interval(a: stats.Aggregate) -> str | None:
    return None if a.low is None else f"[{a.low:.4f}, {a.high:.4f}]"


def markdown(table: pd.DataFrame, cell=None) -> str:
    """The one Markdown table writer: each value as `cell` shows it (default: 4 decimals,
    big numbers whole, a missing value as a dash), in tabulate's pipe format unpadded."""
    text = table.map(cell or _cell).to_markdown(
        index=False, tablefmt="pipe", stralign=None, numalign=None, disable_numparse=True
    )
    return text + "\n"


def to_csv(table: pd.DataFrame) -> str:
    """CSV of a table: a missing value empty, a NaN as nan (a value the job recorded)."""
    return (
        table.astype(object)
        .map(lambda v: "nan" if _nan(v) else v)
        .to_csv(index=False, lineterminator="\n")
    )


def _cell(v) -> str:
    if v is None or v is pd.NA:
        return "–"
    if isinstance(v, float) and math.isfinite(v):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _plain(frame: pd.DataFrame, column: str | None) -> pd.Series:
    """A column as Python objects, pandas' missing value as None (a NaN stays NaN)."""
    if column not in frame:
        return _nothing(frame)
    values = [None if v is pd.NA else v for v in frame[column].astype(object)]
    return pd.Series(values, frame.index, object, column)


# -- the pieces ------------------------------------------------------------------------------
def _config(job_dir: Path) -> dict:
    """The job's resolved config by dotted key (its config record, else Hydra's copy), with
    the runtime keys; {} when there is none or it cannot be read."""
    try:
        record = read_config_record(job_dir)
    except CorruptFileError:
        return {}
    if not record:
        return {}
    flat = pd.json_normalize(record, sep=".").to_dict("records")[0]  # Python values
    return {k: v for k, v in flat.items() if not k.startswith("hydra.")}


def _column(values: list):
    """A typed column: pandas' nullable types where the values allow (an int stays an int
    beside a missing value); objects for anything else (lists, Paths, dicts, mixed), and
    where a float is NaN (a value, kept apart from a missing one, as the jobs record it)."""
    plain = not any(isinstance(v, (list, tuple, dict, set, Path)) or _nan(v) for v in values)
    if plain and any(v is not None and v is not pd.NA for v in values):
        try:
            return pd.array(values)
        except (TypeError, ValueError, OverflowError):
            pass
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _metrics_of(frame: pd.DataFrame) -> dict[str, str]:
    if "metrics" not in frame.attrs or "status" not in frame:
        raise ValueError(
            "sweeps.cells() needs a frame from sweeps.load() (with its status column; its "
            "attrs name the config, swept and metric columns)"
        )
    return dict(frame.attrs["metrics"])


def _written(frame: pd.DataFrame) -> pd.DataFrame:
    """Each job's overrides as written, one column per key (first-seen order)."""
    if "overrides" not in frame:
        return pd.DataFrame(index=frame.index)
    return pd.DataFrame(list(frame["overrides"]), index=frame.index, dtype=object)


def _cell_ids(frame: pd.DataFrame) -> pd.Series:
    """0, 1, ... per row: its cell, numbered in the order of the cells' first jobs. Rows are
    one cell when their config minus CELL_IGNORES is the same, or, for a job with no config
    record, its overrides; and their data the same (Job.cell_key)."""
    swept = frame.attrs.get("swept", [])
    config = [c for c in frame.attrs.get("config", []) if c in frame and c not in CELL_IGNORES]
    # a swept column holds the override where a job has no config: the others tell
    has_config = frame[[c for c in config if c not in swept]].notna().any(axis=1)
    if "overrides" in frame:
        written = _written(frame)
        others = written[[k for k in written.columns if k not in CELL_IGNORES]]
    else:  # a frame of some columns only: its swept ones
        others = frame[[k for k in swept if k in frame and k not in CELL_IGNORES]]
    key = _joined(frame[config]).where(has_config, "overrides\x1e" + _joined(others))
    data = _joined(frame[[DATA_COLUMN]] if DATA_COLUMN in frame else frame[[]])
    codes, _ = pd.factorize(key + "\x1d" + data, sort=False)  # first seen, first numbered
    return pd.Series(codes, index=frame.index)


def _joined(columns: pd.DataFrame) -> pd.Series:
    """Each row's values as one string (their reprs): equal strings, equal values."""
    reprs = columns.astype(object).map(repr).to_numpy()
    return pd.Series(["\x1f".join(row) for row in reprs], index=columns.index, dtype=object)


def _seeds(frame: pd.DataFrame, written: pd.DataFrame) -> pd.Series:
    """Each job's seed as Job.seed gives it: the override as written, else the config's."""
    given = written["seed"] if "seed" in written else _nothing(frame)
    if "seed" in frame.attrs.get("config", []) and "seed" in frame:
        own = frame["seed"].astype(object).map(lambda v: str(v) if _present(v) else None)
        given = given.where(given.notna(), own)
    return given.astype(object).where(given.notna(), None)


def _status(statuses: list[str], seeds: list) -> str:
    """completed, or which seeds did not complete and how they ended."""
    bad = [(s, seed) for s, seed in zip(statuses, seeds, strict=True) if s != "completed"]
    if not bad:
        return "completed"
    if len(bad) == len(statuses) == 1:
        return bad[0][0]
    said = ", ".join(f"seed={seed if seed is not None else '?'} {s}" for s, seed in bad)
    return f"{len(statuses) - len(bad)} of {len(statuses)} completed ({said})"


def higher_is_better(metric: str) -> bool:
    return any(word in metric for word in ("accuracy", "score", "confidence"))


def marks(values: list[list[float]], metric: str) -> list[str]:
    """Given each cell's values of `metric`: BEST for the cell of the highest mean (the lowest
    for a loss; the first of equal ones), NEAR for each cell Welch's t-test cannot tell from
    it (needs 2 seeds on both sides), "" for the others."""
    sign = 1 if higher_is_better(metric) else -1
    means = [stats.aggregate(v).mean for v in values]
    out = [""] * len(values)
    scored = [i for i, mean in enumerate(means) if mean is not None]
    if not scored:
        return out
    best = max(scored, key=lambda i: sign * means[i])
    out[best] = BEST
    for i, other in enumerate(values):
        if i != best and stats.within_noise(values[best], other):
            out[i] = NEAR
    return out


def _numbers(series: pd.Series) -> list[float]:
    """The numbers among a cell's values, NaN included (a run that ended in NaN counts)."""
    return [float(v) for v in series if is_number(v)]


def _varying(frame: pd.DataFrame, skip=frozenset()) -> list[str]:
    """The override keys that vary across the jobs (summary.varying_keys)."""
    if "overrides" not in frame:
        return []
    status = list(frame["status"]) if "status" in frame else [""] * len(frame)
    return varying_keys(list(frame["overrides"]), status, skip)


def _nothing(frame: pd.DataFrame) -> pd.Series:
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _nan(v) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _present(v) -> bool:
    return v is not None and v is not pd.NA and not _nan(v)
