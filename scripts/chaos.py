"""Nothing is lost when a sweep is killed with SIGKILL at any moment, and re-run.

Runs three small sweeps on the committed MNIST subset -- a classifier (an MLP with dropout
and momentum), an autoencoder and a GAN, so that every random and optimizer state matters
-- once each uninterrupted as the references. Then runs the same sweeps, one per round and
the tasks in turn, into fresh sweep dirs and kills the whole process tree with SIGKILL at
seeded random moments -- some at a random time, some the instant a temporary file (a
checkpoint, metrics.json or history.csv being written) appears -- re-running the same
command after each kill, until it completes. Every round must end as its reference did.
Prints:

- kills survived / kills made: a round's kills count as survived only when the round's
  sweep completes and every job matches its reference;
- jobs whose final metrics, history.csv, model.pt weights or TensorBoard scalars differ
  from the reference (bit for bit);
- temporary or lock files left in the sweep dir at the end;
- reads of a job's metrics.json between kills that failed (a half-written record).

--out is a folder chaos.py made (it holds its marker file) or an empty one; it removes
only what an earlier chaos run wrote there.

    python scripts/chaos.py                 # 25 kills over three 4-job sweeps
    python scripts/chaos.py --kills 3 --jobs 1 --steps 60   # the test suite's short version
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ucl import outdir  # noqa: E402
from ucl.errors import CorruptFileError  # noqa: E402
from ucl.lifecycle import read_metrics  # noqa: E402
from ucl.outdir import OutputDirError  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "mnist"
LRS = ("0.05", "0.1", "0.2", "0.3")
POLL = 0.002  # seconds between looks for a temporary file
# the three kinds of training, each small enough for a sweep in seconds, each with random
# and optimizer state that a resume must restore exactly (dropout, momentum, Adam, noise)
TASKS = {
    "classify": ["model=mlp", "hidden=16", "model.dropout=0.2", "optimizer=momentum"],
    "autoencoder": ["model=autoencoder", "model.widths=[64,32]"],
    "gan": ["experiment=gan", "model.latent_dim=16", "model.generator_widths=[64]",
            "model.discriminator_widths=[64]", "task_settings.num_samples=200",
            "batch_size=64", "classifier=null"],
}  # fmt: skip


def sweep_command(task: str, sweep_dir: Path, data_root: Path, jobs: int, steps: int) -> list[str]:
    if task == "classify":  # learning rates x two seeds
        swept = [f"lr={','.join(LRS[: max(1, jobs // 2)])}", f"seed={'0,1' if jobs > 1 else '0'}"]
    else:
        swept = [f"seed={','.join(str(s) for s in range(max(1, jobs)))}"]
    return [
        sys.executable, str(REPO / "train.py"), "-m", *TASKS[task], *swept,
        f"steps={steps}", "eval_every=10", "checkpoint_every=5", "threads=1",
        "progress=false", f"dataset.idx_dir={FIXTURE}", f"dataset.root={data_root}",
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
    """Jobs whose final metrics, history.csv, model.pt weights or TensorBoard scalars are
    not bit-identical to the reference's, each with what differs."""
    differ = []
    for job in job_dirs(reference):
        twin = sweep / job.relative_to(reference)
        what = [name for name, same in (
            ("metrics", _same_metrics(job, twin)),
            ("history.csv", _same_bytes(job / "history.csv", twin / "history.csv")),
            ("model.pt", _same_model(job / "model.pt", twin / "model.pt")),
            ("TensorBoard scalars", scalars(job) == scalars(twin)),
        ) if not same]  # fmt: skip
        if what:
            differ.append(f"{job.relative_to(reference)} ({', '.join(what)})")
    return differ


def _same_metrics(a: Path, b: Path) -> bool:
    if not (b / "metrics.json").exists():
        return False
    return (
        json.loads((a / "metrics.json").read_text())["metrics"]
        == json.loads((b / "metrics.json").read_text())["metrics"]
    )


def _same_bytes(a: Path, b: Path) -> bool:
    return a.exists() == b.exists() and (not a.exists() or a.read_bytes() == b.read_bytes())


