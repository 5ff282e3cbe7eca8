"""Summarise a sweep: the swept parameters against the final metrics, as Markdown.

    python scripts/summarize.py runs/multirun/2026-11-24/10-00-00
    python scripts/summarize.py SWEEP_DIR --pivot activation hidden --metric test/accuracy

Prints the table and writes summary.md and summary.csv into the sweep dir.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ucl import summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun dir (holds one dir per job)")
    parser.add_argument("--pivot", nargs=2, metavar=("ROW", "COL"), help="two-way table")
    parser.add_argument("--metric", default="test/accuracy", help="the metric --pivot shows")
    parser.add_argument("--metrics", help="comma-separated metric columns (default: by task)")
    args = parser.parse_args(argv)
    try:
        jobs = summary.find_jobs(args.sweep_dir)
        if not jobs:
            print(f"{args.sweep_dir}: no job dirs (none holds metrics.json or .hydra/)",
                  file=sys.stderr)  # fmt: skip
            return 1
        wanted = args.metrics.split(",") if args.metrics else None
        header, rows = summary.table(jobs, wanted)
        text = summary.markdown(header, rows)
        if args.pivot:
            p_header, p_rows = summary.pivot(jobs, *args.pivot, args.metric)
            text += f"\n{args.metric}:\n\n" + summary.markdown(p_header, p_rows)
    except (FileNotFoundError, KeyError) as e:
        print(f"summarize: {str(e).strip(chr(39))}", file=sys.stderr)
        return 2
    problems = summary.failures(jobs)
    if problems:
        text += "\nNot completed:\n" + "".join(f"- {p}\n" for p in problems)
    print(text, end="")
    (args.sweep_dir / "summary.md").write_text(text)
    (args.sweep_dir / "summary.csv").write_text(summary.to_csv(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
