"""Requeues and time-limit warnings at seeded phases of SLURM jobs; every sweep must end
with exit 0 and every job bit-identical to the same job run by the basic launcher.

    .ci/slurm-cluster up                      # a single-node cluster on this machine
    python scripts/cluster_chaos.py           # 12 signals, 3 jobs a sweep
    python scripts/cluster_chaos.py --time-limit   # and a job that reaches its real limit
    python scripts/cluster_chaos.py --signals 0 --retypes 16   # stopped, then typed again

Each job of a round is held at a phase dealt from a seeded shuffle (data loading,
training, evaluation, a checkpoint write, the final record: ucl/lifecycle.py), then requeued
(`scontrol requeue`) or sent SLURM's time-limit warning (`scancel -s USR2`, which submitit
answers by requeueing). A signal counts as survived only when its sweep ended with exit 0
and no traceback, and its job's metrics and history.csv equal the reference's.
`--time-limit` adds a job that reaches its real time limit, again and again: a 1-minute
limit with the warning 25 s before it, the configuration that once broke the sweep.
`--retypes N` adds N sweep commands stopped at a seeded moment and typed again at once.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from ucl import outdir
from ucl.outdir import OutputDirError

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "mnist"
PHASES = ("data", "train", "eval", "checkpoint", "final")
ACTIONS = ("requeue", "time-limit warning")


def _chaos():
    spec = importlib.util.spec_from_file_location("chaos", REPO / "scripts" / "chaos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def job_args(data_root: Path, steps: int, lrs: list[str]) -> list[str]:
    return [
        "model=mlp", f"steps={steps}", "eval_every=200", "checkpoint_every=1000",
        f"dataset.idx_dir={FIXTURE}", f"dataset.root={data_root}", "progress=false",
        f"lr={','.join(lrs)}",
    ]  # fmt: skip


def slurm_args(timeout_min: int = 10, signal_delay_s: int = 30) -> list[str]:
    """One core and 4 GB a job: a job's resident memory peaks near 0.9 GB, and SLURM's
    sampling (jobacct_gather/linux) counts it twice while the run forks for git."""
    return [
        "hydra/launcher=submitit_slurm", "hydra.launcher.partition=cpu",
        "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=4",
        f"hydra.launcher.timeout_min={timeout_min}",
        f"hydra.launcher.signal_delay_s={signal_delay_s}",
    ]  # fmt: skip


def sweep(args: list[str], sweep_dir: Path, env: dict | None = None, log: Path | None = None):
    """`python train.py -m ARGS` into sweep_dir, in the background."""
    out = open(log or sweep_dir.with_suffix(".log"), "w")  # noqa: SIM115 - closed by the caller
    command = [sys.executable, str(REPO / "train.py"), "-m", *args, f"hydra.sweep.dir={sweep_dir}"]
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        env={**os.environ, "UCL_MNIST_DIR": "", **(env or {})},
    )  # fmt: skip
    proc.log = out
    return proc


def signal_job(job: str, action: str) -> None:
    if action == "requeue":
        subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True)
    elif action == "cancel":
        subprocess.run(["scancel", job], check=True, capture_output=True)
    else:  # what SLURM sends signal_delay_s before the limit (sbatch --signal=USR2@...)
        subprocess.run(["scancel", "-s", "USR2", job], check=True, capture_output=True)


def hold_and_signal(proc, hold_dir: Path, plan: dict[str, tuple[str, str]], deadline_s=600):
    """Wait for each job to reach its phase (its marker), then signal it. Returns the
    phases hit, by job name."""
    hit: dict[str, str] = {}
    deadline = time.monotonic() + deadline_s
    while len(hit) < len(plan) and time.monotonic() < deadline:
        for name, (phase, action) in plan.items():
            marker = hold_dir / f"{name}.{phase}"
            if name not in hit and marker.exists() and marker.stat().st_size:
                signal_job(json.loads(marker.read_text())["job"], action)
                hit[name] = phase
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    return hit


def _deal(deck: list[str], rng: random.Random) -> str:
    """The next phase from a seeded shuffle of all of them: every phase is hit once in
    each run of five signals."""
    if not deck:
        deck.extend(rng.sample(PHASES, len(PHASES)))
    return deck.pop()


def wait(proc, deadline_s: float = 900) -> int:
    try:
        return proc.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return -9
    finally:
        proc.log.close()


def chaos(args) -> dict:
    out = outdir.claim(Path(args.out).resolve(), "cluster_chaos.py", "--out")
    outdir.remove_written(out)  # an earlier run's sweeps and logs; nothing else
    outdir.record(out, ["data", "reference", "reference.log"])
    compare = _chaos().differing_jobs
    rng = random.Random(args.seed)
    lrs = [f"0.{i + 1}" for i in range(args.jobs)]
    base = job_args(out / "data", args.steps, lrs)
    started = time.monotonic()
    reference = out / "reference"
    if wait(sweep(base, reference)) != 0:
        raise SystemExit(f"cluster_chaos: the reference sweep failed; see {reference}.log")
    figures = {"signals": 0, "survived": 0, "rounds": 0, "broken_sweeps": 0, "differ": [],
               "by_phase": {p: 0 for p in PHASES}, "missed_phase": 0}  # fmt: skip
    deck: list[str] = []
    while figures["signals"] < args.signals:
        n = figures["rounds"]
        figures["rounds"] += 1
        sweep_dir, hold_dir = out / f"round{n}", out / f"hold{n}"
        outdir.record(out, [sweep_dir.name, f"{sweep_dir.name}.log", hold_dir.name])
        hold_dir.mkdir()
        plan = {f"lr={lr}": (_deal(deck, rng), rng.choice(ACTIONS)) for lr in lrs}
        env = {"UCL_HOLD": json.dumps({k: v[0] for k, v in plan.items()}),
               "UCL_HOLD_DIR": str(hold_dir)}  # fmt: skip
        proc = sweep([*slurm_args(), *base], sweep_dir, env)
        hit = hold_and_signal(proc, hold_dir, plan)
        code = wait(proc)
        text = sweep_dir.with_suffix(".log").read_text()
        broken = code != 0 or "Traceback" in text
        differ = compare(reference, sweep_dir)
        figures["broken_sweeps"] += broken
        figures["differ"] += [f"round{n}/{d}" for d in differ]
        figures["missed_phase"] += len(plan) - len(hit)
        for name, phase in hit.items():
            figures["signals"] += 1
            figures["by_phase"][phase] += 1
            ok = not broken and not any(d.startswith(name) for d in differ)
            figures["survived"] += ok
            print(f"round {n}: {name} {plan[name][1]} at {phase}: "
                  f"{'survived' if ok else 'LOST'} (sweep exit {code})", flush=True)  # fmt: skip
    if args.retypes:
        figures["retype"] = retype_case(out, [*slurm_args(), *base], reference, rng, args.retypes)
    if args.time_limit:
        figures["time_limit"] = time_limit_case(out, args.limit_steps)
    figures["minutes"] = round((time.monotonic() - started) / 60, 1)
    return figures


def retype_case(out: Path, args: list[str], reference: Path, rng, rounds: int) -> dict:
    """The advice of a stopped sweep command taken at once: Ctrl-C, SIGTERM or a hang-up at a
    seeded moment 1-12 s in (while it submits, or its jobs are queued, running or ending),
    then the same command again. It must wait for the first one's jobs that run on, end with
    exit 0, no traceback and no run dir refused as in use, and every job must equal the
    reference's."""
    compare = _chaos().differing_jobs
    figures: dict = {"rounds": rounds, "survived": 0, "waited": 0, "lost": []}
    for n in range(rounds):
        sweep_dir = out / f"retype{n}"
        first_log = out / f"retype{n}.first.log"
        outdir.record(out, [sweep_dir.name, f"{sweep_dir.name}.log", first_log.name])
        stop = rng.choice((signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
        delay = rng.uniform(1.0, 12.0)
        first = sweep(args, sweep_dir, log=first_log)
        time.sleep(delay)
        if first.poll() is None:
            first.send_signal(stop)
        wait(first)
        code = wait(sweep(args, sweep_dir))
        said = sweep_dir.with_suffix(".log").read_text()
        text = first_log.read_text() + said
        differ = compare(reference, sweep_dir)
        ok = code == 0 and not differ and "Traceback" not in text and "in use by" not in text
        waited = "waiting for SLURM job" in said
        figures["survived"] += ok
        figures["waited"] += waited
        what = f"retype{n}: {stop.name} at {delay:.1f} s{', waited' if waited else ''}"
        if not ok:
            figures["lost"].append(f"{what}: exit {code}{', differ' if differ else ''}")
        print(f"{what}: {'survived' if ok else 'LOST'} (exit {code})", flush=True)
    return figures


def time_limit_case(out: Path, steps: int) -> dict:
    """A job that reaches its real time limit mid-training, again and again: a 1-minute limit
    with the warning 25 s before it (the configuration that once broke the sweep). SLURM
    checks its timers every 30 s or so, so a segment trains about 10 s on a 2-core machine:
    `steps` (12000) takes a few segments, and the job has requeues enough to finish."""
    args = ["model=mlp", f"steps={steps}", "eval_every=5000", "checkpoint_every=2000", "lr=0.1",
            f"dataset.idx_dir={FIXTURE}", f"dataset.root={out / 'data'}",
            "progress=false"]  # fmt: skip
    reference = out / "limit_reference"
    outdir.record(out, ["limit_reference", "limit_reference.log", "limit", "limit.log"])
    wait(sweep(args, reference), 1800)
    limited = out / "limit"
    limit = [*slurm_args(timeout_min=1, signal_delay_s=25), "hydra.launcher.max_num_timeout=20"]
    code = wait(sweep([*limit, *args], limited), 3600)
    text = limited.with_suffix(".log").read_text()
    (job,) = [p for p in limited.iterdir() if (p / "metrics.json").is_file()]
    record = json.loads((job / "metrics.json").read_text())
    return {"exit": code, "traceback": "Traceback" in text, "status": record["status"],
            "restarts": record.get("slurm", {}).get("restarts"),
            "differ": _chaos().differing_jobs(reference, limited)}  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=12, help="signals to deliver (12)")
    parser.add_argument("--jobs", type=int, default=3, help="jobs in each sweep (3)")
    parser.add_argument("--steps", type=int, default=600, help="iterations per job (600)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the phases and actions (0)")
    parser.add_argument("--retypes", type=int, default=0, help="stops, then the command again (0)")
    parser.add_argument("--time-limit", action="store_true", help="add the real time-limit case")
    parser.add_argument("--limit-steps", type=int, default=12000, help="its iterations (12000)")
    parser.add_argument("--out", default="runs/cluster_chaos", help="working dir")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    other_case = args.time_limit or args.retypes > 0  # then no signal round is needed
    _chaos().refuse_below_one(parser, args, "--jobs", "--steps", "--limit-steps",
                              *(() if other_case else ("--signals",)))  # fmt: skip
    if args.signals < 0 or args.retypes < 0:
        parser.error(f"--signals {args.signals} --retypes {args.retypes}: give 0 or more")
    try:
        figures = chaos(args)
    except OutputDirError as e:
        print(f"cluster_chaos: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(figures))
    else:
        print(json.dumps(figures, indent=2))
    limit = figures.get("time_limit", {"exit": 0, "traceback": False, "differ": []})
    lost = figures["signals"] - figures["survived"] + figures["broken_sweeps"]
    lost += len(figures.get("retype", {"lost": []})["lost"])
    return int(lost > 0 or bool(figures["differ"]) or limit["exit"] != 0 or limit["traceback"]
               or bool(limit["differ"]))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
