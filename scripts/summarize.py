"""Summarise a sweep: per cell (the jobs that differ only in seed) the mean, std, 95% interval
and n of the final metrics, the best cell by validation accuracy marked, as Markdown.

    python scripts/summarize.py runs/multirun/2026-11-24/10-00-00
    python scripts/summarize.py SWEEP_DIR --pivot optimizer lr --metric test/accuracy
    python scripts/summarize.py SWEEP_DIR --plot          # figures: PNGs + TensorBoard
    python scripts/summarize.py SWEEP_DIR --per-seed      # one row per job

Prints the table and writes summary.md and summary.csv into the sweep dir. With one seed per
cell the table is one row per job (no interval can be given). A search's sweep dir (Optuna's
study.db) shows its trials ranked, the best parameters and, with --plot, the history.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from ucl import aggregate, search_summary, stats, summary, sweeps
from ucl.config import refusal
from ucl.errors import UclError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun dir (holds one dir per job)")
    parser.add_argument("--pivot", nargs=2, metavar=("ROW", "COL"), help="two-way table")
    parser.add_argument("--metric", default="test/accuracy", help="the metric --pivot shows")
    parser.add_argument("--metrics", help="comma-separated metric columns (default: by task)")
    parser.add_argument(
        "--choose", help="the metric the best cell is chosen by (default: val/accuracy when "
        "the jobs report it, else test/accuracy)"
    )  # fmt: skip
    parser.add_argument("--per-seed", action="store_true", help="one row per job, no grouping")
    parser.add_argument("--plot", action="store_true", help="figures into the sweep dir and TB")
    args = parser.parse_args(argv)
    try:
        jobs = summary.find_jobs(args.sweep_dir)
        problems, covered = summary.accounting(args.sweep_dir, jobs, refusal)
        if not jobs:
            print(f"{args.sweep_dir}: no job dirs (none holds metrics.json or .hydra/)",
                  file=sys.stderr)  # fmt: skip
            print("".join(f"- {line}\n" for line in problems), end="", file=sys.stderr)
            return 1
        if search_summary.is_search(args.sweep_dir):  # trials, not cells: ranked instead
            text, figs = search_summary.section(args.sweep_dir, jobs, args.plot)
            csv = summary.to_csv(*summary.table(jobs))
        else:
            text, csv, figs = tables(args, jobs)
        if args.plot:
            from ucl.sweep_figures import save

            paths = save(args.sweep_dir, figs)
            text += "".join(f"\nfigure: {p}" for p in paths) + ("\n" if paths else "")
    except (FileNotFoundError, KeyError, UclError) as e:
        print(f"summarize: {str(e).strip(chr(39))}", file=sys.stderr)
        return 2
    if any(summary.DATA_COLUMN in j.params for j in jobs):
        text += (
            f"\nThe jobs trained on different data (column {summary.DATA_COLUMN}: the start of "
            f"each data fingerprint); runs on different data are never one cell.\n"
        )
    if problems:
        text += "\nNot completed:\n" + "".join(f"- {p}\n" for p in problems)
    if covered:
        text += f"\n{covered}\n"
    print(text, end="")
    (args.sweep_dir / "summary.md").write_text(text)
    (args.sweep_dir / "summary.csv").write_text(csv)
    return 0


def tables(args, jobs: list[summary.Job]) -> tuple[str, str, dict]:
    """(Markdown, CSV, figures) of the sweep: per cell over seeds (ucl.sweeps' frame), or per
    job with --per-seed or one seed per cell (today's table, unchanged); figures with --plot."""
    frame = sweeps.from_jobs(jobs)
    wanted = args.metrics.split(",") if args.metrics else None
    columns = wanted or sweeps.default_metrics(frame)
    choose = sweeps.choose_metric(frame, args.choose)
    cells = aggregate.cells(jobs)  # the pivot, the conclusions and the figures (as the report)
    # no metric to average (every job failed or unreadable): one row per job, with its status
    per_job = args.per_seed or sweeps.seeds_per_cell(frame) < 2 or not columns
    if per_job:
        header, rows = summary.table(jobs, wanted)
        text = summary.markdown(header, rows)
        csv = summary.to_csv(header, rows)
    else:
        if choose and choose not in columns:
            columns = [*columns[:1], choose, *columns[1:]]
        shown = [c for c in columns if c != choose][:1] or columns[:1]
        table, keys = sweeps.cells(frame, columns, choose, as_written=True), sweeps.cell_keys(frame)
        text = summary.markdown(*cell_table(table, keys, shown, choose))
        text += (
            f"\nmean ± half-width of the 95% Student-t interval over the seeds; {aggregate.BEST}: "
            f"highest mean {choose}; {aggregate.NEAR}: not significantly worse than the best "
            f"(Welch's t-test, p >= 0.05).\n"
        )
        csv = summary.to_csv(*header_rows(cell_csv(table, keys, columns)))
    if args.pivot:
        if per_job:
            p_header, p_rows = summary.pivot(jobs, *args.pivot, args.metric)
        else:
            p_header, p_rows = aggregate.pivot(cells, *args.pivot, args.metric)
        text += f"\n{args.metric}:\n\n" + summary.markdown(p_header, p_rows)
    if choose and columns:
        report = "test/accuracy" if "test/accuracy" in columns else columns[0]
        lines = aggregate.conclusions(cells, choose, report)
        text += "\n" + "".join(f"{line}\n" for line in lines) if lines else ""
    figs = {}
    if args.plot:
        from ucl import sweep_figures

        metric = args.metric if args.metric in frame.attrs["metrics"] else choose
        figs = sweep_figures.figures(cells, metric) if metric else {}
    return text, csv, figs


def cell_table(table: pd.DataFrame, keys: list[str], shown: list[str], choose: str | None):
    """The cells as aggregate.table prints them: the swept parameters, n, per metric the
    mean ± the 95% interval's half-width, for the first of `shown` also the std and the
    interval, the mean train seconds, status and mark."""
    first = shown[0]
    display = ([choose] if choose and choose not in shown else []) + shown
    header = [*keys, "n", *display, f"{first} std", f"{first} 95% CI", "train s", "status",
              "mark"]  # fmt: skip
    rows = []
    for row in table.to_dict("records"):
        seconds = _value(row.get("seconds/train mean"))
        rows.append(
            [*(row[k] for k in keys), row["n"], *(aggregate.mean_pm(_agg(row, m)) for m in display),
             _agg(row, first).std, aggregate.interval(_agg(row, first)),
             None if seconds is None else f"{seconds:.1f}", row["status"], row["mark"]]
        )  # fmt: skip
    return header, rows


def _agg(row: dict, metric: str) -> stats.Aggregate:
    """A cell's numbers of `metric` (a row of sweeps.cells) as aggregate formats them."""
    mean, std, half = (_value(row[f"{metric} {s}"]) for s in ("mean", "std", "ci95 ±"))
    return stats.Aggregate(row["n"], mean, std, half)


def cell_csv(table: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.DataFrame:
    """summary.csv of the cells: every number in its own column."""
    numbers = [f"{m} {s}" for m in columns for s in ("mean", "std", "ci95 low", "ci95 high")]
    train = table["seconds/train mean"] if "seconds/train mean" in table else None
    return table.assign(seeds=table["seeds"].map(" ".join))[
        [*keys, "n", "seeds", "status", "mark", *numbers]
    ].assign(**{"train s mean": train})


def header_rows(frame: pd.DataFrame) -> tuple[list[str], list[list]]:
    """A frame as summary.to_csv takes it, pandas' missing value as None (a NaN stays NaN:
    summary.csv writes it nan, a missing value empty; DataFrame.to_csv writes both empty)."""
    values = frame.astype(object).to_numpy().tolist()
    return list(frame.columns), [[None if v is pd.NA else v for v in row] for row in values]


def _value(v):
    """pandas' missing value (NA) as None; a NaN stays NaN, as aggregate prints it."""
    return None if v is pd.NA else v


if __name__ == "__main__":
    sys.exit(main())
