"""Sweeps that meet failures and interruptions: a job whose loss turns NaN is recorded as
failed while the others complete; a re-run into the same sweep dir skips completed jobs,
resumes an interrupted one, continues a failed one from its last checkpoint, and refuses a
dir that holds another job."""

from __future__ import annotations

import shutil
import signal
import subprocess

import pytest
from train_process import REPO, data_args, metrics, output, snapshot, start, train, wait_for

from ucl import rundir
from ucl.errors import ConfigError
from ucl.loop import read_checkpoint

# the middle job's learning rate makes the loss NaN at iteration 2
LRS = "0.1,1e30,0.5"
JOBS = ["lr=0.1", "lr=1e+30", "lr=0.5"]  # job dirs: the swept override, as Hydra writes it
SHORT = ["model=mlp", "hidden=8", "steps=30", "eval_every=10", "checkpoint_every=10",
         "threads=1"]  # fmt: skip


def sweep(tmp, *args):
    return train(["-m", *SHORT, *data_args(tmp), f"hydra.sweep.dir={tmp / 'sweep'}", *args])


@pytest.fixture(scope="module")
def failed_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("failing")
    return tmp, sweep(tmp, f"lr={LRS}")


@pytest.mark.slow  # whole sweeps in subprocesses
def test_one_failing_job_does_not_stop_the_sweep(failed_sweep):
    tmp, proc = failed_sweep
    # Hydra runs every job of the batch, then re-raises the first failure: exit status 1
    assert proc.returncode == 1, output(proc)
    assert "Error executing job with overrides" in proc.stderr
    jobs = tmp / "sweep"
    assert sorted(p.name for p in jobs.iterdir() if p.is_dir()) == sorted(JOBS)
    assert [metrics(jobs / job)["status"] for job in JOBS] == [
        "completed", "failed", "completed"
    ]  # fmt: skip
    reason = metrics(jobs / JOBS[1])["reason"]
    assert reason.startswith("NonFiniteLoss: batch/loss became nan at iteration 2; stopped")
    assert metrics(jobs / "lr=0.5")["metrics"]["steps"] == 30  # the job after the failure ran


