"""dataset.validation=N: a seeded, stratified, disjoint hold-out of the training examples,
the same on every load, and runs that log val/... beside train/ and test/."""

from __future__ import annotations

import pytest
import torch
from conftest import FIXTURE_MNIST, compose

from ucl.config import run_config
from ucl.errors import ConfigError
from ucl.keys import DATASETS
from ucl.schema import load_all


def load(tmp_path, *extra):
    load_all()
    cfg = compose([f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp_path / 'root'}", *extra])
    return DATASETS.create(cfg.dataset.name, cfg)


def rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x}


def test_validation_is_held_out_disjoint_and_complete(tmp_path):
    full = load(tmp_path)
    data = load(tmp_path, "dataset.validation=500")
    assert full.x_val is None and len(full.y_train) == 2000  # 0, the default: plain train/test
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (1500, 500, 500)
    # disjoint (as rows of the original training split), and together the whole of it
    train_index = sorted(set(range(2000)) - set(data.val_index.tolist()))
    assert torch.equal(data.x_train, full.x_train[train_index])
    assert torch.equal(data.x_val, full.x_train[torch.from_numpy(data.val_index)])
    assert torch.equal(data.y_val, full.y_train[torch.from_numpy(data.val_index)])
    assert not rows(data.x_val) & rows(data.x_train)
    assert torch.equal(data.x_test, full.x_test)  # the test split is never touched
    # stratified: each class keeps its share of the training examples, to one example
    share = torch.bincount(full.y_train, minlength=10) * 500 / 2000
    assert (torch.bincount(data.y_val, minlength=10) - share).abs().max() <= 1


def test_validation_is_seeded_and_reproducible(tmp_path):
    a = load(tmp_path, "dataset.validation=300")
    b = load(tmp_path, "dataset.validation=300", "seed=7")  # the run's seed does not move it
    c = load(tmp_path, "dataset.validation=300", "dataset.validation_seed=1")
    assert (a.val_index == b.val_index).all()
    assert not (a.val_index == c.val_index).all()


def test_dataloader_path_trains_on_the_same_rows(tmp_path):
    data = load(tmp_path, "dataset.validation=300", "dataset.loader=dataloader")
    assert torch.equal(data.torch_datasets["train"].targets, data.y_train)


@pytest.mark.parametrize("n", [1995, 1999])  # fewer training examples left than classes
def test_a_validation_split_of_all_but_a_few_examples_leaves_those_to_train_on(tmp_path, n):
    full, data = load(tmp_path), load(tmp_path, f"dataset.validation={n}")
    assert (len(data.y_train), len(data.y_val)) == (2000 - n, n)
    assert not rows(data.x_val) & rows(data.x_train)
    assert rows(data.x_val) | rows(data.x_train) == rows(full.x_train)


@pytest.mark.parametrize("n", [2000, -1])
def test_bad_validation_size_is_named(tmp_path, n):
    expected = rf"validation={n} must be between 0 and 1999 .* e.g. dataset.validation=200,"
    with pytest.raises(ConfigError, match=expected):
        load(tmp_path, f"dataset.validation={n}")


@pytest.mark.slow  # trains on the fixture
def test_a_run_logs_val_beside_train_and_test(tmp_path):
    run_dir = tmp_path / "run"
    record = run_config(
        ["model=mlp", "hidden=16", "steps=20", "eval_every=10", "threads=1", "progress=false",
         "dataset.validation=400", f"dataset.idx_dir={FIXTURE_MNIST}",
         f"dataset.root={tmp_path / 'data'}"], run_dir,
    )  # fmt: skip
    m = record["metrics"]
    assert 0 < m["val/accuracy"] <= 1 and m["val/accuracy"] == pytest.approx(1 - m["val/error"])
    assert record["data"]["train"] == 1600
    header = (run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"train/error", "val/error", "val/accuracy", "test/accuracy"} <= set(header)
    # TensorBoard's HParams tab lists the validation beside the test accuracy
    metrics_listed = hparams_metrics(run_dir)
    assert any(t.endswith("val/accuracy") for t in metrics_listed), metrics_listed
    assert any(t.endswith("test/accuracy") for t in metrics_listed), metrics_listed


def hparams_metrics(run_dir) -> list[str]:
    """The metric tags the run's event file declares to TensorBoard's HParams plugin."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(run_dir))
    events.Reload()
    tags = []
    for raw in events.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(raw)
        if data.HasField("experiment"):
            tags += [m.name.tag for m in data.experiment.metric_infos]
    return tags