def _same_model(a: Path, b: Path) -> bool:
    """The saved weights, tensor by tensor (the file's bytes may differ in zip metadata)."""
    if a.exists() != b.exists():
        return False
    if not a.exists():
        return True
    import torch

    x, y = (torch.load(p, map_location="cpu", weights_only=False) for p in (a, b))
    return _equal(x, y)


def _equal(x, y) -> bool:
    import torch

    if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
        return isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and (
            x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)
        )  # fmt: skip
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_equal(a, b) for a, b in zip(x, y, strict=True))
    return x == y


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard shows for the run (all its event files, with what a resume
    purged left out): tag -> [(step, value)]."""
    import logging

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # it warns of each purge a resume asked for ("out of order event.step"): expected here
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def run_until_done(command, log, deadline_s=1800.0) -> int:
    proc = start(command, log)
    return proc.wait(timeout=deadline_s)


def chaos(args) -> dict:
    out = outdir.claim(Path(args.out).resolve(), "chaos.py", "--out")
    outdir.remove_written(out)  # an earlier chaos run's dirs and logs; nothing else
    data_root = out / "data"
    outdir.record(out, ["data"])
    rng = random.Random(args.seed)

    references, seconds = {}, {}
    for task in args.tasks:
        reference = out / f"reference-{task}"
        outdir.record(out, [reference.name, f"{reference.name}.log"])
        t = time.perf_counter()
        command = sweep_command(task, reference, data_root, args.jobs, args.steps)
        code = run_until_done(command, out / f"{reference.name}.log")
        seconds[task] = time.perf_counter() - t
        if code != 0:
            raise SystemExit(
                f"chaos: the {task} reference sweep failed (exit {code}); see "
                f"{out / reference.name}.log"
            )
        references[task] = reference
        print(f"reference {task}: {len(job_dirs(reference))} jobs in {seconds[task]:.1f} s",
              flush=True)  # fmt: skip

    kills = survived = during_writes = attempts = rounds = 0
    per_task = dict.fromkeys(args.tasks, 0)
    failed_reads: list[str] = []
    differ: list[str] = []
    leftovers: list[str] = []
    unfinished: list[str] = []
    # Rounds: each a fresh sweep dir of one task (the tasks in turn), killed up to
    # `per_round` times, each kill followed by the same command again, until an attempt
    # completes on its own. A round's kills count as survived only when it completes and
    # every job matches its reference. Kill moments fall within the first half of the
    # reference's time, so most attempts die before they finish.
    planned_rounds = min(2 * len(args.tasks), args.kills)  # the kills spread evenly
    while kills < args.kills:
        per_round = math.ceil((args.kills - kills) / max(1, planned_rounds - rounds))
        task = args.tasks[rounds % len(args.tasks)]
        rounds += 1
        sweep = out / f"chaos-{rounds}-{task}"
        outdir.record(out, [sweep.name, f"{sweep.name}.log"])
        command = sweep_command(task, sweep, data_root, args.jobs, args.steps)
        log = out / f"{sweep.name}.log"
        round_kills = 0
        while True:
            attempts += 1
            stale = set(temp_files(sweep))  # left by the last kill, until a job clears them
            proc = start(command, log)
            if kills < args.kills and round_kills < per_round:
                on_write = rng.random() < 0.5  # half the kills aim at a write in progress
                delay = rng.uniform(0.2, seconds[task] / 2)
                started = time.perf_counter()
                while proc.poll() is None and time.perf_counter() - started < delay:
                    if on_write and set(temp_files(sweep)) - stale:
                        break
                    time.sleep(POLL if on_write else 0.02)
                if proc.poll() is None:
                    writing = bool(set(temp_files(sweep)) - stale)
                    kill_tree(proc)
                    kills += 1
                    round_kills += 1
                    per_task[task] += 1
                    during_writes += writing
                    failed_reads += unreadable_records(sweep)
                    at = time.perf_counter() - started
                    note = " (a file was being written)" if writing else ""
                    print(f"round {rounds} ({task}): kill {kills}/{args.kills} at {at:.2f} s"
                          f"{note}", flush=True)  # fmt: skip
                    continue
            code = proc.wait(timeout=1800)
            failed_reads += unreadable_records(sweep)
            if code == 0:
                break
            if attempts > 4 * args.kills + 20:
                unfinished.append(f"round {rounds} ({task}): exit {code}, see {log}")
                break
        if unfinished and unfinished[-1].startswith(f"round {rounds} "):
            break  # the sweep keeps failing: its kills are not survived
        wrong = [f"round {rounds} ({task}): {j}" for j in differing_jobs(references[task], sweep)]
        left = [str(p.relative_to(out)) for p in temp_files(sweep)]
        left += [str(p.relative_to(out)) for p in sweep.rglob(".lock")]
        differ += wrong
        leftovers += left
        if not wrong and not left:
            survived += round_kills

    return {
        "tasks": list(args.tasks),
        "jobs": sum(len(job_dirs(r)) for r in references.values()),
        "kills": kills,
        "kills_per_task": per_task,
        "survived": survived,
        "during_writes": during_writes,
        "differ": differ,
        "leftovers": leftovers,
        "failed_reads": failed_reads,
        "unfinished": unfinished,
        "attempts": attempts,
        "rounds": rounds,
        "reference_seconds": {t: round(v, 1) for t, v in seconds.items()},
    }


def table(r: dict) -> str:
    per_task = ", ".join(f"{t} {n}" for t, n in r["kills_per_task"].items())
    rows = [
        ("kills survived / kills made (a round's kills count once it completes and "
         "matches)", f"{r['survived']} / {r['kills']}", f"all, >= {r['target']}"),
        ("kills per task", per_task, ""),
        ("sweeps run to completion through the kills (rounds)", str(r["rounds"]), ""),
        ("kills while a file was being written", str(r["during_writes"]), ""),
        (f"jobs whose metrics, history.csv, model.pt or TensorBoard scalars differ from the "
         f"reference (of {r['jobs']} per pass over the tasks)", str(len(r["differ"])), "0"),
        ("temporary or lock files left", str(len(r["leftovers"])), "0"),
        ("metrics.json reads that failed between kills", str(len(r["failed_reads"])), "0"),
        ("rounds that never completed", str(len(r["unfinished"])), "0"),
    ]  # fmt: skip
    lines = ["| figure | measured | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def refuse_below_one(parser: argparse.ArgumentParser, args, *flags: str) -> None:
    """A count below 1 proves nothing (no kill, no job, no step): refused before anything
    runs, naming the flag."""
    for flag in flags:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value < 1:
            parser.error(f"{flag} {value}: give 1 or more")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=25, help="SIGKILLs to deliver (25)")
    parser.add_argument("--jobs", type=int, default=4, help="jobs in each task's sweep (4)")
    parser.add_argument("--steps", type=int, default=200, help="iterations per job (200)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments (0)")
    parser.add_argument(
        "--tasks", default=",".join(TASKS), help=f"comma-separated, of {', '.join(TASKS)} (all)"
    )
    parser.add_argument("--out", default="runs/chaos", help="working dir (runs/chaos)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    refuse_below_one(parser, args, "--kills", "--jobs", "--steps")
    args.tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in args.tasks if t not in TASKS]
    if unknown or not args.tasks:
        parser.error(f"--tasks {unknown or 'empty'}: choose from {', '.join(TASKS)}")
    try:
        result = chaos(args)
    except OutputDirError as e:
        print(f"chaos: {e}", file=sys.stderr)
        return 2
    result["target"] = args.kills
    print(json.dumps(result) if args.json else table(result))
    ok = (result["survived"] == result["kills"] >= args.kills and not result["differ"]
          and not result["leftovers"] and not result["failed_reads"]
          and not result["unfinished"])  # fmt: skip
    for name in ("differ", "leftovers", "failed_reads", "unfinished"):
        for item in result[name]:
            print(f"{name}: {item}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
