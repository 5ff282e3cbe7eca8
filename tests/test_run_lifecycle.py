"""A run's lifecycle as a user meets it through train.py: the folders it will write into,
the lock and what its file says, and signals from the process's first moment (each phase
reached through ucl.lifecycle.hold, so the signal lands where the test says)."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest
from train_process import data_args, metrics, output, snapshot, start, train, wait_for


def _run(tmp_path, run_dir, *extra) -> list[str]:
    return ["model=logreg", "steps=10", "eval_every=10", *data_args(tmp_path),
            f"hydra.run.dir={run_dir}", *extra]  # fmt: skip


def test_a_folder_ucl_did_not_make_is_refused_and_untouched(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / ".env.tmpl").write_text("SECRET=1\n")
    (folder / "model.pt").write_bytes(b"the user's own weights")
    (folder / ".lock").write_text("held by another tool\n")
    (folder / "notes.txt").write_text("notes\n")
    before = snapshot(folder)
    proc = train(_run(tmp_path, folder))
    assert proc.returncode == 2, output(proc)
    line = proc.stderr.strip().splitlines()[-1]
    assert str(folder) in line and "ucl did not write" in line and "model.pt" in line, line
    assert "Traceback" not in proc.stderr
    assert snapshot(folder) == before


def test_a_projects_own_config_yaml_does_not_make_its_folder_a_run_dir(tmp_path):
    # a Hydra project of the user's: config.yaml at the top, one per experiment below
    project = tmp_path / "project"
    (project / "exp1").mkdir(parents=True)
    (project / "config.yaml").write_text("lr: 1\n")
    (project / "exp1" / "config.yaml").write_text("lr: 2\n")
    (project / "notes.txt").write_text("notes\n")
    before = snapshot(project)
    as_run = train(_run(tmp_path, project))
    resumed = train(["resume=" + str(project), "threads=1"])
    swept = train(["-m", *_run(tmp_path, tmp_path / "unused"), f"hydra.sweep.dir={project}",
                   "seed=0,1"])  # fmt: skip
    for proc, says in [
        (as_run, f"{project} holds files ucl did not write (config.yaml, exp1, notes.txt)"),
        (resumed, f"resume='{project}' is not a ucl run dir"),
        (swept, f"{project} holds files ucl did not write (config.yaml, exp1, notes.txt)"),
    ]:
        assert proc.returncode == 2 and says in proc.stderr, output(proc)
        assert len(proc.stderr.strip().splitlines()) == 1, output(proc)
    assert snapshot(project) == before


def test_a_sweep_into_a_run_dir_or_a_run_inside_one_is_refused(tmp_path):
    from ucl.rundir import CONFIG_HEADER

    done = tmp_path / "done"  # a run's dir, as far as these checks read it
    (done / "figures").mkdir(parents=True)
    (done / "config.yaml").write_text(CONFIG_HEADER + "task: classify\n")
    (done / "metrics.json").write_text(json.dumps({"status": "completed"}))
    (done / "extra").mkdir()
    # a run dir below it: what made a run's dir look like a sweep dir
    (done / "extra" / "metrics.json").write_text(json.dumps({"status": "failed"}))
    before = snapshot(done)
    swept = train(["-m", *_run(tmp_path, tmp_path / "unused"), f"hydra.sweep.dir={done}",
                   "seed=0,1"])  # fmt: skip
    inside = train(_run(tmp_path, done / "figures" / "run"))
    for proc, says in [
        (swept, f"hydra.sweep.dir={done}: {done} is a run's dir, not a sweep dir"),
        (inside, f"{done / 'figures' / 'run'} is inside the run dir {done}"),
    ]:
        assert proc.returncode == 2 and proc.stderr.startswith(f"train.py: {says}"), output(proc)
        assert len(proc.stderr.strip().splitlines()) == 1, output(proc)
    assert snapshot(done) == before and not (done / "figures" / "run").exists()


def test_hydra_writes_its_record_nowhere_but_in_the_run_dir(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.yaml").write_text("lr: 1\n")  # Hydra's record has this name
    before = snapshot(project)
    proc = train([*_run(tmp_path, project / "run"), "hydra.output_subdir=.."])
    says = "train.py: hydra.output_subdir=..: Hydra would write"
    assert proc.returncode == 2 and proc.stderr.startswith(says), output(proc)
    assert snapshot(project) == before and [p.name for p in project.iterdir()] == ["config.yaml"]


def test_a_full_disk_is_one_line_and_the_same_command_then_continues(tmp_path):
    # the data's largest file is 1.6 MB, the checkpoint of 1024 hidden units 3.2 MB
    args = _run(tmp_path, tmp_path / "run", "model=mlp", "hidden=1024", "checkpoint_every=5")
    full = train(args, file_size_limit=100_000)  # full while the data is imported
    data = tmp_path / "data"
    assert full.returncode == 1, output(full)
    said = full.stderr.strip().splitlines()
    assert len(said) == 1 and "File too large: " in said[0] and str(data) in said[0], output(full)
    assert not [p for p in data.rglob("*") if p.name.startswith(".")]  # no temp file left
    assert not (tmp_path / "run").exists()

    full = train(args, file_size_limit=2_500_000)  # full at the first checkpoint
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    said = full.stderr.strip().splitlines()
    assert full.returncode == 1 and len(said) == 1, output(full)
    assert said[0].startswith(f"train.py: run failed: File too large: {checkpoint}"), output(full)
    record = metrics(tmp_path / "run")
    assert record["status"] == "failed" and str(checkpoint) in record["reason"], record
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]
    again = train(args)
    assert again.returncode == 0, output(again)
    assert metrics(tmp_path / "run")["status"] == "completed"


def test_a_disk_full_before_the_lock_names_its_holder_leaves_no_lock_behind(tmp_path):
    from ucl import rundir

    run_dir = tmp_path / "run"
    full = train(_run(tmp_path, run_dir), file_size_limit=0)  # no byte can be written
    said = full.stderr.strip().splitlines()
    assert full.returncode == 1 and len(said) == 1, output(full)
    assert said[0].startswith(f"train.py: File too large: {run_dir / '.lock'}"), output(full)
    assert not run_dir.exists()
    # a kill between making the lock file and naming the holder in it leaves it empty
    run_dir.mkdir()
    (run_dir / ".lock").write_text("")
    rundir.check_ours(run_dir)  # ucl's own lock: the dir is not refused for it


def test_hydras_record_may_go_into_the_run_dir():
    from train import bad_override_message

    for inside in ["hydra.output_subdir=.hydra", "hydra.output_subdir=null"]:
        assert bad_override_message(["train.py", inside]) is None
    # a pipeline's stage: the job's dir is the stage dir, outside its sweep dir
    assert bad_override_message(["train.py", "-m", "hydra.sweep.subdir=/runs/logreg"]) is None


def test_an_empty_folder_given_as_the_run_dir_is_used_as_it_is(tmp_path):
    # not removed and made again between train.py's first checks and the run: its mode,
    # which a folder made again would not keep, shows it
    folder = tmp_path / "empty"
    folder.mkdir(mode=0o700)
    proc = train(_run(tmp_path, folder))
    assert proc.returncode == 0, output(proc)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert metrics(folder)["status"] == "completed"


def test_a_folder_given_as_dot_is_refused(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train_notes.md").write_text("x")
    proc = train(_run(tmp_path, folder / "."))
    assert proc.returncode == 2 and "train_notes.md" in proc.stderr, output(proc)
    assert sorted(p.name for p in folder.iterdir()) == ["train_notes.md"]


@pytest.mark.slow  # three runs of train.py
def test_clean_up_takes_only_ucls_temporary_names_and_never_follows_a_lock_link(tmp_path):
    run_dir = tmp_path / "run"
    log = tmp_path / "log"
    hold = tmp_path / "hold"
    hold.mkdir()
    env = {"UCL_HOLD": json.dumps({"run": "train"}), "UCL_HOLD_DIR": str(hold)}
    proc = start(_run(tmp_path, run_dir, "steps=60", "checkpoint_every=20"), log, env)
    wait_for(hold / "run.train", proc, log)
    proc.kill()  # a crash: metrics.json says running, the lock file stays
    proc.wait()
    assert metrics(run_dir)["status"] == "running"
    (run_dir / ".history.csv.tmp999").write_text("left by a killed writer")
    (run_dir / ".env.tmpl").write_text("the user's")
    (run_dir / ".notes.tmp").write_text("the user's")
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    os.replace(run_dir / ".lock", tmp_path / "old.lock")
    os.symlink(target, run_dir / ".lock")
    proc = train(_run(tmp_path, run_dir, "steps=60", "checkpoint_every=20"))
    assert proc.returncode == 2 and "not a plain file" in proc.stderr, output(proc)
    assert target.read_text() == "keep me"
    (run_dir / ".lock").unlink()
    proc = train(_run(tmp_path, run_dir, "steps=60", "checkpoint_every=20"))
    assert proc.returncode == 0, output(proc)
    names = {p.name for p in run_dir.iterdir()}
    assert ".history.csv.tmp999" not in names and {".env.tmpl", ".notes.tmp"} <= names
    assert metrics(run_dir)["status"] == "completed"


@pytest.mark.slow  # four runs of train.py
def test_a_lock_left_by_another_host_is_not_taken_over(tmp_path):
    """On a filesystem whose locks are node-local, a run on another node holds its flock
    where this node cannot see it: the lock file's holder must still stop a second writer."""
    run_dir = tmp_path / "run"
    log = tmp_path / "log"
    hold = tmp_path / "hold"
    hold.mkdir()
    env = {"UCL_HOLD": json.dumps({"run": "train"}), "UCL_HOLD_DIR": str(hold)}
    args = _run(tmp_path, run_dir, "steps=60", "checkpoint_every=20")
    proc = start(args, log, env)
    wait_for(hold / "run.train", proc, log)
    holder = (run_dir / ".lock").read_text()
    assert holder == f"{proc.pid} on {socket.gethostname()}"
    proc.kill()
    proc.wait()
    (run_dir / ".lock").write_text(f"{proc.pid} on node07")  # its flock is not seen here
    before = snapshot(run_dir)
    second = train(args)
    assert second.returncode == 2, output(second)
    line = second.stderr.strip().splitlines()[-1]
    assert "node07" in line and "remove" in line and str(run_dir / ".lock") in line, line
    assert snapshot(run_dir) == before
    (run_dir / ".lock").unlink()  # what the message says to do once that run is known gone
    assert train(args).returncode == 0
    assert metrics(run_dir)["status"] == "completed"


