"""Sweeps on a real SLURM cluster (.ci/slurm-cluster starts one on this machine; CI starts it
before the suite and sets UCL_REQUIRE_SLURM=1, so that a missing cluster fails instead of
skipping): README's command as written, failures on the node, and requeues and time-limit
warnings at held phases, each job ending bit-identical to the basic launcher's."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_process import FIXTURE_MNIST, REPO, wait_for

pytestmark = pytest.mark.slurm

sys.path.insert(0, str(REPO / "scripts"))
import cluster_chaos  # noqa: E402

from ucl.lifecycle import TRAIN_STEP  # noqa: E402

INACCURATE = "status may be inaccurate"


@pytest.fixture(scope="module", autouse=True)
def cluster():
    try:
        up = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                            timeout=10).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        up = ""
    if not re.search(r"idle|mixed|allocated", up):
        why = "no SLURM cluster answers (start one: .ci/slurm-cluster up)"
        if os.environ.get("UCL_REQUIRE_SLURM") == "1":
            pytest.fail(why + "; UCL_REQUIRE_SLURM=1 says this run must have one")
        pytest.skip(why)


def readme_slurm_command() -> list[str]:
    """The sweep in README's SLURM section, as written."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"```bash\n(python train\.py -m hydra/launcher=submitit_slurm.*?)```",
                      text, re.S).group(1)  # fmt: skip
    return shlex.split(block.replace("\\\n", " "))[2:]  # after `python train.py`


def data(tmp: Path) -> list[str]:
    return [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp / 'data'}", "progress=false"]


def run(args: list[str], sweep_dir: Path, env: dict | None = None):
    proc = cluster_chaos.sweep(args, sweep_dir, env)
    code = cluster_chaos.wait(proc)
    return code, sweep_dir.with_suffix(".log").read_text()


def summary_rows(sweep_dir: Path) -> list[dict]:
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "summarize.py"), str(sweep_dir),
                          "--per-seed"], capture_output=True, text=True, cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader((sweep_dir / "summary.csv").open()))
    return [
        {k: v for k, v in row.items() if not k.endswith(" s") and k != "run_dir"} for row in rows
    ]


@pytest.mark.slow
def test_readme_sweep_on_the_cluster_equals_the_basic_launcher(tmp_path):
    """README's command with the documented size overrides (one core, 4 GB a job) on the
    fixture: every job completes, records where it ran, and its metrics, history.csv and
    summarize table equal the same sweep on the basic launcher, bit for bit."""
    args = readme_slurm_command()
    assert "hydra/launcher=submitit_slurm" in args and "lr=0.1,0.3,1.0" in args
    size = ["hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=4"]
    code, log = run([*args, *size, *data(tmp_path)], tmp_path / "slurm")
    assert code == 0 and "Traceback" not in log and INACCURATE not in log, log
    basic = [a for a in args if not a.startswith(("hydra/launcher", "hydra.launcher"))]
    code, log = run([*basic, *data(tmp_path)], tmp_path / "basic")
    assert code == 0, log
    assert cluster_chaos._chaos().differing_jobs(tmp_path / "basic", tmp_path / "slurm") == []
    for job in ("lr=0.1", "lr=0.3", "lr=1.0"):
        record = json.loads((tmp_path / "slurm" / job / "metrics.json").read_text())
        assert record["status"] == "completed"
        slurm = record["slurm"]
        assert slurm["job_id"].isdigit() and slurm["array_index"] in (0, 1, 2)
        assert slurm["node"] and slurm["restarts"] == 0
    assert summary_rows(tmp_path / "slurm") == summary_rows(tmp_path / "basic")


