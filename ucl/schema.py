"""Types of the top-level config knobs.

Registered with Hydra's ConfigStore as ``base_config`` and listed first in
conf/config.yaml's defaults, so a wrong type (``lr=abc``) or an unknown key (``lr_rate=1``)
fails while the config is composed, before any data is loaded. The values themselves live
in conf/; this file only says what kind of value each knob takes.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    task: str = MISSING
    # training knobs
    hidden: int = MISSING
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
    # links to earlier runs (run dirs)
    classifier: str | None = None
    generator: str | None = None
    autoencoder: str | None = None
    # divergence studies: variance of the normal compared with the uniform box
    normal_var: float | None = None
    # the final metric a job returns to a sweeper (Optuna maximises it)
    objective: str = "test/accuracy"


def register_schema() -> None:
    """What conf/ needs before Hydra composes it: this schema and the job-name resolver."""
    import warnings

    from hydra.core.config_store import ConfigStore

    from ucl import job_name

    ConfigStore.instance().store(name="base_config", node=UclConfig)
    job_name.register()
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
