"""Every config composes; every bad override fails before training with a clear message."""

from __future__ import annotations

import pytest
from conftest import REPO, compose, train

from ucl.registry import load_all
from ucl.validate import ConfigError, validate

GROUPS = ["model", "optimizer", "activation", "dataset"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in options(g)], ids=lambda v: str(v)
)
def test_every_group_option_composes_and_validates(group, option):
    cfg = compose([f"{group}={option}"])
    assert cfg[group] is not None
    validate(cfg)  # names inside the group are registered, knobs are in range


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_preset_composes(experiment):
    cfg = compose([f"experiment={experiment}"])
    validate(cfg)


def test_every_key_in_conf_has_a_comment():
    missing = []
    for path in (REPO / "conf").rglob("*.yaml"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            is_key = ":" in stripped and not stripped.startswith(("#", "-"))
            if is_key and "#" not in line and not stripped.endswith(":"):
                missing.append(f"{path.relative_to(REPO)}:{n}: {stripped}")
    assert not missing, "keys without a comment:\n" + "\n".join(missing)


def test_defaults_are_the_problem_sets_logistic_regression():
    cfg = compose()
    assert (cfg.model.name, cfg.optimizer.name, cfg.lr, cfg.batch_size, cfg.epochs) == (
        "logreg", "sgd", 0.5, 128, 100,
    )  # fmt: skip
    assert cfg.model.init == "zeros" and cfg.task == "classify"


@pytest.mark.parametrize(
    "override,message",
    [
        ("lr=0", "lr=0.0 must be > 0"),
        ("lr=-1", "must be > 0"),
        ("batch_size=0", "batch_size=0 must be an integer >= 1"),
        ("hidden=0", "hidden=0 must be an integer >= 1"),
        ("device=tpu", "device='tpu' is not one of auto, cpu, cuda"),
    ],
)
def test_out_of_range_values_are_config_errors(override, message):
    load_all()
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate(compose([override]))


# model=mlpx, lr_rate=0.1, lr=abc and lr=0 are README's examples, run through train.py by
# tests/test_readme_errors.py with these same checks (and exit status 2, nothing left behind)
@pytest.mark.parametrize(
    "override,expected",
    [
        ("activation=relu,eluu", ["Unknown activation 'eluu'. Did you mean activation=elu?"]),
        ("batch_size=1.5", ["batch_size", "could not be converted to Integer"]),
        ("batch_size=0", ["batch_size=0 must be an integer >= 1"]),
    ],
)
def test_bad_overrides_fail_before_training(tmp_path, override, expected):
    run_dir = tmp_path / "run"
    proc = train([override, f"hydra.run.dir={run_dir}"], check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for text in expected:
        assert text in out, out
    assert not (run_dir / "history.csv").exists()  # nothing was trained
