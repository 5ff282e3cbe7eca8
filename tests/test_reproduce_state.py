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
from hydra.errors import HydraException

from ucl import outdir
from ucl.config import REPO, compose
from ucl.pipeline import command
from ucl.pipeline import runner as runner_module
from ucl.pipeline.runner import Runner
from ucl.rundir import identity_hash


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch):
    monkeypatch.setattr(runner_module, "POLL_SECONDS", 0.05)


@pytest.fixture(autouse=True)
def pipeline_root(tmp_path):
    """tmp_path, the tests' --root, as a pipeline leaves it: the pipeline's own (its marker),
    so that the job dirs the tests make in it by hand are the pipeline's to count."""
    outdir.claim(tmp_path, "the pipeline", "--root")


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

    monkeypatch.setattr(command, "Runner", functools.partial(Runner, launch=launch))
    report = [] if "--report" in argv else ["--no-report"]
    script.run([*report, "--jobs", "1", *(a for a in argv if a != "--report")])
    return capsys.readouterr().out, started


def job(dir_, overrides, identity=None, status="completed"):
    dir_.mkdir(parents=True)
    record = {"status": status, "overrides": overrides, "metrics": {}, "seconds": {"total": 1}}
    if identity is not None:
        record["identity"] = identity
    (dir_ / "metrics.json").write_text(json.dumps(record))


def test_jobs_of_other_sweep_values_do_not_complete_a_stage(tmp_path, monkeypatch, capsys):
    stage = tmp_path / "divergence_simple"
    for var in range(20, 38):  # 18 completed jobs, none of the values the stage sweeps
        job(stage / f"normal_var={var}", ["experiment=divergence_simple", f"normal_var={var}"])
    (stage / "multirun.yaml").write_text("hydra: {}\n")  # that sweep's job list

    out, started = reproduce(
        monkeypatch, capsys, "--root", str(tmp_path), "--only", "divergence_simple"
    )

    assert "divergence_simple: already completed" not in out, out
    assert started == ["divergence_simple"]
    assert "normal_var=20" in out and "normal_var=37" in out, out  # the extra jobs, by name
    assert "normal_var=1," in out or "normal_var=1\n" in out or "normal_var=1 " in out, out
    assert not any(stage.glob("normal_var=2?")), "extra jobs stay where the report tables them"
    aside = [d for d in tmp_path.iterdir() if d.name.startswith("divergence_simple.replaced-")]
    assert len(aside) == 1 and (aside[0] / "normal_var=20" / "metrics.json").is_file()
    # the old job list goes with them: summarize.py would count the moved jobs as missing
    assert (aside[0] / "multirun.yaml").is_file() and not (stage / "multirun.yaml").exists()


def smoke_jobs(tmp_path) -> dict[str, list[str]]:
    """The smoke divergence_simple's two jobs, by dir name, with their overrides as Hydra
    gives them (a sweep stage that needs no other)."""
    from ucl.pipeline.stages import plan

    args = list(plan(tmp_path, smoke=True, env={})["divergence_simple"].args)
    return {
        f"normal_var={v}": [f"normal_var={v}" if a.startswith("normal_var=") else a for a in args]
        for v in ("1", "16")
    }


def test_the_expected_jobs_with_their_identity_complete_a_stage(tmp_path, monkeypatch, capsys):
    for name, overrides in smoke_jobs(tmp_path).items():
        job(tmp_path / "divergence_simple" / name, overrides, identity_hash(compose(overrides)))

    out, started = reproduce(
        monkeypatch, capsys, "--smoke", "--root", str(tmp_path), "--only", "divergence_simple"
    )

    assert "divergence_simple: already completed (2/2 runs completed" in out, out
    assert started == []


def test_a_stale_job_is_set_aside_and_run_again(tmp_path, monkeypatch, capsys):
    (fresh, fresh_overrides), (stale, stale_overrides) = smoke_jobs(tmp_path).items()
    where = tmp_path / "divergence_simple"
    job(where / fresh, fresh_overrides, identity_hash(compose(fresh_overrides)))
    job(where / stale, stale_overrides, "0123456789abcdef")  # another config

    out, started = reproduce(
        monkeypatch, capsys, "--smoke", "--root", str(tmp_path), "--only", "divergence_simple"
    )

    assert "divergence_simple: already completed" not in out, out
    assert started == ["divergence_simple"]
    assert f"{stale}" in out and "stale" in out, out
    assert (where / fresh / "metrics.json").is_file()  # kept: it is current
    assert not (where / stale).exists()
    aside = [d for d in tmp_path.iterdir() if d.name.startswith("divergence_simple.replaced-")]
    assert len(aside) == 1 and (aside[0] / stale / "metrics.json").is_file()