@pytest.mark.slow
def test_requeue_time_limit_and_an_early_signal_lose_nothing(tmp_path):
    """One sweep, three jobs held at a phase each: requeued mid-training, warned of its time
    limit mid-training (the checkpoint is written at that iteration, not the periodic one),
    and requeued while loading its data. The sweep waits for the requeued jobs and exits 0,
    and each job equals the uninterrupted one."""
    base = cluster_chaos.job_args(tmp_path / "data", 600, ["0.1", "0.2", "0.3"])
    code, log = run(base, tmp_path / "reference")
    assert code == 0, log
    plan = {"lr=0.1": ("train", "requeue"), "lr=0.2": ("train", "time-limit warning"),
            "lr=0.3": ("data", "requeue")}  # fmt: skip
    hold = tmp_path / "hold"
    hold.mkdir()
    env = {"UCL_HOLD": json.dumps({k: v[0] for k, v in plan.items()}), "UCL_HOLD_DIR": str(hold)}
    proc = cluster_chaos.sweep([*cluster_chaos.slurm_args(), *base], tmp_path / "sweep", env)
    hit = cluster_chaos.hold_and_signal(proc, hold, plan)
    code = cluster_chaos.wait(proc)
    log = (tmp_path / "sweep.log").read_text()
    assert hit == {name: phase for name, (phase, _) in plan.items()}
    assert code == 0 and "Traceback" not in log, log
    assert cluster_chaos._chaos().differing_jobs(tmp_path / "reference", tmp_path / "sweep") == []
    for name in plan:
        record = json.loads((tmp_path / "sweep" / name / "metrics.json").read_text())
        assert record["status"] == "completed" and record["slurm"]["restarts"] == 1, name
    warned = (tmp_path / "sweep" / "lr=0.2" / "train.log").read_text()
    step = TRAIN_STEP
    assert f"SIGUSR2 at iteration {step}; checkpoint written" in warned
    assert (
        f"resumed from {tmp_path / 'sweep' / 'lr=0.2' / 'checkpoint.pt'} at iteration {step}"
        in warned
    )


def test_a_sweep_sbatch_refuses_is_one_line_naming_the_settings(tmp_path):
    args = [*cluster_chaos.slurm_args(), "hydra.launcher.partition=nosuch", "model=logreg",
            "steps=10", "lr=0.1,0.2", *data(tmp_path)]  # fmt: skip
    code, log = run(args, tmp_path / "sweep")
    assert code == 2 and "Traceback" not in log, log
    said = log.strip().splitlines()[-1]
    assert said.startswith(
        "train.py: SLURM refused the sweep's jobs: invalid partition specified: nosuch"
    ), said
    assert "hydra.launcher.partition=nosuch" in said and "cpus_per_task=1" in said, said


def test_a_job_the_partition_cannot_start_is_named_while_the_sweep_waits(tmp_path):
    """More cores than a node has: SLURM takes the job and leaves it pending (PartitionConfig)
    until the request or the partition changes; the waiting command says so, and so does the
    same command typed again after a Ctrl-C, while it waits for that job."""
    sweep, first_log, second_log = tmp_path / "sweep", tmp_path / "first.log", tmp_path / "2.log"
    args = [*cluster_chaos.slurm_args(), "hydra.launcher.cpus_per_task=64", "model=logreg",
            "steps=10", "lr=0.1", *data(tmp_path)]  # fmt: skip
    first, second = cluster_chaos.sweep(args, sweep, log=first_log), None
    try:
        said_within(first_log, "cannot start", 60)
        first.send_signal(signal.SIGINT)
        assert cluster_chaos.wait(first) == 130
        second = cluster_chaos.sweep(args, sweep, log=second_log)
        said_within(second_log, "cannot start", 60)
    finally:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (second or first).poll() is None:
            for job in (sweep / ".submitit").glob("[0-9]*"):  # each array, by its folder
                subprocess.run(["scancel", job.name.partition("_")[0]], capture_output=True)
            time.sleep(0.5)
        code = cluster_chaos.wait(second or first, 10)
    said = [line for line in first_log.read_text().splitlines() if "cannot start" in line]
    assert len(said) == 1, first_log.read_text()
    assert "waits for PartitionConfig" in said[0] and "hydra.launcher.cpus_per_task=64" in said[0]
    job = re.search(r"SLURM job (\S+) cannot start", said[0])[1]
    again = [line for line in second_log.read_text().splitlines() if "cannot start" in line]
    assert f"waiting for SLURM job {job}," in second_log.read_text(), second_log.read_text()
    assert again[0].split("] ", 1)[1] == said[0].split("] ", 1)[1], (again, said)
    assert code == 1  # its own job cancelled: the sweep names it and fails


