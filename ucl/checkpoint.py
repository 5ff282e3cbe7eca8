"""Checkpoints and saved models: written atomically, read with weights_only=True."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from ucl.errors import CorruptFileError, MissingFileError, UclError, UnreadableFileError
from ucl.files import atomic_write

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
SAMPLES = "samples.pt"  # a generative run's final samples: {"samples": (N, D), "image_shape"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # torch's weights_only message carries terminal colours


class CheckpointMismatch(UclError, ValueError):
    """A readable checkpoint that belongs to a run with another config."""


def save(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())


def non_finite(tree: Any, name: str = "") -> str | None:
    """The name of the first floating-point tensor in `tree` (nested dicts and lists of a
    state dict) holding NaN or infinity, or None when all are finite."""
    if isinstance(tree, torch.Tensor):
        bad = tree.is_floating_point() and not bool(torch.isfinite(tree).all())
        return name or "a tensor" if bad else None
    items = (
        tree.items()
        if isinstance(tree, dict)
        else enumerate(tree)
        if isinstance(tree, (list, tuple))
        else ()
    )
    for key, value in items:
        found = non_finite(value, f"{name}.{key}" if name else str(key))
        if found:
            return found
    return None


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint or model file; a corrupt or truncated one is an error naming it.

    torch.load does not check the CRCs its own zip archive carries, so a file damaged in
    the middle would load with wrong numbers: the archive is checked first.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path} does not exist; check the run dir you gave.")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
        if damaged is not None:
            raise zipfile.BadZipFile(f"member {damaged} fails its CRC check")
        return torch.load(path, map_location=map_location, weights_only=True)
    except MemoryError as e:
        raise MemoryError(
            f"{path}: out of memory while loading it (the file itself may be fine); free "
            f"memory or load it on a machine with more."
        ) from e
    except PermissionError as e:
        raise UnreadableFileError(
            f"{path} cannot be read: permission denied ({e.strerror}); the file may be fine. "
            f"Give this user read access (chmod/chown) and run again."
        ) from e
    except OSError as e:
        if not isinstance(e, zipfile.BadZipFile) and e.errno is not None:
            raise UnreadableFileError(
                f"{path} cannot be read: {e.strerror} (errno {e.errno}); the file may be "
                f"fine. Check the disk or the file system and run again."
            ) from e
        raise _corrupt(path, e) from e
    except Exception as e:  # a format error: the archive or its pickle is damaged
        raise _corrupt(path, e) from e


def _corrupt(path: Path, e: Exception) -> CorruptFileError:
    first_line = (_ANSI.sub("", str(e)).splitlines() or [""])[0][:200]
    return CorruptFileError(
        f"{path} cannot be read ({type(e).__name__}: {first_line}); it is truncated, "
        f"corrupt or not a checkpoint written by ucl. Move it away to start that run "
        f"afresh (nothing else in the run dir was touched)."
    )


CHECKPOINT_KEYS = (
    "step", "last_eval", "sums", "count", "batcher", "modules", "optimizers", "schedulers",
    "generators", "torch_rng", "history",
)  # fmt: skip


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A Loop checkpoint, checked: unreadable, truncated or incomplete is an error naming it.
    Cheap enough to call before a run writes anything into its run dir."""
    state = load(path)
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CorruptFileError(
            f"{path} is not a training checkpoint (missing {', '.join(missing)}). Move it "
            f"away to start that run afresh (nothing else in the run dir was touched)."
        )
    return state


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
