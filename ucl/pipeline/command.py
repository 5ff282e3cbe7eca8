"""The pipeline command behind scripts/pipeline.py and scripts/reproduce.py: load a pipeline
file, check it, show or run its stages, then (for a pipeline with a `report:`) the report.

    python scripts/pipeline.py pipeline=NAME [OPTIONS] [OVERRIDE ...]

NAME is conf/pipeline/NAME.yaml or a YAML file's path; every OVERRIDE (key=value, as
train.py takes it) goes to every stage, e.g. hydra/launcher=submitit_slurm. Exit code 0
when every stage completed, 1 otherwise, 2 when the pipeline or an option is refused."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from ucl import outdir, rundir
from ucl.errors import message
from ucl.lifecycle import available_cores, file_in_the_way
from ucl.outdir import OutputDirError
from ucl.pipeline.choices import ChoiceError, check_choices, resolve
from ucl.pipeline.launch import train_command
from ucl.pipeline.prepare import prepare_mnist
from ucl.pipeline.record import check_record
from ucl.pipeline.runner import Runner, done_stages
from ucl.pipeline.schedule import critical_path, schedule_seconds
from ucl.pipeline.stages import (
    PIPELINES,
    Plan,
    check_overrides,
    load_pipeline,
    plan,
    select,
    shown,
)
from ucl.pipeline.state import set_aside_all, stage_state

DEFAULT_JOBS = 2  # independent stages side by side: small models use a second core poorly


# how a pipeline with `report:` writes it: build(root, report_dir, make_pdf) -> the lines
# to print
Report = Callable[[Path, Path, bool], list[str]]


def parser(prog: str, doc: str, fixed: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    if not fixed:
        p.add_argument("overrides", nargs="*", metavar="pipeline=NAME [OVERRIDE]",
                       help="the pipeline (conf/pipeline/NAME.yaml or a file), then train.py "
                            "overrides for every stage")  # fmt: skip
    p.add_argument("--smoke", action="store_true", help="tiny settings, its own dirs")
    p.add_argument("--root", type=Path, help="where the stage dirs go")
    p.add_argument("--report-dir", type=Path, help="where the report goes")
    p.add_argument("--only", nargs="+", metavar="STAGE", help="these stages (+ needs)")
    p.add_argument("--list", action="store_true", help="show the plan (what runs, why) and stop")
    p.add_argument("--no-report", action="store_true", help="run the stages only")
    p.add_argument("--no-pdf", action="store_true", help="skip the PDF conversion")
    p.add_argument(
        "--jobs",
        type=int,
        default=min(DEFAULT_JOBS, available_cores()),
        help="stages at a time, each run with cores/jobs torch threads (default: %(default)s)",
    )
    p.add_argument(
        "--estimate",
        action="append",
        default=[],
        metavar="STAGE=MINUTES",
        help="replace a stage's estimated minutes (repeatable)",
    )
    return p


def main(
    argv: list[str] | None,
    *,
    prog: str,
    doc: str,
    pipeline: str | None = None,
    report: Report | None = None,
) -> int:
    """`pipeline`: the pipeline this command always runs (reproduce.py's problem_set);
    else the command line names it (pipeline=NAME)."""
    args = parser(prog, doc, fixed=pipeline is not None).parse_intermixed_args(argv)
    name = prog.removesuffix(".py")
    try:
        name_given, extra = _pipeline_arg(getattr(args, "overrides", []), pipeline)
        spec = load_pipeline(_smoke_variant(name_given) if args.smoke else name_given)
        smoke = args.smoke or spec.smoke
        root = args.root or (
            spec.root
            if spec.smoke or not args.smoke
            else spec.root.with_name(spec.root.name + "-smoke")
        )
        report_dir = None if args.no_report or spec.report is None or report is None else (
            args.report_dir or (root / "report" if smoke else spec.report)
        )  # fmt: skip
        if args.jobs < 1:
            raise ValueError(f"--jobs {args.jobs}: give 1 or more stages at a time")
        if file := file_in_the_way(root):
            raise ValueError(
                f"--root {root}: {file} is a file, not a folder; give a folder for the stage dirs"
            )
        threads = max(1, available_cores() // args.jobs) if args.jobs > 1 else None
        full = plan(root, smoke=smoke, stages=spec.stages, estimates=_estimates(args.estimate),
                    threads=threads, extra=extra)  # fmt: skip
        check_choices(full)
        check_overrides(full)
        if report_dir is not None:
            _check_report_dir(report_dir, full, "--report-dir" if args.report_dir else "report:")
        todo = select(full, args.only) if args.only else full
    except (KeyError, ValueError) as e:
        print(f"{name}: {message(e)}", file=sys.stderr)
        return 2
    if args.list:
        _show(todo, args.jobs)
        return 0
    try:  # a folder that is not the pipeline's or the report's: refused before the stages
        check_record(root)
        claims = [(root, "the pipeline", "--root")]
        if report_dir is not None:
            claims.append((report_dir, "the report", "--report-dir"))
        for folder in claims:  # each checked before any is made
            outdir.check_claim(*folder)
        for folder in claims:  # each held until the command ends: one command at a time
            outdir.claim(*folder)
    except (OutputDirError, ValueError) as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 2
    if warning := rundir.dirty_warning():  # the runs record it too; said once, up front
        print(f"{name}: warning: {warning}")
    if args.jobs > 1 and (problem := prepare_mnist(todo)):
        print(f"{name}: MNIST could not be loaded, so its stages will fail: {problem}")
    try:
        ok = Runner(todo, jobs=args.jobs).run()
    except KeyboardInterrupt:
        return 130
    if report_dir is not None:  # the other stages' stale or extra jobs are never tabled either
        others, unknowable = [], set()
        for p in full.stages:
            if p.name not in todo.names:
                try:
                    others.append(resolve(p, full)[0])
                except ChoiceError:  # no table to choose from: none of its jobs is current
                    others.append(p)
                    unknowable.add(p.name)
        for line in set_aside_all(others, frozenset(unknowable)):
            print(f"{name}: {line}")
        for line in report(root, report_dir, not args.no_pdf):
            print(line)
    return 0 if ok else 1


def _pipeline_arg(given: list[str], fixed: str | None) -> tuple[str, list[str]]:
    """(the pipeline's name or file, the overrides for every stage)."""
    named = [g for g in given if g.startswith("pipeline=")]
    extra = [g for g in given if not g.startswith("pipeline=")]
    if bad := [g for g in extra if "=" not in g and not g.startswith("~")]:  # ~key: a deletion
        raise ValueError(
            f"{bad[0]} is not key=value: name the pipeline as pipeline={bad[0]}; the other "
            f"arguments are train.py overrides (e.g. seed=1)"
        )
    if fixed is not None:
        return fixed, extra
    if len(named) != 1:
        known = ", ".join(sorted(p.stem for p in PIPELINES.glob("*.yaml")))
        raise ValueError(
            f"name one pipeline: pipeline=NAME (conf/pipeline/NAME.yaml: {known}) or "
            f"pipeline=path/to/file.yaml"
        )
    return named[0].partition("=")[2], extra


def _smoke_variant(name: str) -> str:
    """NAME_smoke when conf/pipeline has it (the problem set's tiny variant), else NAME."""
    return f"{name}_smoke" if (PIPELINES / f"{name}_smoke.yaml").is_file() else name


def _check_report_dir(report_dir: Path, full: Plan, option: str) -> None:
    """The report goes into a folder of its own: not the root (the pipeline's), nor a
    stage's dir or a folder in one (train.py takes only a dir it made)."""
    own = f"give the report a folder of its own (e.g. --report-dir {full.root / 'report'})"
    where = report_dir.resolve()
    if where == full.root.resolve():
        raise ValueError(f"{option} {report_dir}: the pipeline's --root; {own}")
    for p in full.stages:
        if where == p.dir.resolve() or p.dir.resolve() in where.parents:
            raise ValueError(f"{option} {report_dir}: in stage {p.name}'s dir {p.dir}; {own}")


def _estimates(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, _, minutes = item.partition("=")
        try:
            value = float(minutes)
        except ValueError:
            value = math.nan  # refused below, with the same words
        if not value > 0:
            raise ValueError(
                f"--estimate {item!r}: give STAGE=MINUTES, minutes above 0, e.g. --estimate gan=9.5"
            )
        out[name] = value
    return out


def _show(p: Plan, jobs: int) -> None:
    """Each stage: its estimate, what it needs, whether it runs and why, and its command."""
    will_run = set(p.names) - done_stages(p)
    for planned in p.stages:
        needs = f"  (needs {', '.join(planned.stage.needs)})" if planned.stage.needs else ""
        print(f"{planned.name:<20} {planned.minutes:5.1f} min  {planned.stage.title}{needs}")
        print(f"    {_why(planned, p, will_run)}")
        print(f"    python train.py {' '.join(train_command(planned)[2:])}")
    todo = [q for q in p.stages if q.name in will_run]
    work = sum(planned.minutes for planned in todo)
    chain, names = critical_path(p)
    total = schedule_seconds(p, jobs, {q.name: q.minutes * 60 for q in todo}) / 60
    print(
        f"{len(todo)} of {len(p.stages)} stages to run, estimated {work:.1f} min of work, "
        f"{jobs} stage(s) at a time, about {total:.1f} min in all (the longest chain: "
        f"{' -> '.join(names)}, {chain:.1f} min)"
    )


def _why(planned, p: Plan, will_run: set[str]) -> str:
    """Whether the stage runs and why, in a few words."""
    upstream = [n for n in planned.stage.needs if n in will_run]
    if upstream:
        return f"runs: needs {', '.join(upstream)}, which run{'s' * (len(upstream) == 1)} first"
    try:
        resolved, choices = resolve(planned, p)
    except ChoiceError as e:
        return f"cannot run: {e}"
    state = stage_state(resolved)
    taken = "".join(f"; takes {c.describe()}" for c in choices)
    if planned.name not in will_run:
        return f"reused: already completed ({state.describe()}){taken}"
    if state.changed:
        return f"runs again: what it ran with changed ({state.changed[0]}){taken}"
    reasons = []
    if state.aside:
        reasons.append(state.describe_aside() + ", to be moved aside")
    if state.missing:
        reasons.append(f"{len(state.missing)} job(s) not run yet")
    if state.problems:
        reasons.append(state.problems[0])
    if not planned.dir.exists():
        reasons.append(f"never ran (no {shown(planned.dir)})")
    return f"runs: {'; '.join(reasons) or state.describe()}{taken}"
