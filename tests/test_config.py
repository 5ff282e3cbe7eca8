"""Every config composes; every bad override fails before training with a clear message."""

from __future__ import annotations

import re

import pytest
from conftest import REPO, compose, train

from ucl.errors import ConfigError
from ucl.schema import load_all, validate

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


NEEDS = {"divergence_gan": ["generator=runs/gan"]}  # links a preset cannot run without


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_preset_composes(experiment):
    cfg = compose([f"experiment={experiment}", *NEEDS.get(experiment, [])])
    validate(cfg)


@pytest.mark.parametrize(
    "override,message",
    [
        ("divergence.n=0", "divergence.n=0 must be an integer >= 2 (e.g. divergence.n=1000)"),
        ("divergence.repeats=0", "divergence.repeats=0 must be an integer >= 1"),
        ("divergence.permutations=-1", "divergence.permutations=-1 must be an integer >= 1"),
        ("divergence.n=5", "divergence.n=5 leaves the kNN measures fewer points than knn_k=5"),
        ("divergence.alpha=5", "divergence.alpha=5 must be in (0, 1); e.g. divergence.alpha="),
        ("divergence.sigma=0", "divergence.sigma=0 must be > 0, or null"),
        ("divergence.smoothing=-1", "divergence.smoothing=-1 must be >= 0"),
        ("divergence.mixture_scales=[]", "divergence.mixture_scales=[] must list widths > 0"),
        ("divergence.source=gans", "divergence.source='gans' is not one of simple, mnist, gan"),
        ("normal_var=0", "normal_var=0.0: give the normal's variance > 0, e.g. normal_var=4"),
        ("divergence.dim=0", "divergence.dim=0 must be an integer >= 1 (e.g. divergence.dim=3)"),
        ("divergence.uniform_low=2", "divergence.uniform_low=2 must be below"),
    ],
)
def test_a_divergence_setting_that_cannot_work_is_refused(override, message):
    refused_in_one_line(["experiment=divergence_simple", override], message)


@pytest.mark.parametrize(
    "overrides",
    [["experiment=divergence_mnist"], ["model=mlp"], ["experiment=divergence_gan", "generator=x"]],
)
def test_normal_var_outside_the_simple_study_is_refused_not_ignored(overrides):
    refused_in_one_line([*overrides, "normal_var=2"], "normal_var=2.0: only the simple study reads")