@pytest.mark.slow
def test_failures_on_the_node_are_named_and_the_sweep_fails(tmp_path):
    """In one sweep with no requeue left (max_num_timeout=0): a job that raises (its loss
    diverges), one cancelled mid-training and one warned of its time limit; then a sweep
    whose job SLURM kills for its memory. Each sweep waits for all its jobs and exits 1 with
    one line and no traceback; cluster.json and summarize name every failed job with its
    state, reason and log; no accounting warning is printed."""
    hold = tmp_path / "hold"
    hold.mkdir()
    plan = {"lr=0.2": ("train", "cancel"), "lr=0.4": ("train", "time-limit warning")}
    env = {"UCL_HOLD": json.dumps({k: v[0] for k, v in plan.items()}), "UCL_HOLD_DIR": str(hold)}
    args = [*cluster_chaos.slurm_args(), "model=mlp", "steps=300", *data(tmp_path)]
    proc = cluster_chaos.sweep([*args, "hydra.launcher.max_num_timeout=0", "lr=1e9,0.2,0.3,0.4"],
                               tmp_path / "sweep", env)  # fmt: skip
    hit = cluster_chaos.hold_and_signal(proc, hold, plan)
    code = cluster_chaos.wait(proc)
    log = (tmp_path / "sweep.log").read_text()
    assert hit == {"lr=0.2": "train", "lr=0.4": "train"}
    assert code == 1 and "Traceback" not in log and INACCURATE not in log, log
    assert log.splitlines()[-1].startswith("train.py: run failed: ")
    ledger = json.loads((tmp_path / "sweep" / "cluster.json").read_text())
    state = {e["overrides"][-1]: e for e in ledger.values()}
    assert state["lr=0.3"]["state"] == "COMPLETED"
    nan = state["lr=1000000000.0"]
    assert nan["state"] == "FAILED" and "became nan" in nan["reason"]
    assert state["lr=0.2"]["state"].startswith("CANCELLED")
    assert Path(state["lr=0.2"]["err"]).is_file()
    timed_out = state["lr=0.4"]
    assert timed_out["state"] == "FAILED" and "timed-out too many times" in timed_out["reason"]
    assert "SLURM job " in timed_out["reason"] and "_log.err" in timed_out["reason"]
    record = json.loads((tmp_path / "sweep" / "lr=0.4" / "metrics.json").read_text())
    assert record["status"] == "failed" and "not requeued" in record["reason"]
    table = summarize(tmp_path / "sweep")
    assert re.search(r"lr=0\.2: failed on the cluster: SLURM job \S+ CANCELLED.*log \S+_log\.err",
                     table), table  # fmt: skip
    assert re.search(r"lr=1000000000\.0: failed", table) and "lr=0.4: failed" in table, table

    code, log = run([*args, "hydra.launcher.mem_gb=null", "hydra.launcher.mem_per_cpu=64M",
                     "lr=0.5"], tmp_path / "oom")  # fmt: skip
    assert code == 1 and "Traceback" not in log, log
    ledger = json.loads((tmp_path / "oom" / "cluster.json").read_text())
    assert ledger["0"]["state"] == "FAILED" and "exceeded memory limit (" in ledger["0"]["reason"]
    assert "exceeded memory limit (" in log.splitlines()[-1] and ledger["0"]["err"] in log


def summarize(sweep_dir: Path, env: dict | None = None) -> str:
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "summarize.py"), str(sweep_dir)],
                         capture_output=True, text=True, cwd=REPO, env=env)  # fmt: skip
    return out.stdout + out.stderr


