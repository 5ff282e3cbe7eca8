"""experiment=mlp_search: Hydra's Optuna sweeper runs trials on the committed MNIST subset,
each returning its validation accuracy; the study is stored in the sweep dir, so a re-run
continues it; summarize.py ranks the trials and draws the history."""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml
from train_process import REPO, data_args, output, train

optuna = pytest.importorskip("optuna", reason="pip install -e '.[search]'")
pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")

TINY = ["-m", "experiment=mlp_search", "steps=5", "eval_every=5", "threads=1",
        "dataset.validation=300"]  # fmt: skip


def search(tmp, trials: int):
    sweep = tmp / "search"
    proc = train([*TINY, f"hydra.sweeper.n_trials={trials}", *data_args(tmp),
                  f"hydra.sweep.dir={sweep}"])  # fmt: skip
    assert proc.returncode == 0, output(proc)
    return sweep


def trials(sweep):
    study = optuna.load_study(study_name="mlp_search", storage=f"sqlite:///{sweep / 'study.db'}")
    return study.trials


def job_dirs(sweep):
    return sorted(p.parent for p in sweep.glob("*/metrics.json"))


@pytest.mark.slow  # two searches in subprocesses (~1-2 minutes on a busy 2-core machine)
def test_search_completes_resumes_and_is_summarised(tmp_path):
    sweep = search(tmp_path, 2)
    done = trials(sweep)
    assert [t.state.name for t in done] == ["COMPLETE"] * 2
    records = {d.name: json.loads((d / "metrics.json").read_text()) for d in job_dirs(sweep)}
    assert len(records) == 2 and all(r["status"] == "completed" for r in records.values())
    # the study saw each trial's validation accuracy, never its test accuracy
    assert sorted(t.value for t in done) == sorted(
        r["metrics"]["val/accuracy"] for r in records.values()
    )
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(t.value for t in done)

    # a re-run into the same dir continues the study: the old trials stay, one more is added
    search(tmp_path, 1)
    assert len(trials(sweep)) == 3 and len(job_dirs(sweep)) == 3
    assert [t.params for t in trials(sweep)[:2]] == [t.params for t in done]

    spec = importlib.util.spec_from_file_location("summarize", REPO / "scripts/summarize.py")
    summarize = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summarize)
    assert summarize.main([str(sweep), "--plot"]) == 0
    text = (sweep / "summary.md").read_text()
    assert "Search: 3 trials, 3 completed; ranked by val/accuracy:" in text
    top = max(trials(sweep), key=lambda t: t.value)
    assert "| 1 | " in text and f"{top.value:.4f}" in text.split("| 1 | ")[1].splitlines()[0]
    assert (sweep / "optimization_history.png").stat().st_size > 10_000


@pytest.mark.slow  # three trials in a subprocess
def test_a_diverging_trial_is_recorded_failed_and_the_search_goes_on(tmp_path):
    sweep = tmp_path / "search"
    # the learning rate drawn from {0.1, 1e30}: a trial that draws 1e30 turns NaN at iteration 2
    proc = train([*TINY, "hidden=16", "lr=choice(0.1,1e30)", "hydra.sweeper.n_trials=3",
                  *data_args(tmp_path), f"hydra.sweep.dir={sweep}"])  # fmt: skip
    assert proc.returncode == 0, output(proc)  # the search itself does not fail
    states = [t.state.name for t in trials(sweep)]
    assert len(states) == 3 and "FAIL" in states, states
    assert "COMPLETE" in states[states.index("FAIL") + 1 :], states  # a trial after it ran
    for t in trials(sweep):
        assert (t.state.name == "FAIL") == (t.params["lr"] == 1e30), (t.state.name, t.params)
    records = [json.loads((d / "metrics.json").read_text()) for d in job_dirs(sweep)]
    failed = [r for r in records if r["status"] == "failed"]
    assert len(failed) == states.count("FAIL") and len(records) == 3
    for r in failed:
        assert "lr=1e+30" in r["overrides"]
        assert r["reason"].startswith("NonFiniteLoss: batch/loss became nan at iteration 2")
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_params"]["lr"] == 0.1


def test_objective_names_a_missing_metric(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from ucl.errors import ConfigError
    from ucl.run import objective

    metrics = {"test/accuracy": 0.9}  # a run that held out no validation split
    assert objective(OmegaConf.create({"objective": "test/accuracy"}), metrics) == 0.9
    cfg = OmegaConf.create({"objective": "val/accuracy", "resume": None})
    with pytest.raises(ConfigError, match=r"objective='val/accuracy'.*dataset.validation=N"):
        objective(cfg, metrics)
