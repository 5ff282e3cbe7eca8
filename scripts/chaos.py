"""Nothing is lost when a sweep is killed with SIGKILL at any moment, and re-run.

Runs a small sweep (an MLP with dropout and momentum on the committed MNIST subset, so
that every random and optimizer state matters) once uninterrupted as the reference. Then
runs the same sweep into a fresh sweep dir and kills the whole process tree with SIGKILL
at seeded random moments -- some at a random time, some the instant a temporary file
(a checkpoint, metrics.json or history.csv being written) appears -- re-running the same
command after each kill, until it completes; while fewer kills than asked were made, another
round starts in a fresh sweep dir. Every round must end as the reference did. Prints:

- kills survived / kills made: the sweep still completed after every kill;
- jobs whose final metrics or history.csv differ from the reference (bit for bit);
- temporary or lock files left in the sweep dir at the end;
- reads of a job's metrics.json between kills that failed (a half-written record).

    python scripts/chaos.py                 # 25 kills over 4 jobs (a few minutes)
    python scripts/chaos.py --kills 3 --jobs 2 --steps 60   # the test suite's short version
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ucl.errors import CorruptFileError  # noqa: E402
from ucl.tracking import read_metrics  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "mnist"
LRS = ("0.05", "0.1", "0.2", "0.3")
POLL = 0.002  # seconds between looks for a temporary file


def sweep_command(sweep_dir: Path, data_root: Path, jobs: int, steps: int) -> list[str]:
    lrs = ",".join(LRS[: max(1, jobs // 2)])
    seeds = "0,1" if jobs > 1 else "0"
    return [
        sys.executable, str(REPO / "train.py"), "-m",
        "model=mlp", "hidden=16", "model.dropout=0.2", "optimizer=momentum",
        f"steps={steps}", "eval_every=10", "checkpoint_every=5", "threads=1",
        "progress=false", f"lr={lrs}", f"seed={seeds}",
        f"dataset.idx_dir={FIXTURE}", f"dataset.root={data_root}",
        f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip


def start(command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "a") as out:
        return subprocess.Popen(
            command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "UCL_MNIST_DIR": ""},
        )  # fmt: skip


def temp_files(sweep_dir: Path) -> list[Path]:
    return [p for p in sweep_dir.rglob(".*.tmp*") if p.is_file()]


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p.parent for p in sweep_dir.rglob("metrics.json"))


def unreadable_records(sweep_dir: Path) -> list[str]:
    bad = []
    for job in job_dirs(sweep_dir):
        try:
            read_metrics(job)
        except CorruptFileError as e:
            bad.append(str(e))
    return bad


def kill_tree(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def differing_jobs(reference: Path, sweep: Path) -> list[str]:
    """Jobs whose final metrics or history.csv are not bit-identical to the reference's."""
    differ = []
    for job in job_dirs(reference):
        twin = sweep / job.relative_to(reference)
        same_metrics = (twin / "metrics.json").exists() and json.loads(
            (job / "metrics.json").read_text()
        )["metrics"] == json.loads((twin / "metrics.json").read_text())["metrics"]
        same_history = (twin / "history.csv").exists() and (
            (job / "history.csv").read_bytes() == (twin / "history.csv").read_bytes()
        )
        if not (same_metrics and same_history):
            differ.append(str(job.relative_to(reference)))
    return differ


def run_until_done(command, log, deadline_s=1800.0) -> int:
    proc = start(command, log)
    return proc.wait(timeout=deadline_s)