def test_a_run_whose_slurm_job_is_alive_is_never_resumed(tmp_path):
    """A crashed-looking run (metrics.json says running, the lock is free here) whose lock
    names a SLURM job that is still queued or running belongs to that job: refused, naming it;
    once the job has ended, the run continues."""
    from train_process import metrics, snapshot, start, train

    run_dir, hold, log = tmp_path / "run", tmp_path / "hold", tmp_path / "log"
    hold.mkdir()
    args = ["model=logreg", "steps=60", "eval_every=20", "checkpoint_every=20",
            *data(tmp_path), f"hydra.run.dir={run_dir}"]  # fmt: skip
    proc = start(args, log, {"UCL_HOLD": '{"run": "train"}', "UCL_HOLD_DIR": str(hold)})
    wait_for(hold / "run.train", proc, log)
    proc.kill()
    proc.wait()
    sleeper = ["sbatch", "--parsable", "-c1", "--mem=100M", "-o", str(tmp_path / "sleep.out")]
    job = subprocess.run([*sleeper, "--wrap", "sleep 120"], capture_output=True, text=True,
                         check=True).stdout.strip()  # fmt: skip
    try:
        (run_dir / ".lock").write_text(f"{proc.pid} on node07 job {job}")
        before = snapshot(run_dir)
        refused = train(args)
        assert refused.returncode == 2, refused.stderr
        line = refused.stderr.strip().splitlines()[-1]
        assert f"SLURM job {job}" in line and f"scancel {job}" in line, line
        assert snapshot(run_dir) == before
    finally:
        subprocess.run(["scancel", job], check=True)
    for _ in range(100):  # SLURM forgets a cancelled job's queue entry within seconds
        state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True,
                               text=True).stdout.strip()  # fmt: skip
        if not state:
            break
        time.sleep(0.2)
    assert train(args).returncode == 0
    assert metrics(run_dir)["status"] == "completed"