@pytest.mark.slow  # whole sweeps in subprocesses
def test_summarize_shows_the_failed_job(failed_sweep):
    import subprocess
    import sys

    tmp, _ = failed_sweep
    proc = subprocess.run(
        [sys.executable, "scripts/summarize.py", str(tmp / "sweep")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| lr=1e+30 |"))
    assert "1e+30" in row and "| failed |" in row
    assert "- lr=1e+30: failed: NonFiniteLoss: batch/loss became nan at iteration 2" in proc.stdout


@pytest.mark.slow  # whole sweeps in subprocesses
def test_rerun_skips_completed_jobs_and_retries_the_failed_one(failed_sweep, tmp_path):
    shutil.copytree(failed_sweep[0] / "sweep", tmp_path / "sweep")
    jobs = tmp_path / "sweep"
    done = {i: snapshot(jobs / JOBS[i]) for i in (0, 2)}
    proc = sweep(tmp_path, f"lr={LRS}")
    assert proc.returncode == 1, output(proc)
    assert (proc.stdout + proc.stderr).count("already completed; skipped") == 2
    for i in (0, 2):  # not even metrics.json or the checkpoint was rewritten
        changed = {k for k, v in snapshot(jobs / JOBS[i]).items() if done[i].get(k) != v}
        assert changed <= {
            "train.log",
            ".hydra/config.yaml",
            ".hydra/hydra.yaml",
            ".hydra/overrides.yaml",
        }, changed  # fmt: skip  (Hydra's own)
    assert metrics(jobs / JOBS[1])["status"] == "failed"

    # skip_completed=false: every job runs again, from iteration 0, to the same numbers
    first = {i: metrics(jobs / JOBS[i])["metrics"] for i in (0, 2)}
    proc = sweep(tmp_path, f"lr={LRS}", "skip_completed=false")
    assert "already completed" not in proc.stdout + proc.stderr
    for i in (0, 2):
        record = metrics(jobs / JOBS[i])
        assert record["status"] == "completed" and record["metrics"] == first[i]
        assert snapshot(jobs / JOBS[i])["metrics.json"] != done[i]["metrics.json"]
        assert "resumed from" not in (jobs / JOBS[i] / "train.log").read_text()


@pytest.mark.slow  # whole sweeps in subprocesses
def test_rerun_resumes_the_interrupted_job(tmp_path):
    # job steps=40 is short, job steps=1500 long enough to be stopped in the middle
    args = ["-m", "model=mlp", "hidden=8", "eval_every=50", "checkpoint_every=20",
            "threads=1", "steps=40,1500", *data_args(tmp_path),
            f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # fmt: skip
    jobs, log = tmp_path / "sweep", tmp_path / "sweep.log"
    proc = start(args, log)
    wait_for(jobs / "steps=1500" / "checkpoint.pt", proc, log)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=600) == 128 + signal.SIGTERM, log.read_text()
    assert metrics(jobs / "steps=40")["status"] == "completed"
    assert metrics(jobs / "steps=1500")["status"] == "interrupted", log.read_text()
    first = snapshot(jobs / "steps=40")["metrics.json"]

    proc = train(args)
    assert proc.returncode == 0, output(proc)
    said = proc.stdout + proc.stderr
    assert "already completed; skipped" in said and "resumed from" in said
    assert snapshot(jobs / "steps=40")["metrics.json"] == first
    record = metrics(jobs / "steps=1500")
    assert record["status"] == "completed" and record["metrics"]["steps"] == 1500


@pytest.mark.slow  # two sweeps in subprocesses
def test_rerun_continues_a_failed_job_from_its_last_checkpoint(tmp_path):
    # job lr=0.5 fails at its first evaluation (iteration 20), after its checkpoint at 10:
    # its history.csv cannot be written while a folder stands in its place (put there while
    # the job is held after iteration 20, ucl.lifecycle.hold)
    args = ["-m", "model=mlp", "hidden=8", "steps=40", "eval_every=20", "checkpoint_every=10",
            "threads=1", "lr=0.1,0.5", *data_args(tmp_path),
            f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # fmt: skip
    job = tmp_path / "sweep" / "lr=0.5"
    hold = tmp_path / "hold"
    hold.mkdir()
    env = {"UCL_HOLD": '{"lr=0.5": "train"}', "UCL_HOLD_DIR": str(hold)}
    log = tmp_path / "first.log"
    first = start(args, log, env)
    wait_for(hold / "lr=0.5.train", first, log)
    (job / "history.csv").mkdir()
    (hold / "lr=0.5.train").unlink()  # let it go on
    first.wait(timeout=600)
    proc = subprocess.CompletedProcess(first.args, first.returncode, log.read_text(), "")
    assert proc.returncode == 1, output(proc)
    record = metrics(job)
    assert record["status"] == "failed" and "history.csv" in record["reason"], record
    assert read_checkpoint(job / "checkpoint.pt")["step"] == 10
    assert metrics(tmp_path / "sweep" / "lr=0.1")["status"] == "completed"

    (job / "history.csv").rmdir()  # the cause is gone: the same sweep again
    proc = train(args)
    assert proc.returncode == 0, output(proc)
    said = proc.stdout + proc.stderr
    assert "already completed; skipped" in said
    assert f"resumed from {job / 'checkpoint.pt'} at iteration 10" in said, said
    record = metrics(job)
    assert record["status"] == "completed" and record["metrics"]["steps"] == 40
    rows = (job / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["20", "40"]


def test_a_dir_holding_another_job_is_refused(tmp_path):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"lr": 0.1, "hidden": 8, "threads": 1})
    rundir.write_config_record(tmp_path, cfg)  # a run's own record: compared key by key
    same = OmegaConf.create({"lr": 0.1, "hidden": 8, "threads": 4, "progress": False})
    rundir.check_same_job(tmp_path, same, [], None)
    other = OmegaConf.create({"lr": 0.3, "hidden": 8, "threads": 1})
    with pytest.raises(
        ConfigError, match=r"holds a run of another experiment \(lr: 0.1 there, 0.3 now\)"
    ):
        rundir.check_same_job(tmp_path, other, [], None)


def test_a_run_from_before_the_first_release_is_refused_in_one_line(tmp_path):
    before = {"overrides": ["lr=0.1", "hidden=8", "threads=1"]}
    (tmp_path / ".hydra").mkdir()  # Hydra's copy, and no config.yaml of ucl's own
    with pytest.raises(ConfigError, match=r"holds a run from before ucl 0.1.0 \(.hydra/ and no "):
        rundir.check_same_job(tmp_path, None, ["lr=0.1", "hidden=8"], before)
    with pytest.raises(ConfigError, match="move it away to run there again"):
        rundir.resumed_config(None, tmp_path, [], before)


@pytest.mark.slow  # a 4-job sweep in a subprocess
def test_two_seeds_by_two_cells_then_summarize_plot(tmp_path):
    """A real multirun over seeds on the MNIST subset, grouped into cells by summarize.py."""
    import csv
    import os
    import subprocess
    import sys

    args = ["model=mlp", "hidden=8", "steps=20", "eval_every=10", "threads=1",
            "dataset.validation=300", "activation=relu,tanh", "seed=0,1"]  # fmt: skip
    proc = sweep(tmp_path, *args[1:])
    assert proc.returncode == 0, output(proc)
    jobs = tmp_path / "sweep"
    runs = [metrics(p.parent) for p in jobs.glob("*/metrics.json")]
    assert len(runs) == 4 and all("val/accuracy" in r["metrics"] for r in runs)
    proc = subprocess.run(
        [sys.executable, "scripts/summarize.py", str(jobs), "--plot"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "| activation | n | val/accuracy | test/accuracy |" in proc.stdout
    rows = {r["activation"]: r for r in csv.DictReader((jobs / "summary.csv").open())}
    assert set(rows) == {"relu", "tanh"} and {r["n"] for r in rows.values()} == {"2"}
    by_seed = {
        act: sorted(r["metrics"]["test/accuracy"] for r in runs if f"activation={act}" in
                    r["overrides"])
        for act in rows
    }  # fmt: skip
    for act, values in by_seed.items():
        assert float(rows[act]["test/accuracy mean"]) == pytest.approx(sum(values) / 2)
    assert {r["mark"] for r in rows.values()} & {"best"}
    assert (jobs / "test_accuracy_by_activation.png").stat().st_size > 10_000
    assert list((jobs / "summary").glob("events.out.tfevents.*"))
