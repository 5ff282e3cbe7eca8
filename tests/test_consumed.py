"""What a run consumed from earlier work, in its metrics.json: each linked run (classifier=,
autoencoder=, generator=) with the identity of what was read from it, and each value a
pipeline chose from an earlier sweep's table (+consumed.KEY=<table>@<identity>)."""

from __future__ import annotations

import shutil

import pytest
import yaml

from tests.conftest import compose
from tests.test_gan import SMALL as SMALL_GAN
from tests.train_process import data_args
from ucl import rundir
from ucl.config import run_config
from ucl.errors import ConfigError, MissingFileError
from ucl.rundir import consumed, run_identity

# a classifier small enough to train in seconds; the runs below differ from it by one key
CLASSIFY = ["model=mlp", "hidden=32", "activation=elu", "steps=20", "eval_every=10", "threads=1"]
GAN = [*SMALL_GAN, "steps=10"]
TABLE_ID = "0123456789abcdef"


def _train(args: list[str], run_dir) -> dict:
    """A run in this process (what is recorded does not depend on train.py's process)."""
    return run_config(args, run_dir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("consumed")
    data = data_args(root)
    return {
        "root": root,
        "data": data,
        "clf": root / "clf",
        "record": _train([*CLASSIFY, *data], root / "clf"),
    }


# -- the identity of an earlier run ---------------------------------------------------------
@pytest.mark.slow  # trains on the fixture
def test_a_run_linking_a_classifier_records_what_it_read(runs):
    clf = runs["clf"]
    record = _train([*GAN, *runs["data"], f"classifier={clf}"], runs["root"] / "gan")
    assert record["status"] == "completed"
    assert record["consumed"] == {"classifier": {"run": str(clf), "identity": run_identity(clf)}}


@pytest.mark.slow  # trains on the fixture
def test_other_weights_give_another_identity_and_the_same_files_the_same(runs, tmp_path):
    clf = runs["clf"]
    copy = shutil.copytree(clf, tmp_path / "copy")
    assert run_identity(copy) == run_identity(clf)
    other = tmp_path / "seed1"
    _train([*CLASSIFY, *runs["data"], "seed=1"], other)
    assert run_identity(other) != run_identity(clf)
    # the same config with other weights (a re-run on another machine, say): another hash
    model = copy / "model.pt"
    model.write_bytes(model.read_bytes() + b"\0")
    assert run_identity(copy) != run_identity(clf)


def test_a_dir_without_model_or_record_is_refused_naming_the_file(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"weights")
    with pytest.raises(MissingFileError, match="metrics.json"):
        run_identity(tmp_path)
    (tmp_path / "model.pt").unlink()
    with pytest.raises(MissingFileError, match="model.pt"):
        run_identity(tmp_path)


# -- values taken from an earlier table -----------------------------------------------------
@pytest.mark.slow  # trains on the fixture
def test_a_consumed_value_is_recorded_and_makes_another_experiment(runs):
    run_dir = runs["root"] / "chosen"
    given = f"{runs['root']}/activation_sweep@{TABLE_ID}"
    record = _train([*CLASSIFY, *runs["data"], f"+consumed.activation={given}"], run_dir)
    assert record["consumed"] == {
        "activation": {
            "table": f"{runs['root']}/activation_sweep",
            "identity": TABLE_ID,
            "value": "elu",
        }
    }
    # the same run without it is another experiment, and differs by that key alone
    assert record["identity"] != runs["record"]["identity"]
    config = yaml.safe_load((run_dir / rundir.CONFIG_RECORD).read_text())
    assert rundir.identity_hash(config) == record["identity"]
    config["consumed"] = {}
    assert rundir.identity_hash(config) == runs["record"]["identity"]


@pytest.mark.slow  # trains on the fixture
def test_a_run_without_consumed_has_the_identity_of_its_config_without_the_key(runs):
    assert "consumed" not in runs["record"]
    config = yaml.safe_load((runs["clf"] / rundir.CONFIG_RECORD).read_text())
    assert config["consumed"] == {}
    without = {k: v for k, v in config.items() if k != "consumed"}
    assert rundir.identity_hash(without) == runs["record"]["identity"]
    assert rundir.identity(config) == rundir.identity(without)


def test_the_identity_of_a_fixed_config_is_what_it_was_before_the_key_existed():
    config = {"task": "classify", "lr": 0.5, "model": {"name": "mlp", "widths": [64]}, "seed": 0}
    before = "8a6bcdc9f936442a"  # identity_hash of this dict before `consumed` was added
    assert rundir.identity_hash({**config, "device": "cpu"}) == before
    assert rundir.identity_hash({**config, "device": "cpu", "consumed": {}}) == before
    chosen = {"consumed": {"activation": f"runs/x@{TABLE_ID}"}}
    assert rundir.identity_hash({**config, "device": "cpu", **chosen}) != before


def test_the_default_config_composes_with_an_empty_consumed_that_identifies_nothing():
    cfg = compose([])
    assert dict(cfg.consumed) == {} and "consumed" not in rundir.identity(cfg)
    assert consumed(cfg, {"activation": "relu"}) == {}


@pytest.mark.parametrize(
    "given, message",
    [
        (["+consumed.activation=runs/x/activation_sweep"], "<table>@<identity>"),
        ([f"+consumed.activation=@{TABLE_ID}"], "<table>@<identity>"),
        ([f"+consumed.activaton=runs/x@{TABLE_ID}"], "no key 'activaton'"),
    ],
)
def test_a_malformed_consumed_entry_is_a_config_error(given, message):
    with pytest.raises(ConfigError, match=message):
        consumed(compose(given))


def test_a_plain_value_and_a_group_choice_are_recorded_as_a_table_names_them():
    cfg = compose([f"+consumed.lr=runs/lr_sweep@{TABLE_ID}", f"+consumed.optimizer=t@{TABLE_ID}"])
    taken = consumed(cfg, {"optimizer": "sgd"})
    assert taken["lr"] == {"table": "runs/lr_sweep", "identity": TABLE_ID, "value": 0.5}
    assert taken["optimizer"]["value"] == "sgd"
    assert consumed(cfg)["optimizer"]["value"] == cfg.optimizer.name  # composed without Hydra
