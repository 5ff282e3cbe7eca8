"""The typed config and its checks, and the components a config can name.

The types of the top-level knobs and of each task's settings are registered with Hydra's
ConfigStore as ``base_config`` (listed first in conf/config.yaml's defaults) and as
``task/<task>_schema`` (listed first in conf/task/<task>.yaml's), so a wrong type
(``lr=abc``) or an unknown key (``lr_rate=1``, ``task_settings.num_sample=5``) fails while
the config is composed. `validate` then checks what types cannot express (ranges, names
of registered components, links to earlier runs) before any data is loaded: each error
names the key, the value given and a valid example. The values themselves live in conf/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, OmegaConf

from ucl import keys
from ucl.errors import ConfigError
from ucl.keys import (
    ACTIVATIONS,
    DATASETS,
    MEASURES,
    MODELS,
    OPTIMIZERS,
    TASKS,
    closest,
    split_override,
)
from ucl.lifecycle import as_given, file_in_the_way, is_list, is_number


@dataclass
class UclConfig:
    # component groups: free-form dicts, checked by their builders
    model: Any = MISSING
    optimizer: Any = MISSING
    activation: Any = MISSING
    dataset: Any = MISSING
    divergence: Any = None
    task: str = MISSING  # the task's name (the model names it): classify, reconstruct, ...
    # the task's own settings (conf/task/<task>.yaml, one of the *Settings below); null for
    # a task that has none (classify)
    task_settings: Any = None
    # the hidden width of a model that has one (conf/model/mlp.yaml sets it, 128); null for
    # the others, which refuse a value (_hidden below)
    hidden: int | None = None
    # training knobs
    lr: float = MISSING
    epochs: int = MISSING
    steps: int | None = None
    batch_size: int = MISSING
    seed: int = MISSING
    device: str = MISSING
    precision: str = MISSING
    eval_every: Any = MISSING  # an integer >= 1, or `epoch`
    eval_batch_size: int = MISSING
    threads: Any = None  # an integer >= 1, auto (or null: the same)
    # run-dir bookkeeping
    checkpoint_every: int = MISSING
    resume: str | None = None
    skip_completed: bool = MISSING
    progress: bool | None = None
    # links to earlier runs (run dirs), spelled at the top level on the command line; each
    # task's settings read those it takes (TaskLinks), and the others refuse them
    classifier: str | None = None
    generator: str | None = None
    autoencoder: str | None = None
    # values a pipeline chose from an earlier sweep's table: key -> "<table>@<identity>"
    # (+consumed.activation=runs/x/activation_sweep@0123456789abcdef); recorded in
    # metrics.json, and part of the run's identity when not empty
    consumed: dict[str, str] = field(default_factory=dict)
    # divergence studies: variance of the normal compared with the uniform box
    normal_var: float | None = None
    # the final metric a job returns to a sweeper (Optuna maximises it)
    objective: str = "test/accuracy"


@dataclass
class Interpolation:
    steps: int = MISSING
    pairs: list[Any] = MISSING  # class pairs, by name or index
    eval_pairs: int = MISSING


@dataclass
class LatentReport:
    """The end-of-run look at a code space (ucl/latent.py, ucl/plots/latent.py)."""

    points: int = MISSING
    knn_k: int = MISSING
    silhouette_size: int | None = None
    closest_pairs: int = MISSING
    interpolation: Interpolation = field(default_factory=Interpolation)


@dataclass
class ClassifySettings:
    train_eval_size: int | None = MISSING  # null: the whole training split


@dataclass
class ReconstructSettings:
    classifier: str | None = None
    train_eval_size: int | None = MISSING
    latent: LatentReport = field(default_factory=LatentReport)


@dataclass
class Judged:
    """Generated digits judged by `classifier=`, the Frechet distance against
    judge_reference real test digits, and judge_real more real ones judged alike."""

    classifier: str | None = None
    judge_reference: int = MISSING
    judge_real: int = MISSING


@dataclass
class VaeSettings(Judged):
    autoencoder: str | None = None
    train_eval_size: int | None = MISSING
    samples: int = MISSING
    manifold_size: int = MISSING
    latent: LatentReport = field(default_factory=LatentReport)


@dataclass
class GanSettings(Judged):
    grid_samples: int = MISSING
    grid_nrow: int = MISSING
    num_samples: int = MISSING
    samples_nrow: int = MISSING


@dataclass
class DivergenceSettings:
    generator: str | None = None
    classifier: str | None = None


TASK_SETTINGS = {
    "classify": ClassifySettings,
    "reconstruct": ReconstructSettings,
    "vae": VaeSettings,
    "gan": GanSettings,
    "divergence": DivergenceSettings,
}


# the config groups a command line chooses in (conf/<group>/*.yaml)
GROUPS = ("model", "optimizer", "activation", "dataset", "divergence", "experiment")
NONE_BY_DEFAULT = ("divergence", "experiment")  # conf/config.yaml's `group: null` defaults


def group_options(conf_dir: Path, group: str) -> list[str]:
    """The options of a config group: its folder's YAML files."""
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def unsettable(arg: str, conf_dir: Path) -> str | None:
    """The refusal of an override Hydra has no useful words for (train.py's and a pipeline
    stage's): a config group unset (group=null is Hydra's ValueError; ~group leaves the run
    without one), the task chosen (the model chooses it), the task's settings as one value."""
    key, value = split_override(arg)
    unset = arg.startswith("~")
    if key in GROUPS and (unset or "null" in value.split(",")):
        given = arg if unset else f"{key}=null"
        if key in NONE_BY_DEFAULT:  # ~experiment leaves it as it is by default: none
            return None if unset else f"{given}: no {key} is the default already; drop {given}"
        return (
            f"{given}: the command line can choose another {key}, not unset it; use one of "
            f"{', '.join(group_options(conf_dir, key))} (the experiments that train nothing "
            f"unset it themselves)"
        )
    written = arg.partition("=")[0]  # no + or ~, no @package
    if written in ("task", "model.task"):  # Hydra's answer points at task@task_settings
        return _task_chosen_by_the_model(written, value, conf_dir)
    if written == "task_settings" and value not in ("null", "") and not value.startswith("{"):
        return (
            f"{arg}: set the task's settings one by one, task_settings.KEY=VALUE (e.g. "
            f"task_settings.train_eval_size=1000); the model chooses which task's they are"
        )
    return None


