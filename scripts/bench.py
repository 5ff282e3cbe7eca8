"""Benchmarks: whole runs and timings against their targets, as a Markdown table.

    python scripts/bench.py                       # every section
    python scripts/bench.py --only classify,divergence --repeats 3
    python scripts/bench.py --busy                # the same beside one other training run

Sections live in problem_set/benchmarks/<name>.py, each a `run(...)` returning rows. Speed-ups are
ratios against a baseline measured in the same process. Results are written to
runs/bench/bench.md and runs/bench/bench.json (runs/bench-busy/ with --busy). Run it on an
otherwise idle machine: --busy adds the one job it measures beside (problem_set/benchmarks/busy.py).
"""

from __future__ import annotations

from ucl.lifecycle import as_command, ctrl_c_ends_quietly

ctrl_c_ends_quietly(__name__)  # run as a script: nothing is written while imports load

import argparse
import importlib
import inspect
import json
import os
import platform
import sys
import time
from pathlib import Path

from ucl import outdir
from ucl.errors import UclError, message
from ucl.lifecycle import atomic_write, sleeping_threads
from ucl.outdir import OutputDirError

sleeping_threads()  # as train.py: before torch loads OpenMP, so the figures are a run's

import torch  # noqa: E402

SECTIONS = [
    "classify",
    "autoencoder",
    "gan",
    "floors",
    "divergence",
    "threads",
    "layers",
    "retina",
]
TIME_UNITS = ("s", "ms")


def normalise(section: str, row: dict) -> dict:
    """One row shape for every section: benchmark, value, unit, target, sense, met."""
    out = {"section": section, "note": "", **row}
    out.setdefault("sense", "<=" if out.get("unit") in TIME_UNITS else ">=")
    target = out.get("target")
    if target is not None and out.get("met") is None:
        out["met"] = out["value"] <= target if out["sense"] == "<=" else out["value"] >= target
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["| section | benchmark | measured | target | met |", "|---|---|---|---|---|"]
    for r in rows:
        unit = f" {r['unit']}" if r.get("unit") else ""
        target = "–" if r.get("target") is None else f"{r['sense']} {_num(r['target'])}{unit}"
        met = {True: "yes", False: "**no**", None: ""}[r.get("met")]
        note = f" ({r['note']})" if r.get("note") else ""
        lines.append(
            f"| {r['section']} | {r['benchmark']}{note} | {_num(r['value'])}{unit} | {target} | {met} |"  # noqa: E501
        )
    return "\n".join(lines) + "\n"


def _num(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated sections (default: {','.join(SECTIONS)})")
    parser.add_argument("--repeats", type=int, default=3, help="repeats where a section times")
    parser.add_argument("--out", type=Path, help="default: runs/bench, runs/bench-busy")
    parser.add_argument(
        "--busy",
        action="store_true",
        help="time every section beside one other training run holding a core",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads for the measures timed "
        "outside runs (runs use their config's threads, auto by default)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sections = args.only.split(",") if args.only else SECTIONS
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    args.out = args.out or Path("runs/bench-busy" if args.busy else "runs/bench")
    try:  # a folder bench did not make is refused before anything runs
        outdir.claim(args.out, "bench.py", "--out")
        outdir.check_free(args.out, [*sections, "bench.md", "bench.json"], "bench.py", "--out")
    except OutputDirError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    try:
        if args.busy:
            from problem_set.benchmarks.busy import busy_job

            with busy_job() as busy:
                print(f"[bench] busy: beside `{busy.shown}`", file=sys.stderr, flush=True)
                rows = run_sections(sections, args, condition=f"busy, beside `{busy.shown}`")
        else:  # "idle" is what the user promised; the load average says what the machine was
            load = os.getloadavg()[0]
            condition = f"idle (load average {load:.2f} at start)"
            rows = run_sections(sections, args, condition=condition)
    except UclError as e:  # bad input a section met (its config, the data): one line
        print(f"bench: {message(e)}", file=sys.stderr)
        return 2
    print(markdown(rows))
    return 0 if all(r.get("met") is not False for r in rows) else 1


def run_sections(sections: list[str], args: argparse.Namespace, condition: str) -> list[dict]:
    """Every section in turn; bench.md and bench.json rewritten after each."""
    rows: list[dict] = []
    for section in sections:
        started = time.perf_counter()
        print(f"[bench] {section} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"problem_set.benchmarks.{section}")
        workdir = args.out / section
        # fresh runs, never an older bench's: its own earlier section dir goes, nothing else
        outdir.remove_written(args.out, section)
        outdir.record(args.out, [section, "bench.md", "bench.json"])
        offered = {"repeats": args.repeats, "workdir": workdir}
        accepted = inspect.signature(module.run).parameters
        kwargs = {k: v for k, v in offered.items() if k in accepted}
        rows += [normalise(section, r) for r in module.run(**kwargs)]
        print(f"[bench] {section}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
        atomic_write(args.out / "bench.md", f"Condition: {condition}.\n\n{markdown(rows)}")
        env = {"torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpu": platform.processor() or platform.machine(),
               "condition": condition}  # fmt: skip
        atomic_write(args.out / "bench.json", json.dumps({"env": env, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    sys.exit(as_command("bench", main))