def refused_in_one_line(overrides: list[str], message: str) -> str:
    """validate's refusal of the composed overrides: a ConfigError of one line, holding
    `message`."""
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        validate(compose(overrides))
    assert "\n" not in str(refused.value)
    return str(refused.value)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model=mlp", "model.dropout=1.5"], "model.dropout=1.5 must be in [0, 1)"),
        (["model=mlp", "model.dropout=-0.1"], "model.dropout=-0.1 must be in [0, 1)"),
        (["experiment=gan", "model.dropout=1"], "model.dropout=1 must be in [0, 1)"),
        (["experiment=gan", "model.average_decay=2"], "model.average_decay=2 must be in [0, 1)"),
        (["optimizer=adam", "optimizer.betas=[0.9]"], "optimizer.betas=[0.9] must be two"),
        (["optimizer=adam", "optimizer.betas=[0.9,1.5]"], "optimizer.betas=[0.9, 1.5] must be two"),
        (["optimizer=adam", "optimizer.betas=[-0.1,0.9]"], "optimizer.betas=[-0.1, 0.9] must be"),
        (["optimizer=sgd", "optimizer.momentum=-1"], "optimizer.momentum=-1 must be in [0, 1)"),
        (["optimizer=rmsprop", "optimizer.alpha=-0.5"], "optimizer.alpha=-0.5 must be in [0, 1)"),
        (["optimizer=adam", "optimizer.weight_decay=-1"], "optimizer.weight_decay=-1 must be >= 0"),
        (["optimizer=adagrad", "optimizer.eps=-1"], "optimizer.eps=-1 must be > 0"),
        (["optimizer=adam", "optimizer.eps=abc"], "optimizer.eps=abc must be > 0"),
        (["optimizer=sgd", "optimizer.momentum=null"], "optimizer.momentum=None must be in [0, 1)"),
        (["optimizer=adam", "optimizer.betas=[0.9,null]"], "optimizer.betas=[0.9, None] must be"),
        (["optimizer=adam", "optimizer.betas=abc"], "optimizer.betas=abc must be two numbers"),
        (["optimizer=sgd", "optimizer.nesterov=true"], "optimizer sgd: Nesterov momentum requires"),
        # averages whose weights do not decay, which torch takes: the run ends in NaN or drifts
        (["optimizer=rmsprop", "optimizer.alpha=2"], "optimizer.alpha=2 must be in [0, 1)"),
        (["optimizer=rmsprop", "optimizer.alpha=1"], "optimizer.alpha=1 must be in [0, 1)"),
        (["optimizer=momentum", "optimizer.momentum=1.5"], "optimizer.momentum=1.5 must be in"),
        (["optimizer=rmsprop", "optimizer.momentum=1"], "optimizer.momentum=1 must be in [0, 1)"),
        # the models' own checks, run on the config before the run starts
        (["model=autoencoder", "model.widths=[0]"], "got widths=[0], latent_dim=2"),
        (["model=vae", "model.latent_dim=0"], "got widths=[512, 256], latent_dim=0"),
        (["model=vae", "model.widths=[]"], "model.widths=[]: the VAE's encoder needs at least one"),
        (["model=gan", "model.generator_widths=[0]"], "got latent_dim=64, widths=[0]"),
        (["model=gan", "model.latent_dim=0"], "Generator needs latent_dim >= 1"),
        (["model=deep_mlp", "model.widths=[0]"], "model.widths=[0] must list integers >= 1"),
        # a width that is no integer: int() would take 1.5 as 1, and 'abc' letter by letter
        (["model=deep_mlp", "model.widths=[1.5,2]"], "model.widths=[1.5, 2] must list integers"),
        (["model=deep_mlp", "model.widths=abc"], "model.widths=abc must list integers >= 1"),
        (["model=deep_mlp", "model.widths=5"], "model.widths=5 must list integers >= 1"),
        (["model=autoencoder", "model.widths=[1.5]"], "got widths=[1.5], latent_dim=2"),
        (["model=vae", "model.widths=abc"], "got widths=abc, latent_dim=2"),
        (["model=gan", "model.generator_widths=abc"], "got latent_dim=64, widths=abc"),
        (["model=gan", "model.discriminator_widths=[0.5]"], "got widths=[0.5]; e.g."),
        (["model=mlp", "model.init=foo"], "model.init='foo' is unknown"),
        (["model=logreg", "model.init=foo"], "model.init='foo' is unknown for logreg"),
        (["model=autoencoder", "model.latent_act=foo"], "Unknown activation 'foo'"),
        (["model=vae", "model.reconstruction=foo"], "model.reconstruction='foo' is unknown"),
        (["model=vae", "model.kl_weight=-1"], "model.kl_weight=-1 must be >= 0"),
    ],
)
def test_a_model_or_optimizer_value_that_cannot_work_is_refused(overrides, message):
    said = refused_in_one_line(overrides, message)
    assert "optimizer." in said or "model." in said