def _task_chosen_by_the_model(key: str, task: str, conf_dir: Path) -> str:
    """`task=X` (or `model.task=X`): the task follows from the model file (`task:
    ${model.task}`), or from the experiment for a study that trains nothing; name what
    runs X."""
    import yaml

    runs: dict[str, list[str]] = {}
    for group in ("model", "experiment"):
        for option in group_options(conf_dir, group):
            node = yaml.safe_load((conf_dir / group / f"{option}.yaml").read_text()) or {}
            named = node.get("task", (node.get("model") or {}).get("task"))  # or @package _global_
            if isinstance(named, str) and not named.startswith("$"):
                runs.setdefault(named, []).append(f"{group}={option}")
    runs = {name: choices for name, choices in runs.items() if name == task} or runs
    if task in runs:
        return f"{key}={task}: the model chooses the task; {' or '.join(runs[task])} runs it"
    tasks = "; ".join(f"{name}: {', '.join(choices)}" for name, choices in sorted(runs.items()))
    return f"{key}={task}: the model chooses the task, so choose the model ({tasks})"


def register_schema() -> None:
    """What conf/ needs before Hydra composes it: this schema and the job-name resolver."""
    import warnings

    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="base_config", node=UclConfig)
    for task, settings in TASK_SETTINGS.items():
        store.store(group="task", name=f"{task}_schema", node=settings)
    keys.register_resolver()
    # conf/hydra/launcher/submitit_*.yaml give every key of the submitit plugin's config of
    # the same name; Hydra 1.3 checks them against it and warns that it does (harmless)
    warnings.filterwarnings(
        "ignore", r"\s*'hydra/launcher/submitit_\w+' is validated against ConfigStore schema"
    )
    # ${ucl_dir:PATH} makes PATH and returns it: the Optuna sweeper opens its sqlite study in
    # the sweep dir before Hydra has created that dir (conf/hydra/sweeper/mlp_search.yaml)
    OmegaConf.register_new_resolver("ucl_dir", _made_dir, replace=True)


