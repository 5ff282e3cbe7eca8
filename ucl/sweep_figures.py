"""Which figure a sweep's cells call for, and where it goes: the metric against a numeric
parameter (log axis for lr and hidden) with the interval as a band and one line per value of
a second parameter; bars for one categorical parameter; a heatmap for two. PNGs go into the
sweep dir, the same figures into TensorBoard under <sweep dir>/summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ucl import stats
from ucl.lifecycle import atomic_write
from ucl.plots import sweep as plots
from ucl.summary import ordered

LOG_KEYS = ("lr", "hidden")  # spread over decades: drawn on a log axis
LOG_SPAN = 20  # any other positive numeric parameter whose values span this factor, too
TENSORBOARD_DIR = "summary"  # the sweep's own TensorBoard run, beside the job dirs


class Cell(NamedTuple):
    params: dict[str, str]  # as written
    agg: stats.Aggregate  # of the metric drawn


def figures(table: pd.DataFrame, metric: str) -> dict:
    """name -> figure of `metric` over the swept parameters of a table of
    sweeps.cells(..., as_written=True) (none for more than two parameters: a search draws its
    history instead)."""
    keys = list(table.columns[: table.columns.get_loc("n")])
    params = table[keys].to_dict("records")
    cells = [
        Cell(p, stats.aggregate(v))
        for p, v in zip(params, table.attrs["values"][metric], strict=True)
    ]
    scored = [c for c in cells if c.agg.mean is not None]
    if not scored or not 1 <= len(keys) <= 2:
        return {}
    numeric = [k for k in keys if all(_float(c.params[k]) is not None for c in scored)]
    name = f"{metric.replace('/', '_')}_by_{'_'.join(keys)}"
    title = f"{metric}: mean and 95% interval over seeds"
    if numeric:
        x = max(numeric, key=lambda k: len({c.params[k] for c in scored}))
        hue = next((k for k in keys if k != x), None)
        series: dict[str, list] = {}
        for c in scored:
            label = f"{hue}={c.params[hue]}" if hue else ""
            series.setdefault(label, []).append(_point(c, float(c.params[x])))
        series = {k: series[k] for k in sorted(series, key=_natural_label)}
        return {name: plots.lines(series, x, metric, title, _log_axis(x, scored))}
    if len(keys) == 1:
        (key,) = keys
        labels = [c.params[key] for c in scored]
        points = [_point(c, i) for i, c in enumerate(scored)]
        return {name: plots.bars(labels, points, key, metric, title)}
    rows_v = ordered({c.params[keys[0]] for c in scored})
    cols_v = ordered({c.params[keys[1]] for c in scored})
    means = np.full((len(rows_v), len(cols_v)), np.nan)
    halves = np.full_like(means, np.nan)
    for c in scored:
        i, j = rows_v.index(c.params[keys[0]]), cols_v.index(c.params[keys[1]])
        a = c.agg
        means[i, j] = a.mean
        halves[i, j] = np.nan if a.half_width is None else a.half_width
    return {name: plots.heatmap(rows_v, cols_v, means, halves, keys[0], keys[1], title)}


def outputs(figs: dict) -> list[str]:
    """The entries `save` writes into its folder for `figs`."""
    return [*(f"{name}.png" for name in figs), *([TENSORBOARD_DIR] if figs else [])]


def save(folder: Path, figs: dict) -> list[Path]:
    """Each figure as <folder>/<name>.png and under its name in TensorBoard (the summary's
    own run <folder>/summary, rewritten on every call)."""
    from torch.utils.tensorboard import SummaryWriter

    from ucl.plots.training import png

    if not figs:
        return []
    paths = [Path(folder) / f"{name}.png" for name in figs]
    for path, fig in zip(paths, figs.values(), strict=True):
        atomic_write(path, png(fig))
    # the last summary's figures in TensorBoard go once the new ones are written
    board = Path(folder) / TENSORBOARD_DIR
    earlier = set(board.glob("events.out.tfevents.*"))
    try:
        with SummaryWriter(log_dir=str(board)) as writer:
            for name, fig in figs.items():
                writer.add_figure(name, fig, 0)  # and closes it
    except BaseException:
        for new in set(board.glob("events.out.tfevents.*")) - earlier:
            new.unlink(missing_ok=True)
        raise
    for old in earlier:
        old.unlink(missing_ok=True)
    return paths


def _point(c: Cell, x: float) -> plots.Point:
    return (x, c.agg.mean, c.agg.low, c.agg.high)


def _log_axis(key: str, found: list[Cell]) -> bool:
    values = [float(c.params[key]) for c in found]
    if min(values) <= 0:
        return False
    return key.split(".")[-1] in LOG_KEYS or max(values) / min(values) >= LOG_SPAN


def _float(v: str) -> float | None:
    try:
        x = float(v)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _natural_label(label: str):
    value = label.partition("=")[2]
    x = _float(value)
    return (0, x, "") if x is not None else (1, 0.0, value)