@pytest.mark.parametrize(
    "overrides,message",
    [
        # a string where a number goes: was a TypeError, "an unexpected error" from train.py
        (["experiment=divergence_simple", "divergence.uniform_low=abc"],
         "divergence.uniform_low=abc must be below divergence.uniform_high=1.0, both numbers"),
        (["experiment=divergence_simple", "divergence.uniform_high=abc"],
         "divergence.uniform_low=0.0 must be below divergence.uniform_high=abc, both numbers"),
        # a fraction where an integer goes: int() took 2.5 as 2, and the run trained
        (["model=autoencoder", "model.latent_dim=2.5"], "model.latent_dim=2.5 must be an integer"),
        (["model=gan", "model.latent_dim=2.5"], "model.latent_dim=2.5 must be an integer"),
        (["model=vae", "model.latent_dim=abc"], "model.latent_dim='abc' must be an integer"),
        (["experiment=gan", "model.leaky_slope=abc"], "model.leaky_slope='abc' must be a number"),
        # the study's numbers and lists: were TypeErrors, "an unexpected error" from train.py
        (["experiment=divergence_simple", "divergence.alpha=abc"],
         "divergence.alpha='abc' must be in (0, 1)"),
        (["experiment=divergence_simple", "divergence.sigma=abc"],
         "divergence.sigma='abc' must be > 0, or null"),
        (["experiment=divergence_simple", "divergence.smoothing=null"],
         "divergence.smoothing=None must be >= 0"),
        (["experiment=divergence_simple", "divergence.mixture_scales=abc"],
         "divergence.mixture_scales=abc must list widths > 0"),
        (["experiment=divergence_simple", "divergence.mixture_scales=2.5"],
         "divergence.mixture_scales=2.5 must list widths > 0"),
        (["experiment=divergence_simple", "divergence.measures=2.5"],
         "divergence.measures=2.5 must list measure names"),
        (["model=mlp", "optimizer.lr=abc"], "optimizer.lr='abc' must be > 0"),
        (["model=mlp", "dataset.root=2.5"], "dataset.root=2.5 must be a folder's path"),
        # a key set under model, past the top-level knob's check: torch's RuntimeError
        (["model=mlp", "model.hidden=-1"], "model mlp: Trying to create tensor with negative"),
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_type_is_refused_in_one_line(overrides, message):
    refused_in_one_line(overrides, message)


@pytest.mark.parametrize(
    "override,message",
    [
        ("dataset.train_subset=0", "dataset.train_subset=0 must be an integer >= 1"),
        ("dataset.test_subset=-5", "dataset.test_subset=-5 must be an integer >= 1"),
        ("dataset.loader=foo", "dataset.loader='foo' is not one of tensor, dataloader"),
        ("dataset.validation_seed=abc", "dataset.validation_seed='abc' must be an integer >= 0"),
        ("dataset.validation_seed=-1", "dataset.validation_seed=-1 must be an integer >= 0"),
        (
            f"dataset.root={REPO}/README.md/data",
            f"dataset.root={REPO}/README.md/data: {REPO}/README.md is a file, not a folder",
        ),
    ],
)
def test_a_data_value_that_cannot_work_is_refused(override, message):
    refused_in_one_line([override], message)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["experiment=gan", "task_settings.num_samples=0"], "num_samples=0 must be an integer"),
        (["experiment=gan", "task_settings.judge_real=-3"], "judge_real=-3 must be an integer"),
        (["experiment=vae", "task_settings.manifold_size=0"], "manifold_size=0 must be an integer"),
        (["experiment=vae", "task_settings.samples=99"], "samples=99 must be an integer >= 100"),
        (["experiment=vae", "task_settings.train_eval_size=0"], ">= 1 or null (the whole training"),
        (["experiment=autoencoder_mnist", "task_settings.latent.silhouette_size=0"],
         "task_settings.latent.silhouette_size=0 must be an integer >= 1 or null (all)"),
        (["experiment=autoencoder_mnist", "task_settings.latent.interpolation.steps=1"],
         "task_settings.latent.interpolation.steps=1 must be an integer >= 2"),
    ],
)  # fmt: skip
def test_a_count_in_the_tasks_settings_that_cannot_work_is_refused(overrides, message):
    said = refused_in_one_line(overrides, message)
    assert said.startswith("task_settings.") and "; e.g. task_settings." in said


def test_a_preset_without_the_run_it_needs_is_refused():
    with pytest.raises(ConfigError, match="divergence.source=gan needs generator="):
        validate(compose(["experiment=divergence_gan"]))


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
        ("epochs=0", "epochs=0 must be an integer >= 1 (e.g. epochs=10)"),
    ],
)
def test_out_of_range_values_are_config_errors(override, message):
    load_all()
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(compose([override]))


def test_epochs_may_be_0_where_nothing_counts_them():
    validate(compose(["epochs=0", "steps=5"]))  # steps= decides the length
    validate(compose(["experiment=divergence_simple", "epochs=0"]))  # the task trains nothing


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