def _made_dir(path: str) -> str:
    from pathlib import Path

    Path(path).mkdir(parents=True, exist_ok=True)
    return path


def load_all() -> None:
    """Import the modules that register components (every registry filled). Kept out of
    `ucl.keys`, which any layer imports, and out of import time."""
    import ucl.context  # noqa: F401  (the optimizers)
    import ucl.data  # noqa: F401  (mnist, fashion_mnist)
    import ucl.data.retina.datasets  # noqa: F401  (retinal_bipolar, retina_synthetic)
    import ucl.divergence.measures  # noqa: F401
    import ucl.models  # noqa: F401
    import ucl.tasks  # noqa: F401


DEVICES = ("auto", "cpu", "cuda")
EXAMPLES = {"lr": 0.1, "hidden": 128, "batch_size": 128, "epochs": 10, "steps": 1000, "threads": 1,
            "eval_batch_size": 10000, "checkpoint_every": 5000, "divergence.n": 1000,
            "divergence.repeats": 5, "divergence.permutations": 1000, "divergence.bins": 10,
            "divergence.knn_k": 5, "divergence.hist_max_dim": 3, "divergence.dim": 3,
            "dataset.train_subset": 10000, "dataset.test_subset": 1000,
            "dataset.validation_seed": 0}  # fmt: skip
LOADERS = ("tensor", "dataloader")  # dataset.loader: whole-split tensors, or torch's DataLoader


def validate(cfg) -> None:
    """What types cannot express (above): a ConfigError naming the key, value and a fix."""
    check_numbers(cfg)
    load_all()  # the registries: their modules load torch
    from ucl.context import PRECISIONS

    precision = cfg.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r} is not one of {', '.join(PRECISIONS)}")
    # names inside the groups must be registered (a group file naming a missing builder)
    for key, registry in (("model", MODELS), ("optimizer", OPTIMIZERS), ("dataset", DATASETS)):
        node = cfg.get(key)
        if node is not None and node.get("name") is not None:
            registry.check(f"{key}.name", node.name)  # with the valid names and the closest
    if cfg.get("activation") is not None:
        for key in ("name", "output"):
            name = cfg.activation.get(key)
            if name is not None:
                ACTIVATIONS.check(f"activation.{key}", name)
    TASKS.get(cfg.task)
    if cfg.get("dataset") is not None:
        _dataset(cfg.dataset)
    _task_settings(cfg)
    _model_numbers_and_optimizer(cfg)
    if cfg.task == "divergence":
        _divergence(cfg.divergence, cfg.get("normal_var"), cfg.task_settings)
    _normal_var(cfg)  # after the study's source is checked


def check_numbers(cfg) -> None:
    """validate's checks that need no torch, which train.py runs before torch loads, so a
    bad value is answered at once."""
    _positive(cfg, "lr")
    _at_least(cfg, "batch_size", 1)
    counted = cfg.get("steps") is None and cfg.task != "divergence"  # else nothing reads it
    _at_least(cfg, "epochs", 1 if counted else 0)
    if cfg.get("eval_every") != "epoch":
        _at_least(cfg, "eval_every", 1, example="eval_every=500 or eval_every=epoch")
    _at_least(cfg, "eval_batch_size", 1)
    _at_least(cfg, "checkpoint_every", 0)
    _hidden(cfg)
    _unread(cfg)
    if cfg.get("steps") is not None:
        _at_least(cfg, "steps", 1)
    if cfg.get("threads") not in (None, "auto"):
        _at_least(cfg, "threads", 1, example="threads=1 or threads=auto")
    if cfg.device not in DEVICES:
        raise ConfigError(f"device={cfg.device!r} is not one of {', '.join(DEVICES)}")
    objective = cfg.get("objective") or ""
    if objective.startswith("val/") and not (cfg.get("dataset") or {}).get("validation"):
        raise ConfigError(  # else known only once the run has trained
            f"objective={objective}: no validation split to measure it on; hold one out, e.g. "
            f"dataset.validation=5000"
        )


