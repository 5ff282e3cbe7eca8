"""Sweeps through Hydra's launchers: joblib runs jobs as local processes with threads
shared out so that jobs x threads <= cores; submitit_slurm is configured, and its local
twin submitit_local runs a sweep here."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
from train_process import (
    FIXTURE_MNIST,
    REPO,
    data_args,
    metrics,
    output,
    start,
    train,
    wait_for,
)

from ucl.lifecycle import available_cores, concurrent_jobs, threads_per_job

JOBLIB = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"}
SHORT = ["steps=20", "eval_every=10", "lr=0.1,0.5"]


@pytest.mark.parametrize(
    "threads, launcher, cores, expected",
    [
        (3, {**JOBLIB, "n_jobs": 4}, 8, 3),  # given: kept
        (None, None, 8, None),  # one job at a time: the run chooses from its work
        ("auto", None, 8, None),
        ("auto", {**JOBLIB, "n_jobs": 4}, 8, 2),  # auto under joblib: the launcher's rule
        (None, {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, 8, None),
        (None, {**JOBLIB, "n_jobs": 4}, 8, 2),
        (None, {**JOBLIB, "n_jobs": 3}, 8, 2),  # rounded down: 3 x 2 <= 8
        (None, {**JOBLIB, "n_jobs": -1}, 8, 1),  # one job per core
        (None, {**JOBLIB, "n_jobs": -2}, 8, 1),
        (None, {**JOBLIB, "n_jobs": 16}, 8, 1),  # never below one
        (None, {"_target_": "...SlurmLauncher", "cpus_per_task": 4}, 64, 4),
        (None, {"_target_": "...LocalLauncher", "cpus_per_task": None}, 8, None),
    ],
)
def test_threads_per_job(threads, launcher, cores, expected):
    assert threads_per_job(threads, launcher, cores) == expected


def test_threads_for_work_is_a_rule_of_the_work_per_step():
    from ucl.lifecycle import WORK_PER_THREAD, threads_for_work

    assert threads_for_work(128 * 7850, 2)[0] == 1  # logistic regression: one thread
    assert threads_for_work(WORK_PER_THREAD * 2, 2)[0] == 2
    assert threads_for_work(WORK_PER_THREAD * 64, 8)[0] == 8  # never more than the cores
    count, reason = threads_for_work(128 * 7850, 2)
    assert reason.startswith("threads=auto: 1M multiply-adds per step") and reason.endswith(": 1")
    assert threads_for_work(3e8, 2) == threads_for_work(3e8, 2)  # the same every time


def test_the_default_run_records_its_thread_choice(tmp_path, fixture_overrides):
    from ucl.config import run_config

    record = run_config([*fixture_overrides, "steps=3", "progress=false"], tmp_path / "run")
    assert record["env"]["threads"] == 1
    assert record["env"]["threads_reason"].startswith("threads=auto: 1M multiply-adds")
    record = run_config([*fixture_overrides, "steps=3", "threads=2"], tmp_path / "two")
    assert record["env"]["threads"] == 2 and "threads=2: given" in record["env"]["threads_reason"]


def test_joblib_conventions():
    assert [concurrent_jobs(n, 8) for n in (None, 1, 5, -1, -2, -8)] == [1, 1, 5, 8, 7, 1]
    assert concurrent_jobs(-20, 8) == 1


def test_launchers_are_an_optional_extra():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extra = " ".join(project["optional-dependencies"]["launchers"])
    assert "hydra-joblib-launcher" in extra and "hydra-submitit-launcher" in extra
    assert not any("launcher" in d for d in project["dependencies"])


@pytest.mark.parametrize("name", ["submitit_slurm", "submitit_local"])
def test_submitit_configs_compose_and_comment_every_key(name):
    from hydra import compose, initialize_config_dir

    from ucl.schema import register_schema

    register_schema()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", [f"hydra/launcher={name}"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher" if "slurm" in name else "LocalLauncher")
    assert launcher.cpus_per_task >= 1 and launcher.timeout_min >= 1
    if name == "submitit_slurm":
        assert "partition" in launcher and launcher.max_num_timeout > 0  # requeue and resume
    text = (REPO / "conf" / "hydra" / "launcher" / f"{name}.yaml").read_text()
    keys = [line for line in text.splitlines() if re.match(r"^\w+:", line)]
    assert len(keys) == len(launcher) and all(" # " in line for line in keys)


# One job a core (n_jobs=-1) leaves each job one thread, where threads=auto alone would
# take two: a 512-wide MLP on batches of 2000 is 814M multiply-adds per step. The launcher's
# share must win, or the jobs oversubscribe the cores.
WIDE = ["model=mlp", "hidden=512", "batch_size=2000", "steps=2", "eval_every=2", "lr=0.1,0.5"]
WIDE_WORK = 2000 * (784 * 512 + 512 + 512 * 10 + 10)  # batch x parameters


@pytest.mark.slow
def test_joblib_runs_jobs_as_processes_sharing_the_cores(tmp_path):
    from ucl.lifecycle import threads_for_work

    cores = available_cores()
    if cores < 2:
        pytest.skip("one core: the launcher's share and threads=auto agree")
    assert threads_for_work(WIDE_WORK, cores)[0] == 2  # what the run would pick by itself
    log = tmp_path / "sweep.log"
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=-1", *WIDE,
            *data_args(tmp_path), f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # fmt: skip
    proc = start(args, log)
    assert proc.wait(timeout=600) == 0, log.read_text()
    assert "Joblib.Parallel(n_jobs=-1" in log.read_text()
    for job in ("lr=0.1", "lr=0.5"):
        record = metrics(tmp_path / "sweep" / job)
        assert record["status"] == "completed"
        assert record["env"]["threads"] == 1, record["env"]
        assert record["env"]["threads_reason"].startswith("threads=1: given, or left to each job")
        # TensorBoard names its event file after the writing process: a worker, not train.py
        (events,) = (tmp_path / "sweep" / job).glob("events.out.tfevents.*")
        assert int(events.name.split(".")[-2]) != proc.pid


@pytest.mark.slow
def ctrl_c_once_both_jobs_hold(tmp_path, launcher: list[str]):
    """Two jobs under `launcher`, each held once training; then Ctrl-C as a terminal sends
    it, to the whole process group. Returns the sweep dir and the command's output."""
    sweep, hold, log = tmp_path / "sweep", tmp_path / "hold", tmp_path / "sweep.log"
    hold.mkdir()
    args = ["-m", *launcher, "model=logreg", "steps=60", "eval_every=20", "lr=0.1,0.5",
            *data_args(tmp_path), f"hydra.sweep.dir={sweep}"]  # fmt: skip
    env = {"UCL_HOLD": json.dumps({"*": "train"}), "UCL_HOLD_DIR": str(hold)}
    proc = start(args, log, env, terminal=True)  # Ctrl-C reaches the jobs too
    for job in ("lr=0.1", "lr=0.5"):
        wait_for(hold / f"{job}.train", proc, log)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=600) == 130, log.read_text()
    return sweep, log.read_text()


