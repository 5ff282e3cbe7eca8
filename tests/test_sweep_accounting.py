"""summarize.py accounts for every job of a sweep's own job list (multirun.yaml), never
averages runs on different data into one cell, and says a malformed file in one line."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import yaml
from train_process import REPO

LRS, SEEDS = ("0.1", "0.2", "0.3"), ("0", "1")


def summarize(sweep_dir, *extra):
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "summarize.py"), str(sweep_dir), *extra],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip


def summarize_here(sweep_dir, capsys):
    """The same script in this process (cheaper): (exit status, stdout + stderr)."""
    spec = importlib.util.spec_from_file_location("summarize", REPO / "scripts/summarize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main([str(sweep_dir)])
    out = capsys.readouterr()
    return code, out.out + out.err


def job(sweep, name, status, accuracy=None, reason=None, digest="d1"):
    folder = sweep / name
    folder.mkdir(parents=True)
    key_values = dict(item.split("=") for item in name.split(","))
    record = {
        "status": status,
        "task": "classify",
        "overrides": [f"{k}={v}" for k, v in key_values.items()],
        "metrics": {} if accuracy is None else {"test/accuracy": accuracy},
        "seconds": {"train": 1.0},
        "data": {"name": "mnist", "fingerprint": {"digest": digest, "files": {}}},
    }
    if reason:
        record["reason"] = reason
    (folder / "metrics.json").write_text(json.dumps(record))
    config = {"lr": float(key_values["lr"]), "seed": int(key_values["seed"]), "model": "mlp"}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def sweep_dir(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    task = [f"lr={','.join(LRS)}", f"seed={','.join(SEEDS)}", "model=mlp"]
    (sweep / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"overrides": {"task": task}, "sweeper": {"params": None}}})
    )
    return sweep


def test_every_planned_job_is_accounted_for(tmp_path):
    sweep = sweep_dir(tmp_path)
    job(sweep, "lr=0.1,seed=0", "completed", 0.9)
    job(sweep, "lr=0.1,seed=1", "completed", 0.91)
    job(sweep, "lr=0.2,seed=0", "failed", reason="NonFiniteLoss: loss became nan")
    job(sweep, "lr=0.2,seed=1", "interrupted", reason="SIGTERM")
    job(sweep, "lr=0.3,seed=0", "running")
    (sweep / "lr=0.3,seed=1").mkdir()  # Hydra made it; the job wrote nothing
    proc = summarize(sweep)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    assert "covers 2 of the 6 planned jobs" in text, text
    assert "lr=0.2,seed=0: failed: NonFiniteLoss: loss became nan" in text
    assert "lr=0.2,seed=1: interrupted: SIGTERM" in text
    assert "lr=0.3,seed=0: killed while running" in text  # no live process holds it
    assert "lr=0.3,seed=1: never started, or refused before it started" in text


def test_runs_on_different_data_are_never_one_cell(tmp_path, capsys):
    sweep = sweep_dir(tmp_path)
    for lr in LRS:
        job(sweep, f"lr={lr},seed=0", "completed", 0.9)
        job(sweep, f"lr={lr},seed=1", "completed", 0.5, digest="d2" if lr == "0.1" else "d1")
    code, text = summarize_here(sweep, capsys)
    assert code == 0, text
    rows = [r for r in text.splitlines() if r.startswith("| 0.1 ")]
    assert len(rows) == 2, text  # one cell per data, each of one seed
    assert "different data" in text


def test_a_job_dir_from_before_the_first_release_is_one_line_not_a_row(tmp_path, capsys):
    sweep = sweep_dir(tmp_path)
    folders = [job(sweep, f"lr=0.1,seed={s}", "completed", 0.9) for s in SEEDS]
    for folder in folders[:2]:  # Hydra's .hydra/ and no config.yaml: written before 0.1.0
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "overrides.yaml").write_text("- lr=0.1\n")
        (folder / "config.yaml").unlink(missing_ok=True)
    code, text = summarize_here(sweep, capsys)
    assert code == 0 and "Traceback" not in text, text
    for folder in folders[:2]:
        assert f"{folder.name}: unreadable: {folder} holds a run from before ucl 0.1.0" in text


def test_a_running_job_whose_lock_names_a_live_process_is_running(tmp_path):
    import os
    import socket

    from ucl import summary

    sweep = sweep_dir(tmp_path)
    folder = job(sweep, "lr=0.1,seed=0", "running")
    (folder / ".lock").write_text(f"{os.getpid()} on {socket.gethostname()}\n")
    lines, covered = summary.accounting(sweep, summary.find_jobs(sweep))
    assert f"lr=0.1,seed=0: running (PID {os.getpid()} on {socket.gethostname()})" in lines
    assert covered == "The table covers 0 of the 6 planned jobs (multirun.yaml)."


def test_a_job_refused_before_it_started_says_why(tmp_path):
    from ucl import summary

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    task = ["model=mlp", "model.dropout=0.2,1.5,0.3", "seed=0,1,2"]
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": task}}}))
    names = list(summary.planned_overrides(sweep))
    assert names[0] == "model.dropout=0.2,seed=0" and len(names) == 9
    from ucl.config import refusal

    lines, covered = summary.accounting(sweep, [], refusal)
    said = dict(line.split(": ", 1) for line in lines)
    assert said["model.dropout=1.5,seed=0"].startswith(
        "refused before it started: model.dropout=1.5 must be in [0, 1)"
    )
    assert said["model.dropout=0.2,seed=0"].startswith("never started, or refused")
    assert covered == "The table covers 0 of the 9 planned jobs (multirun.yaml)."