# the models whose layers take the activation group (a test builds each model to check it)
ACTIVATION_READERS = ("autoencoder", "deep_mlp", "mlp", "vae")
# what a divergence study, which trains nothing, does not read (a test runs one with each changed)
TRAINING_KEYS = ("lr", "epochs", "steps", "batch_size", "eval_every", "eval_batch_size",
                 "checkpoint_every", "precision", "optimizer")  # fmt: skip


def _unread(cfg) -> None:
    """A knob on the command line that the run does not read is refused rather than
    ignored: activation= for a model without it (logreg has no hidden layer, the GAN its
    own non-linearities), and the training knobs for a divergence study."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    model = cfg.get("model")
    what = f"model={model.name}" if model is not None else f"task {cfg.task} (no model)"
    for given in HydraConfig.get().overrides.task:
        key = given.split("=", 1)[0].lstrip("+~").split(".", 1)[0]
        if key == "activation" and (model is None or model.name not in ACTIVATION_READERS):
            raise ConfigError(
                f"{given}: {what} does not read the activation group; activation= sets the "
                f"non-linearity of model={', '.join(ACTIVATION_READERS)}; drop it"
                + (f", or choose one of those (model=mlp {given})" if model is not None else "")
            )
        if key in TRAINING_KEYS and cfg.task == "divergence":
            raise ConfigError(
                f"{given}: task divergence trains nothing, so nothing reads {key}; drop it "
                f"(a study's size is divergence.n and divergence.repeats)"
            )


def _normal_var(cfg) -> None:
    """normal_var is the simple study's knob (null by default); any other run refuses a
    value rather than ignore it."""
    value, study = cfg.get("normal_var"), cfg.get("divergence")
    if value is not None and (study is None or study.get("source") != "simple"):
        raise ConfigError(
            f"normal_var={value}: only the simple study reads it (the variance of the normal "
            f"it compares with the uniform box: experiment=divergence_simple); drop normal_var="
        )


def _hidden(cfg) -> None:
    """`hidden` is the width of a model that has one (its config reads ${hidden}); any other
    model refuses a value rather than ignore it."""
    model, value = cfg.get("model"), cfg.get("hidden")
    takes = model is not None and "hidden" in model
    if takes or value is not None:
        _at_least(cfg, "hidden", 1)
    if not takes and value is not None:
        what = f"model={model.name}" if model is not None else f"task {cfg.task} (no model)"
        raise ConfigError(
            f"hidden={value}: {what} has no hidden width; hidden= sets the width of a model "
            f"that has one (model=mlp); drop hidden= (deep_mlp: model.widths=[512,256])"
        )


def _dataset(ds) -> None:
    """The subsets, the validation split's seed and the loader (the validation split's size
    is checked against the data when it loads)."""
    for key in ("train_subset", "test_subset"):
        if ds.get(key) is not None:
            _at_least(ds, key, 1, node="dataset")
    if "validation_seed" in ds:
        _at_least(ds, "validation_seed", 0, node="dataset")
    root = ds.get("root")
    if root is not None and not isinstance(root, str):  # a number, a list
        raise ConfigError(
            f"dataset.root={root} must be a folder's path; e.g. dataset.root=data (a name "
            f"that reads as a number: dataset.root=./{root})"
        )
    if root and (file := file_in_the_way(Path(root).expanduser())):
        raise ConfigError(
            f"dataset.root={root}: {file} is a file, not a folder; give dataset.root a "
            f"folder's path, e.g. dataset.root=data"
        )
    loader = ds.get("loader")
    if loader is not None and loader not in LOADERS:
        raise ConfigError(
            f"dataset.loader={loader!r} is not one of {', '.join(LOADERS)}; e.g. "
            f"dataset.loader=tensor"
        )


def _task_settings(cfg) -> None:
    """The task's settings are there when it has some, and are its own; a link to an
    earlier run goes to a task that reads it (its settings have the key), and a divergence
    study's settings to a study, instead of being ignored."""
    settings = cfg.get("task_settings")
    # classify runs from before its settings existed evaluated the whole training split,
    # which is what no settings still means, so they resume as they were
    if cfg.task in TASK_SETTINGS and cfg.task != "classify" and settings is None:
        raise ConfigError(
            f"task {cfg.task} has no task_settings: they come with its model file "
            f"(conf/task/{cfg.task}.yaml, selected by conf/model/*.yaml or the experiment); "
            f"a config with them under model (model.num_samples, model.latent, ...) is from an "
            f"older ucl: start that run again"
        )
    # the settings of another task's file (task@task_settings=X) would be read as the run's own
    kind = None if settings is None else OmegaConf.get_type(settings)
    theirs = [task for task, node in TASK_SETTINGS.items() if node is kind]
    if theirs and theirs != [cfg.task]:
        raise ConfigError(
            f"task_settings are task {theirs[0]}'s, and this run's task is {cfg.task}: the model "
            f"chooses its task's settings; drop task@task_settings={theirs[0]} and set them as "
            f"task_settings.KEY=VALUE"
        )
    if cfg.get("divergence") is not None and cfg.task != "divergence":
        from ucl.tasks.divergence import SOURCES

        chosen = cfg.divergence.get("source", "base")  # base: the settings the studies share
        studies = " or ".join(f"experiment=divergence_{source}" for source in SOURCES)
        raise ConfigError(
            f"divergence={chosen}: task {cfg.task} does not read a divergence study's settings; "
            f"a study runs as {studies}; drop divergence="
        )
    if settings is not None:
        _counts(settings, "task_settings")
    for key in keys.LINKS:
        value = cfg.get(key)
        if value and (settings is None or key not in settings):
            takers = [t for t, node in TASK_SETTINGS.items() if key in node.__dataclass_fields__]
            tasks = f"task{'s' * (len(takers) > 1)} {', '.join(takers)}"
            raise ConfigError(
                f"{key}={value}: task {cfg.task} does not read it; {key}= is for {tasks}; "
                f"drop {key}="
            )


