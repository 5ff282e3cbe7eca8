"""Earlier runs a run builds on, named by their run dirs: `classifier=` (the judge of
generated or decoded digits), `autoencoder=` (compared with a VAE), `generator=` (the GAN a
divergence study samples). One loader, one style of message; the checks a run makes of its
links before it starts, and what it records of them, are rundir.py's."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf

from ucl.errors import ConfigError, MissingFileError, UclError
from ucl.keys import MODELS
from ucl.loop import CheckpointMismatch, load_pt
from ucl.rundir import MODEL, saved_model

log = logging.getLogger(__name__)


def load_model(run_dir: Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a run's model from its model.pt; returns (model in eval mode, what was saved)."""
    import ucl.models  # noqa: F401  (registers the model families a model.pt names)

    run_dir = Path(run_dir)
    saved = load_pt(saved_model(run_dir), map_location=device)
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


def judge(generator: str) -> str | None:
    """The classifier that judged the GAN run `generator` (its config's `classifier=`), or
    None. Where that dir is gone, the run of the same name beside the GAN run, when it has
    the identity the GAN recorded for its classifier: the two were moved or copied
    together, as a pipeline's root is. Gone from both: ConfigError."""
    from ucl.lifecycle import read_metrics
    from ucl.rundir import read_config_record, run_identity

    path = (read_config_record(Path(generator)) or {}).get("classifier")
    if not path or Path(path).is_dir():
        return path
    beside = Path(generator).parent / Path(path).name
    recorded = (((read_metrics(Path(generator)) or {}).get("consumed") or {})
                .get("classifier") or {}).get("identity")  # fmt: skip
    try:
        if recorded and run_identity(beside) == recorded:
            return str(beside)
    except (UclError, OSError):  # no run there, or not that one
        pass
    raise ConfigError(
        f"generator={generator}: the classifier that judged it, {path}, is gone (and no run "
        f"with its identity is beside the GAN run); give classifier=<its run dir>"
    )


def load_generator(path: str, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """The run `generator=<run dir>` names: (its model, what was saved with it)."""
    return _load("generator", path, device)


def _load(key: str, path: str, device) -> tuple[torch.nn.Module, dict]:
    try:
        return load_model(Path(path), device)
    except MissingFileError as e:
        raise ConfigError(f"{key}={path}: {e}") from e


def _detail(e: Exception) -> str:
    """The lines of a load_state_dict error after its headline, shortened."""
    lines = [line.strip() for line in str(e).splitlines()]
    return " ".join(lines[1:] or lines)[:240]