@pytest.mark.slow  # one run of train.py
def test_a_run_started_under_nohup_goes_on_when_the_terminal_hangs_up(tmp_path):
    run_dir, log, hold = tmp_path / "run", tmp_path / "log", tmp_path / "hold"
    hold.mkdir()
    env = {"UCL_HOLD": json.dumps({"run": "train"}), "UCL_HOLD_DIR": str(hold)}
    proc = start(_run(tmp_path, run_dir, "steps=40"), log, env, ignoring=(signal.SIGHUP,))
    wait_for(hold / "run.train", proc, log)
    proc.send_signal(signal.SIGHUP)  # the terminal closes
    time.sleep(0.2)
    (hold / "run.train").unlink()
    assert proc.wait(timeout=600) == 0, log.read_text()
    assert metrics(run_dir)["status"] == "completed"


@pytest.mark.parametrize(
    ("phase", "sig"),
    [("data", signal.SIGTERM), ("train", signal.SIGHUP), ("final", signal.SIGINT)],
)
def test_signals_from_the_first_moment_stop_the_sweep(tmp_path, phase, sig):
    """A signal at each phase of the first job of a sweep ends that job as interrupted (or,
    before its first record, with nothing written) and stops the sweep: the next job never
    starts. A signal during the final record waits for it: the job ends completed."""
    sweep = tmp_path / "sweep"
    hold = tmp_path / "hold"
    hold.mkdir()
    args = ["-m", "model=logreg", "steps=60", "eval_every=20", "lr=0.1,0.3",
            *data_args(tmp_path), f"hydra.sweep.dir={sweep}"]  # fmt: skip
    env = {"UCL_HOLD": json.dumps({"lr=0.1": phase}), "UCL_HOLD_DIR": str(hold)}
    log = tmp_path / "log"
    proc = start(args, log, env)
    wait_for(hold / f"lr=0.1.{phase}", proc, log)
    proc.send_signal(sig)
    assert proc.wait(timeout=600) == 128 + sig, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert not (sweep / "lr=0.3").exists()
    job = sweep / "lr=0.1"
    if phase == "data":
        assert not (job / "metrics.json").exists()
        assert "nothing" in text.splitlines()[-1]
    elif phase == "train":
        record = metrics(job)
        assert record["status"] == "interrupted" and "SIGHUP at iteration 20" in record["reason"]
    else:
        assert metrics(job)["status"] == "completed"


