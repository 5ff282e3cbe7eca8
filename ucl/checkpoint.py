"""Checkpoints and saved models: written atomically, read with weights_only=True."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from ucl.errors import CorruptFileError, MissingFileError, UclError, UnreadableFileError
from ucl.lifecycle import atomic_write, hold
from ucl.rundir import MODEL

CHECKPOINT = "checkpoint.pt"
SAMPLES = "samples.pt"  # a generative run's final samples: {"samples": (N, D), "image_shape"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # torch's weights_only message carries terminal colours


class CheckpointMismatch(UclError, ValueError):
    """A readable checkpoint that belongs to a run with another config."""


def save(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue(), before_rename=lambda: hold("checkpoint"))


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
NAMED_PARTS = ("modules", "optimizers", "schedulers")  # each {name: state_dict}


def training_state(loop) -> dict[str, Any]:
    """Everything a Loop needs to continue exactly where it stopped (ucl.loop.Loop)."""
    return {
        "step": loop.step,
        "last_eval": loop.last_eval,
        "sums": dict(loop.sums),
        "count": loop.count,
        "batcher": loop.batcher.state_dict(),
        **{
            kind: {k: p.state_dict() for k, p in getattr(loop, kind).items()}
            for kind in NAMED_PARTS
        },
        "generators": {k: g.get_state() for k, g in loop.generators.items()},
        "torch_rng": torch.get_rng_state(),
        "history": loop.tracker.history,
        "seconds": dict(loop.seconds),
    }


def restore_parts(loop, state: dict[str, Any], path: Path) -> None:
    """Load a training state's batcher, named parts and generators into `loop`; a state
    whose parts do not fit (other names, other shapes) is a CheckpointMismatch."""
    try:
        loop.batcher.load_state_dict(state["batcher"])
        for kind in NAMED_PARTS:
            parts = getattr(loop, kind)
            _same_names(kind, parts, state[kind])
            for name, sd in state[kind].items():
                parts[name].load_state_dict(sd)
        _same_names("generators", loop.generators, state["generators"])
        for name, gs in state["generators"].items():
            loop.generators[name].set_state(gs)
    except (RuntimeError, ValueError, KeyError) as e:  # e.g. a tensor of another shape
        raise CheckpointMismatch(
            f"{path} does not fit this run ({str(e).splitlines()[0][:300]}). "
            f"It was written by a run with another config; resume with that config, "
            f"or move the checkpoint away to start afresh."
        ) from e


def _same_names(kind: str, have: dict, saved: dict) -> None:
    if set(have) != set(saved):
        raise KeyError(f"{kind}: the checkpoint holds {sorted(saved)}, this run has {sorted(have)}")


def check(run_dir: Path) -> None:
    """Read the checkpoint a job would resume from before the job writes anything:
    a corrupt or truncated one stops here, naming the file."""
    path = Path(run_dir) / CHECKPOINT
    if path.exists():
        read_checkpoint(path)


def forget(run_dir: Path) -> bool:
    """skip_completed=false on a completed run: it trains again from iteration 0, so the
    final checkpoint of the last time must not be resumed. True if there was one."""
    path = Path(run_dir) / CHECKPOINT
    if path.exists():
        path.unlink()
        return True
    return False


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
