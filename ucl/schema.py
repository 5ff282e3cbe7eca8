"""Types of the top-level config knobs and of each task's settings.

Registered with Hydra's ConfigStore as ``base_config`` (listed first in conf/config.yaml's
defaults) and as ``task/<task>_schema`` (listed first in conf/task/<task>.yaml's), so a wrong
type (``lr=abc``) or an unknown key (``lr_rate=1``, ``task_settings.num_sample=5``) fails
while the config is composed, before any data is loaded. The values themselves live in
conf/; this file only says what kind of value each knob takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


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
    # the others, which refuse a value (ucl/validate.py)
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


def register_schema() -> None:
    """What conf/ needs before Hydra composes it: this schema and the job-name resolver."""
    import warnings

    from hydra.core.config_store import ConfigStore

    from ucl import keys

    store = ConfigStore.instance()
    store.store(name="base_config", node=UclConfig)
    for task, settings in TASK_SETTINGS.items():
        store.store(group="task", name=f"{task}_schema", node=settings)
    keys.register()
    # conf/hydra/launcher/submitit_*.yaml give every key of the submitit plugin's config of
    # the same name; Hydra 1.3 checks them against it and warns that it does (harmless)
    warnings.filterwarnings(
        "ignore", r"\s*'hydra/launcher/submitit_\w+' is validated against ConfigStore schema"
    )
    # ${ucl_dir:PATH} makes PATH and returns it: the Optuna sweeper opens its sqlite study in
    # the sweep dir before Hydra has created that dir (conf/hydra/sweeper/mlp_search.yaml)
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("ucl_dir", _made_dir, replace=True)


def _made_dir(path: str) -> str:
    from pathlib import Path

    Path(path).mkdir(parents=True, exist_ok=True)
    return path
