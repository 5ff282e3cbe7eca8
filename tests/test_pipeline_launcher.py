"""A pipeline under a launcher (`hydra/launcher=submitit_slurm` after the pipeline), without
a cluster: a single-run stage runs as a multirun of one job whose dir is the stage dir, the
login node's threads are not imposed, a run recorded by a multirun is the stage's run, and
a job that ended without a record fails its stage with train.py's one line.
tests/test_slurm_pipeline.py runs the smoke pipeline on the cluster itself."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from ucl.keys import launcher
from ucl.pipeline import runner as runner_module
from ucl.pipeline.launch import train_command
from ucl.pipeline.runner import Runner
from ucl.pipeline.stages import Stage, plan
from ucl.pipeline.state import stage_state

STAGES = (
    Stage("one", ("model=logreg", "lr=1e9"), minutes=1.0),
    Stage("table", ("model=mlp", "hidden=8,16"), minutes=1.0, sweep=True),
    Stage("after", ("model=autoencoder", "classifier={one}"), minutes=1.0),
)
SLURM = ("hydra/launcher=submitit_slurm", "hydra.launcher.partition=cpu")


def test_a_single_run_goes_through_the_launcher_into_its_stage_dir(tmp_path):
    planned = plan(tmp_path, stages=STAGES, threads=1, extra=SLURM)
    one, table = planned["one"], planned["table"]
    assert train_command(one)[2:] == [
        "-m", *one.args, f"hydra.sweep.dir={tmp_path / '.cluster' / 'one'}",
        f"hydra.sweep.subdir={tmp_path / 'one'}",
    ]  # fmt: skip
    assert train_command(table)[2:] == ["-m", *table.args, f"hydra.sweep.dir={tmp_path / 'table'}"]
    assert not [a for a in one.args if a.startswith("threads=")]  # cpus_per_task decides
    for extra in ((), ("hydra/launcher=basic",)):  # Hydra's own launcher: a run here, as before
        here = plan(tmp_path, stages=STAGES, threads=1, extra=extra)["one"]
        assert here.args[0] == "threads=1"
        assert train_command(here)[2:] == [*here.args, f"hydra.run.dir={tmp_path / 'one'}"]
    assert launcher(["x=1", "hydra/launcher=submitit_slurm", "+hydra/launcher=joblib"]) == "joblib"
    with pytest.raises(ValueError, match="returns before its jobs end.*=submitit_slurm, which"):
        plan(tmp_path, stages=STAGES, extra=["hydra/launcher=submitit_slurm_detached"])


def test_a_run_recorded_by_a_multirun_is_the_stage_s_run(tmp_path):
    """Hydra's sweeper records each value as it prints it (lr=1e9 as lr=1000000000.0); the
    stage is complete whether a launcher or this machine ran it, and its plan says either."""
    run = tmp_path / "one"
    run.mkdir()
    record = {"status": "completed", "overrides": ["model=logreg", "lr=1000000000.0"]}
    (run / "metrics.json").write_text(json.dumps(record))
    assert stage_state(plan(tmp_path, stages=STAGES[:1], extra=SLURM)["one"]).done
    assert stage_state(plan(tmp_path, stages=STAGES[:1])["one"]).done
    record["overrides"] = ["model=logreg", "lr=1e9"]  # as a run here records it
    (run / "metrics.json").write_text(json.dumps(record))
    assert stage_state(plan(tmp_path, stages=STAGES[:1], extra=SLURM)["one"]).done


# train.py under our SLURM launcher when the job was cancelled before it wrote a record
CANCELLED = (
    "train.py: run failed: SLURM job 71 (model=logreg lr=1e9) ended CANCELLED by 0 without a "
    "result (JOB 71 ON vm CANCELLED AT 2026-01-01T00:00:00); its log: /x/71_0_log.err"
)


def test_a_cancelled_job_fails_its_stage_with_the_launcher_s_line(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module, "POLL_SECONDS", 0.05)

    def launch(planned, log):
        said = CANCELLED if planned.name == "one" else ""
        return subprocess.Popen([sys.executable, "-c", f"import sys; print({said!r}); sys.exit(1)"],
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip

    stages = plan(tmp_path, stages=(STAGES[0], STAGES[2]), extra=SLURM)
    assert not Runner(stages, jobs=2, launch=launch, out=io.StringIO()).run()
    outcome = json.loads((tmp_path / "stages.json").read_text())["stages"]
    assert outcome["one"]["status"] == "failed"
    assert outcome["one"]["reason"] == CANCELLED.removeprefix("train.py: run failed: ")
    assert outcome["after"] == {**outcome["after"], "status": "blocked",
                                "reason": "needs one, which failed"}  # fmt: skip


@pytest.mark.slow
def test_list_shows_the_command_each_stage_runs(tmp_path, capsys):
    from ucl.pipeline.command import main

    code = main(["pipeline=problem_set_smoke", "--root", str(tmp_path), "--list", *SLURM],
                prog="pipeline.py", doc="pipeline")  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    logreg = next(line for line in out.splitlines() if "experiment=logreg" in line)
    assert logreg.startswith("    python train.py -m experiment=logreg ")
    assert logreg.endswith(
        f"hydra/launcher=submitit_slurm hydra.launcher.partition=cpu hydra.sweep.dir="
        f"{tmp_path / '.cluster' / 'logreg'} hydra.sweep.subdir={tmp_path / 'logreg'}"
    )