def chaos(args) -> dict:
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    data_root = out / "data"
    rng = random.Random(args.seed)

    t = time.perf_counter()
    reference = out / "reference"
    code = run_until_done(sweep_command(reference, data_root, args.jobs, args.steps),
                          out / "reference.log")  # fmt: skip
    reference_seconds = time.perf_counter() - t
    if code != 0:
        raise SystemExit(f"the reference sweep failed (exit {code}); see {out / 'reference.log'}")
    print(f"reference sweep: {len(job_dirs(reference))} jobs in {reference_seconds:.1f} s",
          flush=True)  # fmt: skip

    kills = during_writes = attempts = rounds = 0
    failed_reads: list[str] = []
    differ: list[str] = []
    leftovers: list[str] = []
    # Rounds: each a fresh sweep dir, killed again and again until an attempt completes on
    # its own; rounds go on until enough kills were made. Kill moments fall within the
    # first half of the reference's time, so most attempts die before they finish.
    while kills < args.kills:
        rounds += 1
        sweep = out / f"chaos-{rounds}"
        command = sweep_command(sweep, data_root, args.jobs, args.steps)
        log = out / f"chaos-{rounds}.log"
        while True:
            attempts += 1
            proc = start(command, log)
            if kills < args.kills:
                on_write = rng.random() < 0.5  # half the kills aim at a write in progress
                delay = rng.uniform(0.2, reference_seconds / 2)
                started = time.perf_counter()
                while proc.poll() is None and time.perf_counter() - started < delay:
                    if on_write and temp_files(sweep):
                        break
                    time.sleep(POLL if on_write else 0.02)
                if proc.poll() is None:
                    writing = bool(temp_files(sweep))
                    kill_tree(proc)
                    kills += 1
                    during_writes += writing
                    failed_reads += unreadable_records(sweep)
                    at = time.perf_counter() - started
                    note = " (a file was being written)" if writing else ""
                    print(f"round {rounds}: kill {kills}/{args.kills} at {at:.2f} s{note}",
                          flush=True)  # fmt: skip
                    continue
            code = proc.wait(timeout=1800)
            failed_reads += unreadable_records(sweep)
            if code == 0:
                break
            if attempts > 4 * args.kills + 20:
                raise SystemExit(f"the sweep keeps failing (exit {code}); see {log}")
        differ += [f"round {rounds}: {j}" for j in differing_jobs(reference, sweep)]
        leftovers += [str(p.relative_to(out)) for p in temp_files(sweep)]
        leftovers += [str(p.relative_to(out)) for p in sweep.rglob(".lock")]
    survived = kills  # every round completed after all of its kills

    return {
        "jobs": len(job_dirs(reference)),
        "kills": kills,
        "survived": survived,
        "during_writes": during_writes,
        "differ": differ,
        "leftovers": leftovers,
        "failed_reads": failed_reads,
        "attempts": attempts,
        "rounds": rounds,
        "reference_seconds": round(reference_seconds, 1),
    }


def table(r: dict) -> str:
    rows = [
        ("kills survived / kills made", f"{r['survived']} / {r['kills']}",
         f"all, >= {r['target']}"),
        ("sweeps run to completion through the kills (rounds)", str(r["rounds"]), ""),
        ("kills while a file was being written", str(r["during_writes"]), ""),
        (f"jobs whose metrics or history.csv differ from the reference "
         f"(of {r['jobs']} per round)",
         str(len(r["differ"])), "0"),
        ("temporary or lock files left", str(len(r["leftovers"])), "0"),
        ("metrics.json reads that failed between kills", str(len(r["failed_reads"])), "0"),
    ]  # fmt: skip
    lines = ["| figure | measured | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=25, help="SIGKILLs to deliver (25)")
    parser.add_argument("--jobs", type=int, default=4, help="jobs in the sweep (4)")
    parser.add_argument("--steps", type=int, default=200, help="iterations per job (200)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments (0)")
    parser.add_argument("--out", default="runs/chaos", help="working dir (runs/chaos)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = chaos(args)
    result["target"] = args.kills
    print(json.dumps(result) if args.json else table(result))
    ok = (result["survived"] == result["kills"] >= args.kills and not result["differ"]
          and not result["leftovers"] and not result["failed_reads"])  # fmt: skip
    for name in ("differ", "leftovers", "failed_reads"):
        for item in result[name]:
            print(f"{name}: {item}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
