"""Earlier runs a run builds on, named by their run dirs: `classifier=` (the judge of
generated or decoded digits), `autoencoder=` (compared with a VAE), `generator=` (the GAN a
divergence study samples). One loader, one set of checks, one style of message."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf

from ucl.checkpoint import MODEL, CheckpointMismatch, load
from ucl.errors import ConfigError, CorruptFileError, MissingFileError
from ucl.keys import LINKS
from ucl.lifecycle import read_metrics
from ucl.registry import MODELS

log = logging.getLogger(__name__)


def load_model(run_dir: Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a run's model from its model.pt; returns (model in eval mode, what was saved)."""
    import ucl.models  # noqa: F401  (registers the model families a model.pt names)

    run_dir = Path(run_dir)
    saved = load(_saved_model(run_dir), map_location=device)
    cfg = OmegaConf.create(saved["config"])
    model = MODELS.create(cfg.model.name, cfg, SimpleNamespace(**saved["data"]))
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as e:  # e.g. weights of another shape or layout
        raise CheckpointMismatch(
            f"{run_dir / MODEL} does not fit the {cfg.model.name} model this version of ucl "
            f"builds from its config ({_detail(e)}). It was written "
            f"by an older version of ucl (logreg and mlp now store weights as (outputs, "
            f"inputs)); train it again with the config saved in {run_dir}."
        ) from e
    return model.to(device).eval(), saved


def load_classifier(path: str | None, data, device: str | torch.device = "cpu"):
    """The classifier `classifier=<run dir>` names, checked against the data it will judge
    (a classify run with this data's inputs and classes); None when none is given."""
    if not path:
        return None
    model, saved = _load("classifier", path, device)
    task = saved["config"].get("task")
    shape = (saved["data"]["in_features"], saved["data"]["num_classes"])
    if task != "classify" or shape != (data.in_features, data.num_classes):
        raise ConfigError(
            f"classifier={path} is a {task!r} run mapping {shape[0]} features to {shape[1]} "
            f"outputs; judging {data.name} needs a classify run on {data.in_features} "
            f"features and {data.num_classes} classes (e.g. python train.py model=mlp)"
        )
    if saved["data"]["name"] != data.name:
        log.warning("classifier %s was trained on %s, not %s", path, saved["data"]["name"],
                    data.name)  # fmt: skip
    return model


def load_autoencoder(path: str | None, data, device: str | torch.device = "cpu"):
    """The model `autoencoder=<run dir>` names, checked to encode and decode this run's data;
    None when none is given."""
    if not path:
        return None
    model, saved = _load("autoencoder", path, device)
    if not (hasattr(model, "encode") and hasattr(model, "decode")):
        raise ConfigError(
            f"autoencoder={path} holds a {saved['config']['model']['name']} model, which has no "
            f"encode/decode; give the run dir of an autoencoder run "
            f"(python train.py experiment=autoencoder_mnist)"
        )
    if saved["data"]["name"] != data.name or saved["data"]["in_features"] != data.in_features:
        raise ConfigError(
            f"autoencoder={path} was trained on {saved['data']['name']}, this run uses "
            f"{data.name}; give an autoencoder trained on {data.name}"
        )
    return model


def load_generator(path: str, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """The run `generator=<run dir>` names: (its model, what was saved with it)."""
    return _load("generator", path, device)


def check_links(settings) -> None:
    """Each earlier run a task's settings link to (classifier=, autoencoder=, generator=) is
    a run dir with a saved model, so that a wrong path is refused before the new run writes
    anything; loading it, and checking it against the data, stay with the task."""
    for key in LINKS:
        path = (settings or {}).get(key)
        if path:
            try:
                _saved_model(Path(path))
            except MissingFileError as e:
                raise ConfigError(f"{key}={path}: {e}") from e


def run_identity(run_dir: Path) -> str:
    """What a later run reads from `run_dir`, as 16 hex digits: the run's config identity,
    the identities of what it read itself (a GAN's judge reaches a divergence study through
    the GAN) and the bytes of its model.pt. Another config, a re-run that saved other
    weights or read other runs gives another hash; the same files give the same one."""
    run_dir = Path(run_dir)
    model = _saved_model(run_dir)
    record = read_metrics(run_dir)
    if record is None:
        raise MissingFileError(f"{run_dir / 'metrics.json'} does not exist; check the run dir.")
    if "identity" not in record:
        raise CorruptFileError(f"{run_dir / 'metrics.json'} records no identity; train it again.")
    read = {k: v.get("identity") for k, v in (record.get("consumed") or {}).items()}
    digest = hashlib.sha256(f"{record['identity']}\n{json.dumps(read, sort_keys=True)}\n".encode())
    with open(model, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def consumed(cfg, choices: dict | None = None) -> dict:
    """What this run takes from earlier work, for its metrics.json: each linked run
    (classifier=, autoencoder=, generator=) with its run_identity, and each value a
    pipeline chose from an earlier sweep's table (`consumed.KEY=<table>@<identity>`) with
    the value this run has for KEY (its group choice, e.g. relu, for a component group)."""
    out: dict = {}
    settings = cfg.get("task_settings") or {}  # where the task reads its links, as check_links
    for key in LINKS:
        if path := settings.get(key):
            out[key] = {"run": str(path), "identity": run_identity(Path(path))}
    for key, given in (cfg.get("consumed") or {}).items():
        table, at, identity = str(given).rpartition("@")
        if not (at and table and identity):
            raise ConfigError(
                f"consumed.{key}={given!r}: give the table and its identity as "
                f"<table>@<identity>, e.g. +consumed.{key}=runs/x/{key}_sweep@0123456789abcdef"
            )
        if key not in cfg:
            raise ConfigError(f"consumed.{key}: the config has no key {key!r} to record")
        out[key] = {"table": table, "identity": identity, "value": _value(cfg, key, choices)}
    return out


def _value(cfg, key: str, choices: dict | None):
    """The value of top-level `key` as a sweep's table names it: a group's choice (relu),
    else a component's name, else the plain value."""
    if choices and choices.get(key) is not None:
        return choices[key]
    value = cfg.get(key)
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
        return value.get("name", value) if isinstance(value, dict) else value
    return value


def _saved_model(run_dir: Path) -> Path:
    """The model.pt of a run dir, which must be there."""
    if not run_dir.is_dir():
        raise MissingFileError(f"run dir {run_dir} does not exist; give the dir of a finished run")
    path = run_dir / MODEL
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; check the run dir you gave.")
    return path


def _load(key: str, path: str, device) -> tuple[torch.nn.Module, dict]:
    try:
        return load_model(Path(path), device)
    except MissingFileError as e:
        raise ConfigError(f"{key}={path}: {e}") from e


def _detail(e: Exception) -> str:
    """The lines of a load_state_dict error after its headline, shortened."""
    lines = [line.strip() for line in str(e).splitlines()]
    return " ".join(lines[1:] or lines)[:240]
