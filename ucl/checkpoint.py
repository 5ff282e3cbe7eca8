"""Checkpoints and saved models: written atomically, read with weights_only=True."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from ucl.tracking import CorruptFileError, atomic_write

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # torch's weights_only message carries terminal colours


class CheckpointMismatch(ValueError):
    """A readable checkpoint that belongs to a run with another config."""


def save(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint or model file; a corrupt or truncated one is an error naming it.

    torch.load does not check the CRCs its own zip archive carries, so a file damaged in
    the middle would load with wrong numbers: the archive is checked first.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; check the run dir you gave.")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
        if damaged is not None:
            raise zipfile.BadZipFile(f"member {damaged} fails its CRC check")
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # whatever torch.load trips over, the file is at fault
        first_line = (_ANSI.sub("", str(e)).splitlines() or [""])[0][:200]
        raise CorruptFileError(
            f"{path} cannot be read ({type(e).__name__}: {first_line}); it is truncated, "
            f"corrupt or not a checkpoint written by ucl. Move it away to start that run "
            f"afresh (nothing else in the run dir was touched)."
        ) from e


def save_model(run_dir: Path, model: torch.nn.Module, cfg, data, **extra: Any) -> Path:
    """model.pt: the weights plus what rebuilds the model (plain types only, so that
    later experiments can load it with weights_only=True)."""
    from omegaconf import OmegaConf

    state = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": OmegaConf.to_container(cfg, resolve=True),
        "data": {
            "name": data.name,
            "in_features": data.in_features,
            "num_classes": data.num_classes,
            "class_names": list(data.class_names),
            "image_shape": list(data.image_shape) if data.image_shape else None,
        },
        **extra,
    }
    path = Path(run_dir) / MODEL
    save(path, state)
    return path


def load_model(run_dir: Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild a run's model from its model.pt (e.g. `classifier=runs/...`)."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from ucl.registry import MODELS, load_all

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run dir {run_dir} does not exist; give the dir of a finished run")
    saved = load(run_dir / MODEL, map_location=device)
    load_all()
    cfg = OmegaConf.create(saved["config"])
    data = SimpleNamespace(**saved["data"])
    model = MODELS.create(cfg.model.name, cfg, data)
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as e:  # e.g. weights of another shape or layout
        raise CheckpointMismatch(
            f"{run_dir / MODEL} does not fit the {cfg.model.name} model this version of ucl "
            f"builds from its config ({_detail(e)}). It was written "
            f"by another version (logreg and mlp store weights (outputs, inputs) since "
            f"2026-11-30); train it again with the config in {run_dir}/.hydra/config.yaml."
        ) from e
    return model.to(device).eval(), saved


def _detail(e: Exception) -> str:
    """The lines of a load_state_dict error after its headline, shortened."""
    lines = [line.strip() for line in str(e).splitlines()]
    return " ".join(lines[1:] or lines)[:240]
