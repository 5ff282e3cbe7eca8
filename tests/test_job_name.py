"""Sweep job dirs are named by the swept overrides: short, filesystem-safe and the same on
every re-run. (The sweeps through train.py in test_sweeps.py, test_classify.py and
test_launchers.py find their jobs under these names.)"""

from __future__ import annotations

import yaml
from omegaconf import OmegaConf

from ucl.keys import MAX_LENGTH, job_name


def sweep_dir(tmp_path, task: list[str], params: dict | None = None):
    """A sweep dir holding the multirun.yaml Hydra's sweeper writes before the jobs run."""
    hydra = {"overrides": {"task": task}, "sweeper": {"params": params}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump({"hydra": hydra}))
    return tmp_path


def test_named_by_the_swept_overrides_only(tmp_path):
    given = ["model=mlp", "activation=elu", "hidden=64,128", "dataset.root=/tmp/x"]
    job = ["model=mlp", "activation=elu", "hidden=64", "dataset.root=/tmp/x"]
    assert job_name(job, sweep_dir(tmp_path, given), 0) == "hidden=64"


def test_several_swept_keys_sorted_by_key(tmp_path):
    given = ["hidden=64,128", "activation=relu,elu", "lr=range(1,3)"]
    job = ["hidden=128", "activation=elu", "lr=2"]
    assert job_name(job, sweep_dir(tmp_path, given), 3) == "activation=elu,hidden=128,lr=2"


def test_experiment_presets_sweep_through_the_sweepers_params(tmp_path):
    given = ["experiment=width_sweep"]
    job = ["experiment=width_sweep", "hidden=256"]
    sweep = sweep_dir(tmp_path, given, {"hidden": "16,64,256"})
    assert job_name(job, sweep, 2) == "hidden=256"


def test_a_value_with_a_slash_makes_no_subdir(tmp_path):
    given = ["classifier=runs/a,runs/b/c"]
    name = job_name(["classifier=runs/b/c"], sweep_dir(tmp_path, given), 1)
    assert name == "classifier=runs_b_c" and "/" not in name


def test_long_names_are_cut_and_stay_distinct(tmp_path):
    values = ["x" * 150 + "1", "x" * 150 + "2"]
    sweep = sweep_dir(tmp_path, ["classifier=" + ",".join(values)])
    names = [job_name([f"classifier={v}"], sweep, i) for i, v in enumerate(values)]
    assert all(len(n) == MAX_LENGTH for n in names) and names[0] != names[1]


def test_without_a_swept_key_the_other_overrides_then_the_number(tmp_path):
    sweep = sweep_dir(tmp_path, ["experiment=best_mlp", "threads=1"])
    assert job_name(["experiment=best_mlp", "threads=1"], sweep, 0) == "experiment=best_mlp"
    assert job_name(["threads=1", "dataset.root=d"], tmp_path / "none", 4) == "4"


def test_config_yaml_names_sweep_jobs_with_the_resolver(tmp_path):
    """conf/config.yaml's hydra.sweep.subdir, resolved as Hydra does for each job."""
    from hydra import compose, initialize_config_dir

    from ucl.config import CONF_DIR
    from ucl.schema import register_schema

    register_schema()  # registers the resolver too, as train.py does
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config", ["hidden=16", f"hydra.sweep.dir={tmp_path}"], return_hydra_config=True
        )
    sweep_dir(tmp_path, ["hidden=8,16"])
    cfg.hydra.overrides.task = ["hidden=16"]  # what Hydra sets for the job
    cfg.hydra.job.num = 1
    assert OmegaConf.select(cfg, "hydra.sweep.subdir") == "hidden=16"
