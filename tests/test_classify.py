"""Classification end to end on the committed MNIST subset: run dir contents, TensorBoard,
determinism, multirun + summarize, the DataLoader path; full-MNIST figures when present."""

from __future__ import annotations

import csv
import json
import subprocess
from importlib import metadata

import pytest
import torch
from conftest import FIXTURE_MNIST, REPO, compose, full_mnist_dir, train

from ucl.config import run_config
from ucl.earlier_runs import load_model
from ucl.schema import load_all

SHORT = ["model=mlp", "hidden=32", "lr=0.5", "epochs=3", "eval_every=10", "batch_size=64"]


def read_tags(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("classify")
    run_dir = tmp / "run"
    args = [*SHORT, f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp / 'data'}"]
    proc = train([*args, f"hydra.run.dir={run_dir}"])
    return run_dir, proc


@pytest.mark.slow  # trains on the fixture
def test_run_dir_holds_the_contract(short_run):
    run_dir, _ = short_run
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["task"] == "classify"
    assert record["choices"]["model"] == "mlp" and record["choices"]["optimizer"] == "sgd"
    assert "hidden=32" in record["overrides"]
    m = record["metrics"]
    assert m["test/accuracy"] > 0.75  # 3 epochs on 2000 digits (chance: 0.1)
    assert abs(m["test/accuracy"] + m["test/error"] - 1) < 1e-9
    assert m["steps"] == 3 * 32  # ceil(2000 / 64) batches per epoch
    assert record["seconds"]["train"] > 0 and record["env"]["torch"] == torch.__version__[:6]
    data = record["data"]
    assert {k: data[k] for k in ("name", "synthetic", "train", "test")} == {
        "name": "mnist", "synthetic": False, "train": 2000, "test": 500}  # fmt: skip
    assert set(data["fingerprint"]["files"]) == {
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte"}  # fmt: skip
    counts = record["confusion_matrix"]
    assert sum(map(sum, counts)) == 500
    assert sum(counts[i][i] for i in range(10)) == round(m["test/accuracy"] * 500)
    pairs = record["most_confused"]
    assert pairs and pairs[0]["count"] == max(
        counts[i][j] for i in range(10) for j in range(10) if i != j
    )
    for name in ("error_curves", "loss_curves", "confusion_matrix"):
        assert (run_dir / "figures" / f"{name}.png").stat().st_size > 1000


@pytest.mark.slow  # trains on the fixture
def test_history_has_a_row_per_evaluation(short_run):
    run_dir, _ = short_run
    rows = list(csv.DictReader(open(run_dir / "history.csv")))
    steps = [int(r["step"]) for r in rows]
    # every 10 iterations and the last one (a regular x-axis: not the epoch ends 32, 64)
    assert steps == [*range(10, 97, 10), 96]
    assert {"train/loss", "train/error", "test/loss", "test/error", "test/accuracy"} <= set(rows[0])
    assert float(rows[-1]["test/error"]) < float(rows[0]["test/error"])


@pytest.mark.slow  # trains on the fixture
def test_tensorboard_has_curves_images_and_hparams(short_run):
    run_dir, _ = short_run
    acc = read_tags(run_dir)
    scalars = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/error", "test/loss", "test/error", "test/accuracy"} <= scalars
    assert [e.step for e in acc.Scalars("test/error")][:3] == [10, 20, 30]
    assert {"error_curves", "confusion_matrix"} <= set(acc.Tags()["images"])
    plugins = acc.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in plugins and "_hparams_/session_start_info" in plugins


@pytest.mark.slow  # trains on the fixture
def test_saved_model_loads_safely_and_scores_the_same(short_run, tmp_path):
    run_dir, _ = short_run
    state = torch.load(run_dir / "model.pt", weights_only=True)
    assert set(state["state_dict"]) == {"W1", "b1", "W2", "b2"}
    model, saved = load_model(run_dir)
    from ucl.keys import DATASETS

    load_all()  # the dataset builders register on import (run alone, nothing has imported them)
    cfg = compose([f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp_path}"])
    data = DATASETS.create("mnist", cfg)
    accuracy = (model(data.x_test).argmax(1) == data.y_test).float().mean().item()
    record = json.loads((run_dir / "metrics.json").read_text())
    assert accuracy == pytest.approx(record["metrics"]["test/accuracy"])


def run_in_process(tmp_path, overrides, name):
    return run_config(overrides, tmp_path / name)


@pytest.mark.slow  # trains on the fixture
def test_run_records_the_code_it_ran(short_run):
    run_dir, _ = short_run
    code = json.loads((run_dir / "metrics.json").read_text())["code"]
    # the run's commit is this checkout's HEAD or an ancestor (commits may land meanwhile)
    ancestor = ["git", "-C", str(REPO), "merge-base", "--is-ancestor", code["commit"], "HEAD"]
    assert subprocess.run(ancestor).returncode == 0
    assert isinstance(code["dirty"], bool)
    assert (len(code.get("diff", "")) == 12) == code["dirty"]
    assert code["packages"]["torch"] == metadata.version("torch")


@pytest.mark.slow  # trains on the fixture
def test_same_config_and_seed_give_identical_metrics(tmp_path, fixture_overrides):
    overrides = [*SHORT, "epochs=2", "model.dropout=0.2", *fixture_overrides]
    a = run_in_process(tmp_path, overrides, "a")
    b = run_in_process(tmp_path, overrides, "b")
    c = run_in_process(tmp_path, [*overrides, "seed=1"], "c")
    assert a["metrics"] == b["metrics"]
    assert a["confusion_matrix"] == b["confusion_matrix"]
    assert c["metrics"] != a["metrics"]


@pytest.mark.slow  # trains on the fixture
def test_dataloader_path_trains_too(tmp_path, fixture_overrides):
    overrides = [*SHORT, "dataset.loader=dataloader", *fixture_overrides]
    record = run_in_process(tmp_path, overrides, "d")
    assert record["status"] == "completed" and record["metrics"]["test/accuracy"] > 0.6


@pytest.mark.slow  # trains on the fixture
def test_multirun_then_summarize(tmp_path, fixture_overrides):
    sweep = tmp_path / "sweep"
    args = ["model=mlp", "activation=elu", "-m", "hidden=8,16", "epochs=1", "eval_every=100"]
    proc = train([*args, *fixture_overrides, f"hydra.sweep.dir={sweep}"])
    assert "Launching 2 jobs locally" in proc.stdout + proc.stderr
    for job in ("hidden=8", "hidden=16"):  # named by the swept override, not activation=elu
        assert json.loads((sweep / job / "metrics.json").read_text())["status"] == "completed"
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "summarize.py"), str(sweep),
         "--pivot", "hidden", "activation"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines = out.splitlines()
    assert lines[0].startswith("| job | hidden | status | test/accuracy")
    assert lines[2].startswith("| hidden=8 | 8 | completed |")
    assert lines[3].startswith("| hidden=16 | 16 |")  # in numeric order
    assert "| hidden \\ activation | elu |" in out
    assert (sweep / "summary.md").read_text() == out
    assert (sweep / "summary.csv").read_text().startswith("job,hidden,status,test/accuracy")


@pytest.mark.full_mnist
@pytest.mark.slow
# the longest first: pytest-xdist starts the tests in this order
@pytest.mark.parametrize("experiment,floor", [("best_mlp", 0.98), ("logreg", 0.92)])
def test_presets_reach_their_accuracy_floor_on_full_mnist(tmp_path, experiment, floor):
    run_dir = tmp_path / experiment
    args = [f"experiment={experiment}", f"dataset.idx_dir={full_mnist_dir()}",
            f"dataset.root={tmp_path / 'data'}", f"hydra.run.dir={run_dir}"]  # fmt: skip
    train(args, timeout=3600)  # best_mlp: a minute on an idle core, three in the busy suite
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert metrics["test/accuracy"] >= floor


@pytest.mark.slow  # trains on the fixture
def test_logreg_closed_form_steps_train_like_autograd(tmp_path, fixture_overrides):
    base = ["experiment=logreg", "epochs=2", "eval_every=8", "progress=false", *fixture_overrides]
    runs = {
        flag: run_in_process(tmp_path, [*base, f"model.analytic_grad={flag}"], flag)
        for flag in ("true", "false")
    }
    closed, auto = runs["true"]["metrics"], runs["false"]["metrics"]
    assert closed["steps"] == auto["steps"]
    for key in ("train/loss", "test/loss"):
        assert closed[key] == pytest.approx(auto[key], rel=1e-4)  # float rounding apart


def test_analytic_grad_on_a_model_without_one_is_a_clear_error(tmp_path, fixture_overrides):
    overrides = [*SHORT, "+model.analytic_grad=true", *fixture_overrides]
    with pytest.raises(Exception, match="the mlp model has no closed-form gradient"):
        run_in_process(tmp_path, overrides, "bad")


@pytest.mark.slow  # trains on the fixture
def test_train_curves_use_a_seeded_subset_and_the_final_train_error_the_whole_split(
    tmp_path, fixture_overrides
):
    from ucl.keys import DATASETS

    overrides = [*fixture_overrides, *SHORT, "epochs=1", "task_settings.train_eval_size=500"]
    record = run_in_process(tmp_path, overrides, "subset")
    assert record["train_eval"] == {"rows": 500, "of": 2000}
    model, _ = load_model(tmp_path / "subset")
    data = DATASETS.create("mnist", compose(overrides))
    x_sub, y_sub = data.train_eval(500, seed=0)
    again, _ = data.train_eval(500, seed=0)
    assert len(y_sub) == 500 and torch.equal(x_sub, again)  # fixed: the same rows each time
    with torch.no_grad():
        wrong_whole = (model(data.x_train).argmax(1) != data.y_train).float().mean().item()
        wrong_sub = (model(x_sub).argmax(1) != y_sub).float().mean().item()
    assert record["metrics"]["train/error"] == pytest.approx(wrong_whole)
    rows = list(csv.DictReader(open(tmp_path / "subset" / "history.csv")))
    assert float(rows[-1]["train/error"]) == pytest.approx(wrong_sub)
    full, _ = data.train_eval(None, seed=0)
    assert torch.equal(full, data.x_train)