def test_a_bad_model_value_is_one_line_and_leaves_no_run_dir(tmp_path):
    """Refused by the model's own check, which ucl.schema runs before the run's first write."""
    run_dir, expected = tmp_path / "run", "got widths=[1000, 500, 250], latent_dim=0"
    proc = train(["model=autoencoder", "model.latent_dim=0", f"hydra.run.dir={run_dir}"],
                 check=False)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    said = [line for line in out.splitlines() if line.startswith("train.py: ")]
    assert len(said) == 1 and expected in said[0], out
    assert not run_dir.exists()  # refused before the run's first write


# -- the task's settings, the links to earlier runs, hidden ------------------------------
@pytest.mark.parametrize(
    "overrides,task,settings",
    [
        (["model=mlp"], "classify", {"train_eval_size"}),
        (["model=logreg"], "classify", {"train_eval_size"}),
        (["model=deep_mlp"], "classify", {"train_eval_size"}),
        (["experiment=autoencoder_mnist"], "reconstruct", {"classifier", "latent"}),
        (["experiment=vae"], "vae", {"classifier", "autoencoder", "samples", "manifold_size"}),
        (["experiment=gan"], "gan", {"classifier", "num_samples", "judge_reference"}),
        (["experiment=divergence_gan"], "divergence", {"generator", "classifier"}),
    ],
)
def test_the_model_chooses_its_task_and_the_tasks_settings(overrides, task, settings):
    cfg = compose(overrides)
    assert cfg.task == task
    assert settings <= set(cfg.task_settings)
    model = set(cfg.get("model") or {})  # the networks only
    assert not model & {"num_samples", "samples", "latent", "train_eval_size", "judge_real"}


def test_the_links_are_typed_at_the_top_level_and_read_by_the_task():
    cfg = compose(["experiment=vae", "classifier=runs/a", "autoencoder=runs/b"])
    assert (cfg.task_settings.classifier, cfg.task_settings.autoencoder) == ("runs/a", "runs/b")
    validate(cfg)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["hidden=64"], "hidden=64: model=logreg has no hidden width"),
        (["model=gan", "hidden=64"], "hidden=64: model=gan has no hidden width"),
        (["experiment=gan", "autoencoder=runs/x"], "autoencoder= is for task vae"),
        (["model=mlp", "classifier=runs/x"], "task classify does not read it"),
        (["experiment=vae", "generator=runs/x"], "generator= is for task divergence"),
        (["model=mlp", "objective=val/accuracy"], "objective=val/accuracy: no validation split"),
        (["model=mlp", "divergence=simple"], "divergence=simple: task classify does not read"),
        (["model=mlp", "divergence=base"], "divergence=base: task classify does not read a"),
        (["experiment=divergence_simple", "divergence=base"], "divergence=base holds the settings"),
        (
            ["model=logreg", "task@task_settings=reconstruct"],
            "task_settings are task reconstruct's, and this run's task is classify",
        ),
    ],
)
def test_a_knob_the_run_does_not_use_is_refused(overrides, message):
    load_all()
    with pytest.raises(ConfigError, match=message):
        validate(compose(overrides))


def test_a_typo_in_the_tasks_settings_fails_at_composition():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="num_sample"):
        compose(["experiment=gan", "task_settings.num_sample=5"])


def test_a_run_dir_with_the_settings_under_model_is_refused_in_one_line(tmp_path):
    """A run dir from before conf/task/: a re-run says what differs, resume= that the run's
    own config fails today's checks; one line each, nothing written."""
    import yaml
    from omegaconf import OmegaConf

    from ucl.config import run_config
    from ucl.rundir import CONFIG_HEADER

    old = OmegaConf.to_container(compose(["experiment=gan"]), resolve=True)
    settings = old.pop("task_settings")
    settings.pop("classifier")
    old["model"].update(settings)
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(CONFIG_HEADER + yaml.safe_dump(old))
    before = sorted(p.name for p in run_dir.iterdir())
    with pytest.raises(ConfigError, match="holds a run of another experiment") as again:
        run_config(["experiment=gan"], run_dir)
    with pytest.raises(ConfigError, match="fails today's checks") as resumed:
        run_config([f"resume={run_dir}"], tmp_path / "unused")
    for e in (again.value, resumed.value):
        assert "\n" not in str(e)
    assert "task gan has no task_settings" in str(resumed.value)
    assert sorted(p.name for p in run_dir.iterdir()) == before