def said_within(log: Path, text: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while text not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    return text in log.read_text()


@pytest.mark.slow
def test_a_sweep_typed_again_while_its_jobs_run_waits_for_them(tmp_path):
    """The advice of a stopped sweep command (its SLURM jobs run on; the same command
    continues the sweep) taken at once, with a core free for a second writer: the detached
    launcher is refused in one line, and the waiting one waits for the earlier job instead of
    starting another on its dir, then completes."""
    sweep, hold = tmp_path / "sweep", tmp_path / "hold"
    hold.mkdir()
    args = [*cluster_chaos.slurm_args(), *cluster_chaos.job_args(tmp_path / "data", 300, ["0.1"])]
    env = {"UCL_HOLD": '{"*": "train"}', "UCL_HOLD_DIR": str(hold)}
    first = cluster_chaos.sweep(args, sweep, env, log=tmp_path / "first.log")
    deadline = time.monotonic() + 120
    while not [m for m in hold.glob("*.train") if m.stat().st_size]:
        assert first.poll() is None and time.monotonic() < deadline, first.log.name
        time.sleep(0.1)
    marker = next(hold.glob("*.train"))
    job = json.loads(marker.read_text())["job"]
    first.send_signal(signal.SIGINT)
    assert cluster_chaos.wait(first) == 130
    said = (tmp_path / "first.log").read_text().strip().splitlines()[-1]
    assert "its SLURM jobs run on" in said and "the same command waits for them" in said, said
    table = summarize(sweep)  # from the jobs the stopped command recorded
    assert re.search(rf": not finished yet: SLURM job {job} RUNNING", table), table

    detached = [a.replace("=submitit_slurm", "=submitit_slurm_detached") for a in args]
    code, log = run(detached, sweep)
    assert code == 2 and "Traceback" not in log, log
    said = log.strip().splitlines()[-1]
    assert f"SLURM job {job}" in said and f"scancel {job}" in said, said

    second = cluster_chaos.sweep(args, sweep, log=tmp_path / "second.log")
    try:
        waiting = said_within(tmp_path / "second.log", f"waiting for SLURM job {job}", 60)
    finally:
        marker.unlink()  # the earlier job goes on, and completes
    code = cluster_chaos.wait(second)
    log = (tmp_path / "second.log").read_text()
    assert waiting and code == 0 and "in use by" not in log, log
    (record,) = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
    assert record["status"] == "completed" and record["slurm"]["job_id"] == job


def test_a_signal_while_sbatch_submits_ends_the_command_once_the_jobs_are_recorded(tmp_path):
    """Ctrl-C while the array is being submitted (a slow sbatch here): whatever SLURM took is
    recorded in cluster.json before the command ends, so the same command typed again knows
    those jobs and waits for them."""
    bin_dir, started = tmp_path / "bin", tmp_path / "sbatch-started"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"  # a slow controller: sbatch takes 3 s to answer
    sbatch.write_text(f"#!/bin/sh\ntouch {started}\nsleep 3\nexec {shutil.which('sbatch')} "
                      '"$@"\n')  # fmt: skip
    sbatch.chmod(0o755)
    sweep = tmp_path / "sweep"
    args = [*cluster_chaos.slurm_args(), "model=logreg", "steps=10", "lr=0.1", *data(tmp_path)]
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = cluster_chaos.sweep(args, sweep, env)
    wait_for(started, proc, sweep.with_suffix(".log"))
    proc.send_signal(signal.SIGINT)
    code = cluster_chaos.wait(proc)
    log = sweep.with_suffix(".log").read_text()
    assert code == 130 and "Traceback" not in log, log
    ledger = json.loads((sweep / "cluster.json").read_text())
    assert [e["state"] for e in ledger.values()] == ["SUBMITTED"], ledger


@pytest.mark.slow
def test_a_detached_sweep_returns_at_once_and_summarize_follows_it(tmp_path):
    """hydra/launcher=submitit_slurm_detached submits and returns while the jobs run (one is
    held loading its data); summarize, from the sweep dir alone, says how they stand, and
    tables them once they are done."""
    args = [a.replace("=submitit_slurm", "=submitit_slurm_detached")
            for a in cluster_chaos.slurm_args()]  # fmt: skip
    hold = tmp_path / "hold"
    hold.mkdir()
    env = {"UCL_HOLD": '{"lr=0.3": "data"}', "UCL_HOLD_DIR": str(hold)}
    proc = cluster_chaos.sweep(
        [*args, "model=logreg", "steps=200", "lr=0.1,0.3", *data(tmp_path)], tmp_path / "sweep", env
    )
    code = cluster_chaos.wait(proc)
    log = (tmp_path / "sweep.log").read_text()
    assert code == 0 and "submitted 2 jobs and returned" in log, log
    ledger = json.loads((tmp_path / "sweep" / "cluster.json").read_text())
    assert {e["state"] for e in ledger.values()} == {"SUBMITTED"}
    for _ in range(600):
        if (hold / "lr=0.3.data").exists():
            break
        time.sleep(0.1)
    table = summarize(tmp_path / "sweep")
    assert re.search(r"lr=0\.3: not finished yet: SLURM job \S+ RUNNING", table), table
    (hold / "lr=0.3.data").unlink()  # let it go on
    for _ in range(600):
        table = summarize(tmp_path / "sweep")
        if "covers 2 of the 2 planned jobs" in table and "not finished" not in table:
            break
        time.sleep(0.5)
    assert "covers 2 of the 2 planned jobs" in table, table
    ledger = json.loads((tmp_path / "sweep" / "cluster.json").read_text())
    assert {e["state"] for e in ledger.values()} == {"COMPLETED"}


@pytest.mark.slow
def test_summarize_without_accounting_takes_a_job_gone_from_the_queue_as_ended(tmp_path):
    """On a cluster without job accounting (no slurmdbd: sacct answers that accounting
    storage is disabled), a recorded job that squeue no longer lists has ended, and the run's
    own record says how: it is not 'not finished yet' for ever."""
    args = [a.replace("=submitit_slurm", "=submitit_slurm_detached")
            for a in cluster_chaos.slurm_args()]  # fmt: skip
    sweep = tmp_path / "sweep"
    code, log = run([*args, "model=logreg", "steps=10", "lr=0.1", *data(tmp_path)], sweep)
    assert code == 0, log
    (job,) = [e["job_id"] for e in json.loads((sweep / "cluster.json").read_text()).values()]
    deadline = time.monotonic() + 120
    while job in (subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True,
                                 text=True).stdout.split()):  # fmt: skip
        assert time.monotonic() < deadline
        time.sleep(0.5)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sacct = bin_dir / "sacct"  # what sacct says on a cluster without slurmdbd
    sacct.write_text("#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\n"
                     "exit 1\n")  # fmt: skip
    sacct.chmod(0o755)
    table = summarize(sweep, {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert "covers 1 of the 1 planned jobs" in table and "not finished" not in table, table
