"""What a run dir already holds decides what a job does in it: skip it (completed),
continue it (a checkpoint is there), start it again (skip_completed=false), or refuse
(the dir holds a different job, or a file in it is corrupt).

Every check here runs before the job writes anything, so a refused job leaves its run dir
exactly as it found it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ucl import checkpoint
from ucl.loop import read_checkpoint
from ucl.validate import ConfigError

# Knobs that say how or where a run executes, not what it computes: they may differ
# between a run and its continuation (resume=, a re-run sweep) without changing a number.
RUNTIME_KEYS = frozenset(
    {
        "resume",
        "skip_completed",
        "device",
        "threads",
        "progress",
        "checkpoint_every",
        "dataset.root",
        "dataset.idx_dir",
        "dataset.download",
    }
)
SAVED_CONFIG = Path(".hydra") / "config.yaml"  # Hydra's copy of the job's composed config


def resumed_config(
    cfg: DictConfig, run_dir: Path, given: list[str], previous: dict | None
) -> DictConfig:
    """`resume=<run dir>`: the run goes on with the config it was started with.

    Keys given on the command line beside `resume=` must agree with that config, except
    the RUNTIME_KEYS, which are taken from the command line.
    """
    saved_path = run_dir / SAVED_CONFIG
    if not saved_path.exists():  # not started by train.py: the command line's config it is
        return cfg
    saved = OmegaConf.load(saved_path)
    saved_choices = (previous or {}).get("choices", {})
    for item in given:
        key = _key(item)
        if key is None:
            continue
        if key in RUNTIME_KEYS:
            OmegaConf.update(saved, key, _plain(OmegaConf.select(cfg, key)), force_add=True)
            continue
        if key in saved_choices:  # a config group (model=mlp): compare the choices
            now, before = item.partition("=")[2], saved_choices[key]
        else:
            now = _plain(OmegaConf.select(cfg, key, default=None))
            before = _plain(OmegaConf.select(saved, key, default=None))
        if now != before:
            raise ConfigError(
                f"resume={run_dir}: {item!r} differs from the run's own {key}={before!r}. "
                f"A resumed run keeps the config it was started with (only "
                f"{', '.join(sorted(RUNTIME_KEYS))} may change); drop {key}= from the "
                f"command line, or start a new run to try another value."
            )
    OmegaConf.update(saved, "resume", str(cfg.resume), force_add=True)
    return saved


def check_same_job(previous: dict, given: list[str], run_dir: Path) -> None:
    """A job finding another job's metrics.json in its dir (a sweep re-run into the same
    sweep dir with other values): refuse, rather than skip or resume the wrong run."""
    before = _job_identity(previous.get("overrides", []))
    now = _job_identity(given)
    if before != now:
        changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
        raise ConfigError(
            f"{run_dir} holds a run of another job (it differs in "
            f"{', '.join(f'{k}: {before.get(k)!r} there, {now.get(k)!r} here' for k in changed)})."
            f" Give this sweep its own hydra.sweep.dir (or this run its own hydra.run.dir), "
            f"or delete {run_dir} to replace that run."
        )


def check_checkpoint(run_dir: Path) -> None:
    """Read the checkpoint a job would resume from before the job writes anything:
    a corrupt or truncated one stops here, naming the file."""
    path = run_dir / checkpoint.CHECKPOINT
    if path.exists():
        read_checkpoint(path)


def forget_checkpoint(run_dir: Path) -> bool:
    """skip_completed=false on a completed run: it trains again from iteration 0, so the
    final checkpoint of the last time must not be resumed. True if there was one."""
    path = run_dir / checkpoint.CHECKPOINT
    if path.exists():
        path.unlink()
        return True
    return False


def _key(item: str) -> str | None:
    """The config key an override sets; None for Hydra's own keys."""
    key = item.partition("=")[0].lstrip("+~")
    return None if key == "hydra" or key.startswith(("hydra.", "hydra/")) else key


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _job_identity(overrides: list[str]) -> dict[str, str]:
    """key -> value of the overrides that change what a job computes."""
    identity = {}
    for item in overrides:
        key = _key(item)
        if key is not None and key not in RUNTIME_KEYS:
            identity[key] = item.partition("=")[2]
    return identity