# A task's settings are counts (of points, samples, pairs, ...): each at least 1, but these
SETTING_LEAST = {"steps": 2, "samples": 100}  # a line's two ends; the 10 x 10 grid of samples
SETTING_NULL = {"train_eval_size": "the whole training split", "silhouette_size": "all"}
SETTING_EXAMPLES = {"train_eval_size": 10000, "samples": 1000}


def _counts(node, name: str) -> None:
    """Every integer below `node` (a task's settings; the schema types them) is a count of
    at least its least."""
    for key, value in node.items():
        if hasattr(value, "items"):
            _counts(value, f"{name}.{key}")
        elif type(value) is int and value < (low := SETTING_LEAST.get(key, 1)):  # not a bool
            null = f" or null ({SETTING_NULL[key]})" if key in SETTING_NULL else ""
            example = SETTING_EXAMPLES.get(key, max(low, 10))
            raise ConfigError(
                f"{name}.{key}={value!r} must be an integer >= {low}{null}; e.g. "
                f"{name}.{key}={example}"
            )


# the least each count of a divergence study can be
STUDY_COUNTS = {"n": 2, "repeats": 1, "permutations": 1, "bins": 1, "knn_k": 1, "hist_max_dim": 1}


def _divergence(study, normal_var, links) -> None:
    """Every measure a study names is registered and its source is one the task draws from
    (a typo is named with the closest valid name, in the list as it should read); its counts
    and numbers can work, and a study of the GAN has the GAN run."""
    from ucl.tasks.divergence import SOURCES

    if "source" not in study:
        raise ConfigError(
            f"divergence=base holds the settings every study shares, not a study; choose one: "
            f"{', '.join(f'divergence={source}' for source in SOURCES)}"
        )
    if not is_list(study.measures):
        raise ConfigError(
            f"divergence.measures={study.measures} must list measure names; e.g. "
            f"divergence.measures=[{','.join(MEASURES.names()[:2])}]"
        )
    given = [str(m) for m in study.measures]
    # the list as given with each unknown name replaced by its closest measure, or dropped
    fixes = {m: next(iter(closest(m, MEASURES.names())), None) for m in given if m not in MEASURES}
    fixed = [fixes.get(m, m) for m in given]
    fixed = [m for m in dict.fromkeys(fixed) if m] or MEASURES.names()[:1]
    for name in given:
        if name not in MEASURES:
            raise ConfigError(
                f"divergence.measures: {name!r} is not a divergence measure."
                + (f" Did you mean {fixes[name]!r}?" if fixes[name] else "")
                + f" Valid: {', '.join(MEASURES.names())}; e.g. divergence.measures="
                f"[{','.join(fixed)}]"
            )
    for key, low in STUDY_COUNTS.items():
        _at_least(study, key, low, node="divergence")
    if any(m.startswith("kl_knn") for m in given) and not study.n > study.knn_k:
        raise ConfigError(
            f"divergence.n={study.n} leaves the kNN measures fewer points than knn_k="
            f"{study.knn_k} neighbours; e.g. divergence.n={max(1000, study.knn_k + 1)} or a "
            f"smaller divergence.knn_k"
        )
    if not (is_number(study.alpha) and 0 < study.alpha < 1):
        raise ConfigError(
            f"divergence.alpha={study.alpha!r} must be in (0, 1); e.g. divergence.alpha=0.05"
        )
    if study.sigma is not None and not (is_number(study.sigma) and study.sigma > 0):
        raise ConfigError(
            f"divergence.sigma={study.sigma!r} must be > 0, or null for the median heuristic"
        )
    if not (is_number(study.smoothing) and study.smoothing >= 0):
        raise ConfigError(
            f"divergence.smoothing={study.smoothing!r} must be >= 0; e.g. divergence.smoothing=0"
        )
    scales = study.mixture_scales
    if not (is_list(scales) and len(scales) > 0 and all(is_number(v) and v > 0 for v in scales)):
        raise ConfigError(
            f"divergence.mixture_scales={as_given(scales)} must list widths > 0; e.g. "
            f"divergence.mixture_scales=[0.25,0.5,1.0,2.0,4.0]"
        )
    if study.source == "simple":
        _simple(study, normal_var)
    if study.source not in SOURCES:
        raise ConfigError(
            f"divergence.source={study.source!r} is not one of {', '.join(SOURCES)} (valid "
            f"sources); e.g. divergence.source={(closest(study.source, SOURCES) or ['simple'])[0]}"
        )
    if study.source == "gan" and not links.generator:
        raise ConfigError(
            "divergence.source=gan needs generator=<run dir of a GAN run>; e.g. "
            "generator=runs/gan after python train.py experiment=gan hydra.run.dir=runs/gan"
        )
    if study.source == "gan" and not links.classifier and Path(links.generator).is_dir():
        from ucl.divergence.measures import needs_features
        from ucl.earlier_runs import judge

        if any(needs_features(m) for m in given):
            judge(links.generator)  # the GAN's judge, whose features these measures take