def test_ctrl_c_on_a_joblib_sweep_stops_its_jobs_and_says_how_to_continue(tmp_path):
    sweep, text = ctrl_c_once_both_jobs_hold(
        tmp_path, ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    )
    assert "Traceback" not in text, text
    said = [line for line in text.splitlines() if line.startswith("train.py: ")]
    assert said == [
        "train.py: stopped by SIGINT; the launcher's jobs stop where they are, and the same "
        "command continues each from its last checkpoint"
    ], text
    for job in ("lr=0.1", "lr=0.5"):  # joblib may kill a worker before it records its end
        assert metrics(sweep / job)["status"] in ("interrupted", "running")


def test_ctrl_c_on_a_submitit_local_sweep_leaves_no_slurm_job_in_its_summary(tmp_path):
    """The local twin's jobs are this machine's processes, which stop with the command: the
    sweep's summary speaks of its runs, not of SLURM jobs that never were."""
    sweep, _ = ctrl_c_once_both_jobs_hold(tmp_path, ["hydra/launcher=submitit_local"])
    summary = subprocess.run([sys.executable, "scripts/summarize.py", str(sweep)], cwd=REPO,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert summary.returncode == 0 and "SLURM" not in summary.stdout, summary.stdout


@pytest.mark.slow
def test_submitit_local_sweep(tmp_path):
    # cpus_per_task=2 gives each job two threads, where threads=auto picks one for this MLP
    sweep = tmp_path / "sweep"
    proc = train(["-m", "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=2",
                  *SHORT, *data_args(tmp_path), f"hydra.sweep.dir={sweep}"])  # fmt: skip
    assert proc.returncode == 0, output(proc)
    assert "validated against ConfigStore schema" not in proc.stderr
    for job in ("lr=0.1", "lr=0.5"):
        record = metrics(sweep / job)
        assert record["status"] == "completed" and record["env"]["threads"] == 2, record["env"]
        assert record["env"]["threads_reason"].startswith("threads=2: given, or left to each job")
    assert list((sweep / ".submitit").glob("*/*_log.out"))  # submitit ran them


def test_parallel_jobs_import_the_data_at_once(tmp_path, monkeypatch):
    """Two jobs of a parallel sweep, one fresh dataset.root: both copy the IDX files at
    the same moment (held there by a barrier), and neither trips over the other's file."""
    import threading

    import ucl.data as idx

    barrier = threading.Barrier(2, timeout=10)
    write = idx.atomic_write

    def write_together(path, data):
        barrier.wait()
        write(path, data)
        barrier.wait()

    monkeypatch.setattr(idx, "atomic_write", write_together)
    errors = []

    def job():
        try:
            idx.import_idx_dir(FIXTURE_MNIST, tmp_path / "raw")
        except Exception as e:  # reported below, in the test's own thread
            errors.append(e)

    jobs = [threading.Thread(target=job) for _ in range(2)]
    for t in jobs:
        t.start()
    for t in jobs:
        t.join()
    assert not errors, errors
    assert idx.check_raw_dir(tmp_path / "raw")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(idx.IDX_FILES)
