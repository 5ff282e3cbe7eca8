"""Summarise a sweep: per cell (the jobs that differ only in seed) the mean, std, 95% interval
and n of the final metrics, the best cell by validation accuracy marked, as Markdown.

    python scripts/summarize.py runs/multirun/2026-11-24/10-00-00
    python scripts/summarize.py SWEEP_DIR --pivot optimizer lr --metric test/accuracy
    python scripts/summarize.py SWEEP_DIR --plot          # figures: PNGs + TensorBoard
    python scripts/summarize.py SWEEP_DIR --per-seed      # one row per job

Prints the table and writes summary.md and summary.csv into the sweep dir (or --out DIR); a
file of that name summarize.py has no record of writing is refused, untouched. With one seed per
cell the table is one row per job (no interval can be given). A search's sweep dir (Optuna's
study.db) shows its trials ranked, the best parameters and, with --plot, the history.
"""

from __future__ import annotations

from ucl.lifecycle import as_command, ctrl_c_ends_quietly

ctrl_c_ends_quietly(__name__)  # run as a script: nothing is written while imports load

import argparse
import sys
from pathlib import Path

from ucl import outdir, search_summary, summary, sweeps
from ucl.config import refusal
from ucl.errors import ConfigError, UclError, message
from ucl.keys import closest
from ucl.lifecycle import atomic_write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun dir (holds one dir per job)")
    parser.add_argument("--pivot", nargs=2, metavar=("ROW", "COL"), help="two-way table")
    parser.add_argument("--metric", help="the metric --pivot shows (default: test/accuracy)")
    parser.add_argument("--metrics", help="comma-separated metric columns (default: by task)")
    parser.add_argument(
        "--choose", help="the metric the best cell is chosen by (default: val/accuracy when "
        "the jobs report it, else test/accuracy)"
    )  # fmt: skip
    parser.add_argument("--per-seed", action="store_true", help="one row per job, no grouping")
    parser.add_argument("--plot", action="store_true", help="figures into the sweep dir and TB")
    parser.add_argument("--out", type=Path, help="folder for the summary's files (default: the "
                        "sweep dir)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        jobs = summary.find_jobs(args.sweep_dir)
        problems, covered = summary.accounting(args.sweep_dir, jobs, refusal)
        if not jobs:
            print(f"{args.sweep_dir}: no job dirs: no folder below it holds a metrics.json, "
                  f"which each job writes when it starts", file=sys.stderr)  # fmt: skip
            print("".join(f"- {line}\n" for line in problems), end="", file=sys.stderr)
            return 1
        if search_summary.is_search(args.sweep_dir):  # trials, not cells: ranked instead
            text, figs = search_summary.section(args.sweep_dir, jobs, args.plot)
            csv = sweeps.to_csv(sweeps.job_table(sweeps.from_jobs(jobs)))
        else:
            text, csv, figs = tables(args, jobs)
        folder = _output_folder(args.sweep_dir, args.out, figs)
        if args.plot:
            from ucl.sweep_figures import save

            paths = save(folder, figs)
            text += "".join(f"\nfigure: {p}" for p in paths) + ("\n" if paths else "")
    except (FileNotFoundError, KeyError, UclError) as e:
        print(f"summarize: {message(e)}", file=sys.stderr)
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
    atomic_write(folder / "summary.md", text)
    atomic_write(folder / "summary.csv", csv)
    outdir.record(folder, _outputs(figs))
    return 0


def _outputs(figs: dict) -> list[str]:
    if not figs:  # no --plot: matplotlib stays unloaded
        return ["summary.md", "summary.csv"]
    from ucl.sweep_figures import outputs

    return ["summary.md", "summary.csv", *outputs(figs)]


def _output_folder(sweep_dir: Path, out: Path | None, figs: dict) -> Path:
    """Where the summary's files go, once nothing of the user's there would be written
    over: the sweep dir, which holds the jobs and may hold the user's own files, or --out."""
    if out is None:
        fix = "Move {them} away, or give --out DIR for the summary's files."
        outdir.check_free(sweep_dir, _outputs(figs), "summarize.py", "", fix)
        return sweep_dir
    outdir.check_claim(out, "summarize.py", "--out")
    outdir.check_free(out, _outputs(figs), "summarize.py", "--out")
    return outdir.claim(out, "summarize.py", "--out")


def tables(args, jobs: list[summary.Job]) -> tuple[str, str, dict]:
    """(Markdown, CSV, figures) of the sweep's frame: per cell over seeds, or per job with
    --per-seed or one seed per cell; figures with --plot."""
    frame = sweeps.from_jobs(jobs)
    wanted = [m.strip() for m in (args.metrics or "").split(",") if m.strip()] or None
    _check_metrics(frame, [*(("--metrics", m) for m in wanted or []),
                           ("--metric", args.metric), ("--choose", args.choose)])  # fmt: skip
    columns = wanted or sweeps.default_metrics(frame)
    choose = sweeps.choose_metric(frame, args.choose)
    drawn = args.metric or "test/accuracy"  # by --pivot and --plot
    # no metric to average (every job failed or unreadable): one row per job, with its status
    per_job = args.per_seed or sweeps.seeds_per_cell(frame) < 2 or not columns
    if per_job:
        table = sweeps.job_table(frame, wanted)
        text, csv = sweeps.markdown(table), sweeps.to_csv(table)
    else:
        if choose and choose not in columns:
            columns = [*columns[:1], choose, *columns[1:]]
        shown = next((c for c in columns if c != choose), columns[0])
        table = sweeps.cells(frame, columns, choose, as_written=True)
        text = sweeps.markdown(sweeps.cell_table(table, shown, choose))
        end = "highest" if sweeps.higher_is_better(choose) else "lowest"
        text += (
            f"\nmean ± half-width of the 95% Student-t interval over the seeds; {sweeps.BEST}: "
            f"{end} mean {choose}; {sweeps.NEAR}: not significantly worse than the best "
            f"(Welch's t-test, p >= 0.05).\n"
        )
        numbers = [f"{m} {s}" for m in columns for s in ("mean", "std", "ci95 low", "ci95 high")]
        train = table.get("seconds/train mean")
        table = table.assign(seeds=table["seeds"].map(" ".join), **{"train s mean": train})
        csv = sweeps.to_csv(table[[*sweeps.cell_keys(frame), "n", "seeds", "status", "mark",
                                   *numbers, "train s mean"]])  # fmt: skip
    if args.pivot:
        two_way = sweeps.pivot(frame, *args.pivot, drawn, over_seeds=not per_job)
        text += f"\n{drawn}:\n\n" + sweeps.markdown(two_way)
    if choose and columns:
        report = "test/accuracy" if "test/accuracy" in columns else columns[0]
        lines = sweeps.conclusions(frame, choose, report)
        text += "\n" + "".join(f"{line}\n" for line in lines) if lines else ""
    figs = {}
    metric = drawn if drawn in frame.attrs["metrics"] else choose
    if args.plot and metric:
        from ucl import sweep_figures

        figs = sweep_figures.figures(sweeps.cells(frame, metric, as_written=True), metric)
    return text, csv, figs


def _check_metrics(frame, given: list[tuple[str, str | None]]) -> None:
    """A metric named on the command line is one a job reports (a typo would show as a
    column of dashes); not checked before any job has completed, as in a sweep still running."""
    if not (frame["status"] == "completed").any():
        return
    known = list(frame.attrs["metrics"])
    for flag, name in given:
        if name is not None and name not in known:
            close = closest(name, known)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"{flag} {name}: no job reports this metric{hint}; the jobs report "
                f"{', '.join(known)}"
            )


if __name__ == "__main__":
    sys.exit(as_command("summarize", main))