def _model_numbers_and_optimizer(cfg) -> None:
    """A model's dropout and its weight average's decay are in [0, 1), its VAE loss is one
    there is; the model and the optimizer take their settings: built here (the model on
    torch's meta device, so no memory and no random numbers; the optimizer on one stand-in
    parameter), so that their own checks run before the run does."""
    model = cfg.get("model") or {}
    for key, meaning, example in (
        ("average_decay", "or null", 0.999),
        ("dropout", "(0: none)", 0.5),
    ):
        value = model.get(key)
        if value is not None and not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise ConfigError(
                f"model.{key}={value!r} must be in [0, 1) {meaning}; e.g. model.{key}={example}"
            )
    weight = model.get("kl_weight")
    if weight is not None and not (isinstance(weight, (int, float)) and weight >= 0):
        raise ConfigError(
            f"model.kl_weight={weight!r} must be >= 0 (1: the VAE's ELBO); e.g. model.kl_weight=1"
        )
    # the models take these with int() and float(), which would take 2.5 as 2 (or fail on a
    # string with Python's words); their ranges are the models' own checks
    latent, slope = model.get("latent_dim"), model.get("leaky_slope")
    if latent is not None and not (isinstance(latent, int) and not isinstance(latent, bool)):
        raise ConfigError(
            f"model.latent_dim={latent!r} must be an integer >= 1; e.g. model.latent_dim=2"
        )
    if slope is not None and not is_number(slope, finite=True):
        raise ConfigError(
            f"model.leaky_slope={slope!r} must be a number, the slope below zero; e.g. "
            f"model.leaky_slope=0.2"
        )
    import torch

    if model.get("name") is not None:
        from types import SimpleNamespace

        from ucl.models.vae import RECONSTRUCTIONS

        loss = model.get("reconstruction")
        if loss is not None and loss not in RECONSTRUCTIONS:
            raise ConfigError(
                f"model.reconstruction={loss!r} is unknown; use one of "
                f"{', '.join(RECONSTRUCTIONS)}; e.g. model.reconstruction=mse"
            )
        try:
            with torch.device("meta"):  # the data's shape does not matter to the checks
                built = MODELS.create(
                    model.name, cfg, SimpleNamespace(in_features=2, num_classes=2)
                )
        except (TypeError, ValueError, RuntimeError, keys.RegistryError) as e:
            raise ConfigError(  # RuntimeError: torch's, e.g. a negative width set as model.*
                f"model {model.name}: {str(e).rstrip('.')}. Check the model.* keys (their values "
                f"and comments: conf/model/{model.name}.yaml)"
            ) from e
        from ucl.context import has_batch_norm

        if has_batch_norm(built) and cfg.get("batch_size") == 1:
            raise ConfigError(
                f"batch_size=1: model {model.name} has batch norm layers, which cannot train on "
                f"a batch of one example; e.g. batch_size=64"
            )
    if cfg.get("optimizer") is not None and cfg.get("lr") is not None:
        _positive(cfg.optimizer, "lr", node="optimizer")  # torch takes lr=0
        from ucl.context import build_optimizer

        build_optimizer(cfg.optimizer, [torch.zeros(1, requires_grad=True)], total_steps=1)