def test_the_report_tables_no_extra_job_of_a_stage_not_run(tmp_path, monkeypatch, capsys):
    """--only one stage, then the report over every stage: another sweep's extra job is
    set aside before the report reads the stage dirs."""
    jobs = smoke_jobs(tmp_path)
    for name, overrides in jobs.items():
        job(tmp_path / "divergence_simple" / name, overrides, identity_hash(compose(overrides)))
    other = tmp_path / "width_sweep" / "hidden=3"
    job(other, ["experiment=width_sweep", "hidden=3"])

    out, started = reproduce(
        monkeypatch, capsys, "--smoke", "--root", str(tmp_path), "--only", "divergence_simple",
        "--report", "--no-pdf", "--report-dir", str(tmp_path / "report"),
    )  # fmt: skip

    assert started == [] and "divergence_simple: already completed" in out, out
    assert "width_sweep: 1 job(s) its sweep no longer defines: hidden=3" in out, out
    assert not other.exists()
    report = (tmp_path / "report" / "report.md").read_text()
    assert "hidden=3" not in report and "| 3 |" not in report


JOBS = [  # as jobs' records list their overrides
    ["threads=1", "experiment=activation_sweep", "seed=0", "activation=elu"],
    ["threads=1", "experiment=lr_sweep", "seed=2", "lr=1", "activation=relu"],  # int -> float
    ["optimizer=momentum", "lr=0.001", "experiment=optimizer_sweep", "seed=1", "activation=relu",
     "+consumed.activation=runs/reproduce/activation_sweep@d15198bac30be6b9"],
    ["experiment=autoencoder_mnist", "model.widths=[64,32]", "model.latent_dim=3"],  # then 2
    ["experiment=divergence_simple", "normal_var=16", "divergence.n=200"],
    ["model=mlp", "dataset.validation=null", "hidden=16", "lr=0.5", "lr=0.25"],  # twice: last
    ["model=mlp", "dataset=fashion_mnist", "dataset.root=/tmp/fm"],
    ["model=mlp", "~dataset.validation_seed"],
    ["model=mlp", "hidden=abc"],  # refused both ways
    ["model=mlp", "hiden=3"],
    [],
]  # fmt: skip


def test_a_jobs_config_is_composed_as_hydra_composes_it():
    from omegaconf import OmegaConf

    from ucl.pipeline import state

    state._COMPOSED.clear()
    state._BASES.clear()
    for overrides in [*JOBS, ["experiment=autoencoder_mnist", "model.latent_dim=2"]]:
        try:
            expected = OmegaConf.to_container(compose(overrides), resolve=True)
        except (HydraException, ValueError):
            expected = None
        assert state._composed(tuple(overrides)) == expected, overrides
    assert ("experiment=activation_sweep", "activation=elu") in state._BASES  # seed set after


def test_stale_jobs_with_one_reason_are_described_once():
    from ucl.pipeline.state import StageState

    why = "other overrides (consumed.activation: 'a' there, 'b' now)"
    state = StageState(
        expected=21,
        stale=[
            f"hidden={h},seed={s}: {why}"
            for h in (16, 32, 64, 128, 256, 512, 1024)
            for s in range(3)
        ],
    )
    state.stale.append("hidden=8,seed=0: its resolved config changed (lr: 0.1 there, 0.2 now)")
    said = state.describe_aside()
    assert said.count(why) == 1 and len(said) < 400, said
    assert said.startswith(
        f"22 stale job(s): hidden=16,seed=0, hidden=16,seed=1, "
        f"hidden=16,seed=2 ... hidden=1024,seed=2: {why}; hidden=8,seed=0: its "
    ), said
    assert state.aside[-1] == "hidden=8,seed=0" and len(state.aside) == 22
