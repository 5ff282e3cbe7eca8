"""When a stage counts as done: exactly the jobs its sweep defines now, each completed with
the identity it has now. Job dirs are made by hand (no training); scripts/reproduce.py runs
in-process with a stand-in for train.py that does nothing."""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys

import pytest

from ucl.config import REPO, compose
from ucl.reproduce import runner as runner_module
from ucl.reproduce.runner import Runner
from ucl.rundir import identity_hash


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch):
    monkeypatch.setattr(runner_module, "POLL_SECONDS", 0.05)


def reproduce(monkeypatch, capsys, *argv: str) -> tuple[str, list[str]]:
    """`python scripts/reproduce.py --no-report --jobs 1 ARGV` (with `--report` in ARGV: the
    report too): what it printed, and the stages it started (a stand-in that exits at once:
    a started stage ends failed)."""
    spec = importlib.util.spec_from_file_location(
        "reproduce_script", REPO / "scripts" / "reproduce.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    started: list[str] = []

    def launch(planned, log):
        started.append(planned.name)
        return subprocess.Popen([sys.executable, "-c", "pass"], stdout=log)

    monkeypatch.setattr(script, "Runner", functools.partial(Runner, launch=launch))
    report = [] if "--report" in argv else ["--no-report"]
    script.main([*report, "--jobs", "1", *(a for a in argv if a != "--report")])
    return capsys.readouterr().out, started


def job(dir_, overrides, identity=None, status="completed"):
    dir_.mkdir(parents=True)
    record = {"status": status, "overrides": overrides, "metrics": {}, "seconds": {"total": 1}}
    if identity is not None:
        record["identity"] = identity
    (dir_ / "metrics.json").write_text(json.dumps(record))


def test_jobs_of_other_sweep_values_do_not_complete_a_stage(tmp_path, monkeypatch, capsys):
    stage = tmp_path / "lr_sweep"
    for lr in range(7, 13):
        for seed in range(3):
            job(stage / f"lr={lr},seed={seed}", ["experiment=lr_sweep", f"seed={seed}", f"lr={lr}"])
    (stage / "multirun.yaml").write_text("hydra: {}\n")  # that sweep's job list

    out, started = reproduce(monkeypatch, capsys, "--root", str(tmp_path), "--only", "lr_sweep")

    assert "lr_sweep: already completed" not in out, out
    assert started == ["lr_sweep"]
    assert "lr=7,seed=0" in out and "lr=12,seed=2" in out, out  # the extra jobs, by name
    assert "lr=0.01,seed=0" in out, out  # a missing one, by name
    assert not any(stage.glob("lr=7*")), "extra jobs stay where the report tables them"
    aside = [d for d in tmp_path.iterdir() if d.name.startswith("lr_sweep.replaced-")]
    assert len(aside) == 1 and (aside[0] / "lr=7,seed=0" / "metrics.json").is_file()
    # the old job list goes with them: summarize.py would count the moved jobs as missing
    assert (aside[0] / "multirun.yaml").is_file() and not (stage / "multirun.yaml").exists()


def smoke_jobs(tmp_path) -> dict[str, list[str]]:
    """The smoke lr_sweep's two jobs, by dir name, with their overrides as Hydra gives them."""
    from ucl.reproduce.stages import plan

    args = list(plan(tmp_path, smoke=True, env={})["lr_sweep"].args)
    return {
        f"lr={lr}": [f"lr={lr}" if a.startswith("lr=") else a for a in args]
        for lr in ("0.1", "0.5")
    }


def test_the_expected_jobs_with_their_identity_complete_a_stage(tmp_path, monkeypatch, capsys):
    for name, overrides in smoke_jobs(tmp_path).items():
        job(tmp_path / "lr_sweep" / name, overrides, identity_hash(compose(overrides)))

    out, started = reproduce(
        monkeypatch, capsys, "--smoke", "--root", str(tmp_path), "--only", "lr_sweep"
    )

    assert "lr_sweep: already completed (2/2 runs completed" in out, out
    assert started == []


def test_a_stale_job_is_set_aside_and_run_again(tmp_path, monkeypatch, capsys):
    (fresh, fresh_overrides), (stale, stale_overrides) = smoke_jobs(tmp_path).items()
    job(tmp_path / "lr_sweep" / fresh, fresh_overrides, identity_hash(compose(fresh_overrides)))
    job(tmp_path / "lr_sweep" / stale, stale_overrides, "0123456789abcdef")  # another config

    out, started = reproduce(
        monkeypatch, capsys, "--smoke", "--root", str(tmp_path), "--only", "lr_sweep"
    )

    assert "lr_sweep: already completed" not in out, out
    assert started == ["lr_sweep"]
    assert f"{stale}" in out and "stale" in out, out
    assert (tmp_path / "lr_sweep" / fresh / "metrics.json").is_file()  # kept: it is current
    assert not (tmp_path / "lr_sweep" / stale).exists()
    aside = [d for d in tmp_path.iterdir() if d.name.startswith("lr_sweep.replaced-")]
    assert len(aside) == 1 and (aside[0] / stale / "metrics.json").is_file()


def test_the_report_tables_no_extra_job_of_a_stage_not_run(tmp_path, monkeypatch, capsys):
    """--only one stage, then the report over every stage: another sweep's extra job is
    set aside before the report reads the stage dirs."""
    jobs = smoke_jobs(tmp_path)
    for name, overrides in jobs.items():
        job(tmp_path / "lr_sweep" / name, overrides, identity_hash(compose(overrides)))
    other = tmp_path / "width_sweep" / "hidden=3"
    job(other, ["experiment=width_sweep", "hidden=3"])

    out, started = reproduce(
        monkeypatch, capsys, "--smoke", "--root", str(tmp_path), "--only", "lr_sweep",
        "--report", "--no-pdf", "--report-dir", str(tmp_path / "report"),
    )  # fmt: skip

    assert started == [] and "lr_sweep: already completed" in out, out
    assert "width_sweep: 1 job(s) its sweep no longer defines: hidden=3" in out, out
    assert not other.exists()
    report = (tmp_path / "report" / "report.md").read_text()
    assert "hidden=3" not in report and "| 3 |" not in report