def _simple(study, normal_var) -> None:
    """The uniform box and the normal of the simple study are distributions."""
    _at_least(study, "dim", 1, node="divergence")
    low, high = study.uniform_low, study.uniform_high
    if not (is_number(low, finite=True) and is_number(high, finite=True) and low < high):
        raise ConfigError(
            f"divergence.uniform_low={low} must be below divergence.uniform_high={high}, both "
            f"numbers; e.g. divergence.uniform_low=0 divergence.uniform_high=1"
        )
    if normal_var is None or not normal_var > 0:
        raise ConfigError(
            f"normal_var={normal_var!r}: give the normal's variance > 0, e.g. normal_var=4"
        )


def _positive(cfg, key: str, node: str = "") -> None:
    value, name = cfg.get(key), f"{node}.{key}" if node else key
    if not (is_number(value) and value > 0):
        raise ConfigError(f"{name}={value!r} must be > 0 (e.g. {name}=0.1)")


def _at_least(cfg, key: str, low: int, example: str | None = None, node: str = "") -> None:
    """`key` of `cfg` (shown as `node.key` when `node` is given) is an integer >= low."""
    value, name = cfg.get(key), f"{node}.{key}" if node else key
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if not ok:
        example = example or f"{name}={EXAMPLES.get(name, low)}"
        raise ConfigError(f"{name}={value!r} must be an integer >= {low} (e.g. {example})")
