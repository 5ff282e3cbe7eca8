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

from ucl import aggregate, search_summary, summary
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
    """(Markdown, CSV, figures) of the sweep: per cell over seeds, or per job with
    --per-seed or one seed per cell (today's table, unchanged); figures with --plot."""
    wanted = args.metrics.split(",") if args.metrics else None
    columns = summary.metric_columns(jobs, wanted)
    cells = aggregate.cells(jobs)
    choose = aggregate.choose_metric(jobs, args.choose)
    # no metric to average (every job failed or unreadable): one row per job, with its status
    per_job = args.per_seed or aggregate.seeds_per_cell(cells) < 2 or not columns
    if per_job:
        header, rows = summary.table(jobs, wanted)
        text = summary.markdown(header, rows)
        csv = summary.to_csv(header, rows)
    else:
        if choose and choose not in columns:
            columns = [*columns[:1], choose, *columns[1:]]
        shown = [c for c in columns if c != choose][:1] or columns[:1]
        header, rows = aggregate.table(cells, shown, choose)
        text = summary.markdown(header, rows)
        text += (
            f"\nmean ± half-width of the 95% Student-t interval over the seeds; {aggregate.BEST}: "
            f"highest mean {choose}; {aggregate.NEAR}: not significantly worse than the best "
            f"(Welch's t-test, p >= 0.05).\n"
        )
        csv = summary.to_csv(*aggregate.csv_table(cells, columns, choose))
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

        metric = args.metric if args.metric in {k for j in jobs for k in j.metrics} else choose
        figs = sweep_figures.figures(cells, metric) if metric else {}
    return text, csv, figs


if __name__ == "__main__":
    sys.exit(main())