# A signal raises its exception wherever the process is, an import included: one cut short
# inside numpy's C extension leaves it half-made, and the error that follows (an ImportError
# or a RecursionError) is the signal's doing. This hook sends SIGTERM as numpy's first
# submodule import starts, inside torch's import in the run's checks.
SIGNAL_AT_IMPORT = """
import importlib.abc, os, signal, sys
class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "numpy.dtypes" and not os.path.exists(os.environ["UCL_TEST_SIGNALLED"]):
            open(os.environ["UCL_TEST_SIGNALLED"], "w").close()
            os.kill(os.getpid(), signal.SIGTERM)
sys.meta_path.insert(0, Hook())
"""


@pytest.mark.slow  # a run of train.py
def test_a_signal_that_cuts_an_import_short_stops_the_run_in_one_line(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SIGNAL_AT_IMPORT)
    run_dir, log = tmp_path / "run", tmp_path / "log"
    env = {"PYTHONPATH": f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "UCL_TEST_SIGNALLED": str(tmp_path / "signalled")}  # fmt: skip
    proc = start(_run(tmp_path, run_dir, "steps=20"), log, env)
    assert proc.wait(timeout=600) == 128 + signal.SIGTERM, log.read_text()
    assert (tmp_path / "signalled").exists()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert text.strip().splitlines()[-1] == "train.py: stopped by SIGTERM; nothing was recorded"
    assert not run_dir.exists()  # as for a signal anywhere before the run's first record


def test_an_error_after_a_signal_is_recorded_as_the_interruption(tmp_path):
    from types import SimpleNamespace

    from ucl import lifecycle

    record = lifecycle.Record(tmp_path, {"task": "classify"}, {}, SimpleNamespace(reason=""))
    record.running()

    def task():  # a handler saw SIGTERM while an import ran; the import then failed
        lifecycle._stop(signal.SIGTERM)
        raise RecursionError("maximum recursion depth exceeded")

    closed = []
    try:
        with pytest.raises(SystemExit) as ended:
            lifecycle.run_task(task, record, print, lambda: closed.append(True), print)
    finally:
        lifecycle.reset()
    assert ended.value.code == 128 + signal.SIGTERM and closed == [True]
    written = metrics(tmp_path)
    assert written["status"] == "interrupted", written
    assert written["reason"] == "SIGTERM, then RecursionError: maximum recursion depth exceeded"
