"""Reproduce the whole problem set, then write the report.

    python scripts/reproduce.py                  # every stage at the problem set's settings
    python scripts/reproduce.py --smoke          # the same pipeline, tiny settings (minutes)
    python scripts/reproduce.py --list           # the stages, their commands and estimates
    python scripts/reproduce.py --only gan       # one stage (and the stages it needs)
    python scripts/reproduce.py --estimate gan=9 # replace a stage's estimate (minutes)

Runs go to fixed dirs under runs/reproduce/<stage> (--smoke: runs/reproduce-smoke/), so
running the command again skips what completed and continues what was interrupted. The
report goes to runs/report/ (--smoke: runs/reproduce-smoke/report/). The retina stage
reads the real files when UCL_RETINA_COUNTS and UCL_RETINA_CLUSTERS name them, else a
synthetic stand-in. Exit code 0 when every stage completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ucl import outdir, provenance
from ucl.outdir import OutputDirError
from ucl.report.build import OUTPUTS as REPORT_OUTPUTS
from ucl.report.build import build_report
from ucl.reproduce.launch import train_command
from ucl.reproduce.prepare import prepare_mnist
from ucl.reproduce.runner import Runner
from ucl.reproduce.schedule import critical_path, schedule_seconds
from ucl.reproduce.stages import REPO, Plan, plan, select
from ucl.reproduce.state import set_aside_all
from ucl.threads import available_cores

FULL_ROOT, SMOKE_ROOT = REPO / "runs" / "reproduce", REPO / "runs" / "reproduce-smoke"
FULL_REPORT = REPO / "runs" / "report"
DEFAULT_JOBS = 2  # independent stages side by side: small models use a second core poorly


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny settings, its own dirs")
    parser.add_argument("--root", type=Path, help="where the stage dirs go")
    parser.add_argument("--report-dir", type=Path, help="where the report goes")
    parser.add_argument("--only", nargs="+", metavar="STAGE", help="these stages (+ needs)")
    parser.add_argument("--list", action="store_true", help="show the plan and stop")
    parser.add_argument("--no-report", action="store_true", help="run the stages only")
    parser.add_argument("--no-pdf", action="store_true", help="skip the PDF conversion")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(DEFAULT_JOBS, available_cores()),
        help="stages at a time, each run with cores/jobs torch threads (default: %(default)s)",
    )
    parser.add_argument(
        "--estimate",
        action="append",
        default=[],
        metavar="STAGE=MINUTES",
        help="replace a stage's estimated minutes (repeatable)",
    )
    args = parser.parse_args(argv)
    root = args.root or (SMOKE_ROOT if args.smoke else FULL_ROOT)
    report_dir = args.report_dir or (root / "report" if args.smoke else FULL_REPORT)
    try:
        if args.jobs < 1:
            raise ValueError(f"--jobs {args.jobs}: give 1 or more stages at a time")
        threads = max(1, available_cores() // args.jobs) if args.jobs > 1 else None
        estimates = _estimates(args.estimate)
        full = plan(root, smoke=args.smoke, estimates=estimates, threads=threads)
        todo = select(full, args.only) if args.only else full
    except (KeyError, ValueError) as e:
        print(f"reproduce: {str(e).strip(chr(39))}", file=sys.stderr)
        return 2
    if args.list:
        _show(todo, args.jobs)
        return 0
    if not args.no_report:  # a report folder that is not the report's: refused before the stages
        try:
            outdir.claim(report_dir, "the report", "--report-dir", REPORT_OUTPUTS)
        except OutputDirError as e:
            print(f"reproduce: {e}", file=sys.stderr)
            return 2
    if warning := provenance.dirty_warning():  # the runs record it too; said once, up front
        print(f"reproduce: warning: {warning}")
    if args.jobs > 1 and (problem := prepare_mnist(todo)):
        print(f"reproduce: MNIST could not be loaded, so its stages will fail: {problem}")
    try:
        ok = Runner(todo, jobs=args.jobs).run()
    except KeyboardInterrupt:
        return 130
    if not args.no_report:  # the other stages' stale or extra jobs are never tabled either
        for line in set_aside_all([p for p in full.stages if p.name not in todo.names]):
            print(f"reproduce: {line}")
        built = build_report(root, report_dir, make_pdf=not args.no_pdf, option="--report-dir")
        print(f"report: {built.markdown}\n        {built.html}\n        {built.note}")
    return 0 if ok else 1


def _estimates(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, _, minutes = item.partition("=")
        try:
            out[name] = float(minutes)
        except ValueError:
            raise ValueError(
                f"--estimate {item!r}: give STAGE=MINUTES, e.g. --estimate gan=9.5"
            ) from None
    return out


def _show(p: Plan, jobs: int) -> None:
    for planned in p.stages:
        needs = f"  (needs {', '.join(planned.stage.needs)})" if planned.stage.needs else ""
        print(f"{planned.name:<20} {planned.minutes:5.1f} min  {planned.stage.title}{needs}")
        print(f"    python train.py {' '.join(train_command(planned)[2:])}")
    work = sum(planned.minutes for planned in p.stages)
    chain, names = critical_path(p)
    total = schedule_seconds(p, jobs, {q.name: q.minutes * 60 for q in p.stages}) / 60
    print(
        f"estimated: {work:.1f} min of work, {jobs} stage(s) at a time, the longest chain "
        f"({' -> '.join(names)}) {chain:.1f} min: about {total:.1f} min in all"
    )


if __name__ == "__main__":
    sys.exit(main())
