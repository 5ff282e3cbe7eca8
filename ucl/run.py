"""One run: check the config, build the components from the registry, dispatch the task,
and record how it ended in metrics.json (completed, failed or interrupted)."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from ucl import rundir
from ucl.context import Context
from ucl.loop import RunInterrupted, sigterm_interrupts
from ucl.precision import resolve_precision
from ucl.registry import DATASETS, TASKS, load_all
from ucl.threads import available_cores, launcher_config, threads_per_job
from ucl.tracking import Tracker, read_metrics
from ucl.validate import ConfigError, validate

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> float | None:
    """Run the experiment `cfg` describes; returns test accuracy (or None) for sweepers."""
    load_all()
    run_dir = output_dir(cfg)
    # what the run dir holds decides what happens; nothing is written before these checks
    previous = read_metrics(run_dir)  # a corrupt metrics.json stops here, naming the file
    info = hydra_info(cfg)
    if cfg.get("resume"):  # the run's own config, and its own choices and overrides
        cfg = rundir.resumed_config(cfg, run_dir, info["overrides"], previous)
        info = {k: previous.get(k, v) for k, v in info.items()} if previous else info
    elif previous:
        rundir.check_same_job(previous, info["overrides"], run_dir)
    again = previous is not None and previous["status"] == "completed"
    if again and cfg.skip_completed:
        log.info("%s already completed; skipped (skip_completed=false runs it again)", run_dir)
        return previous.get("metrics", {}).get("test/accuracy")
    validate(cfg)
    device = resolve_device(cfg.device)
    if again:  # skip_completed=false: from iteration 0, not from the final checkpoint
        rundir.forget_checkpoint(run_dir)
    rundir.check_checkpoint(run_dir)  # a corrupt checkpoint stops here, naming the file
    threads = threads_per_job(cfg.get("threads"), launcher_config(), available_cores())
    if threads:
        torch.set_num_threads(threads)

    tracker = Tracker(run_dir)
    if again:
        tracker.restart_at(0, [])  # TensorBoard hides the curves of the last time
    precision = resolve_precision(cfg.get("precision", "fp32"), device)
    ctx = Context(cfg, None, device, tracker, precision=precision)
    record: dict[str, Any] = {"task": cfg.task, **info}
    tracker.finish("running", {**record, "metrics": {}})
    started = time.perf_counter()
    try:
        with sigterm_interrupts():  # SIGTERM outside the loop, too
            if cfg.get("dataset") is not None and cfg.dataset.get("name"):
                t = time.perf_counter()
                ctx.data = DATASETS.create(cfg.dataset.name, cfg).to(device)
                tracker.seconds["data"] = round(time.perf_counter() - t, 3)
                record["data"] = {
                    "name": ctx.data.name,
                    "synthetic": ctx.data.synthetic,
                    "train": len(ctx.data.y_train),
                    "test": len(ctx.data.y_test),
                }
            metrics = TASKS.get(cfg.task)(ctx)
    except (RunInterrupted, KeyboardInterrupt, SystemExit) as e:
        # Ctrl-C, SIGTERM, or a scheduler ending the job (submitit exits on a SLURM timeout)
        reason = str(e) if isinstance(e, RunInterrupted) else type(e).__name__
        _end(tracker, "interrupted", record, ctx, started, reason=reason)
        log.warning("interrupted: %s", reason)
        if isinstance(e, SystemExit):
            raise
        raise SystemExit(128 + getattr(e, "signum", signal.SIGINT)) from None
    except BaseException as e:
        reason = f"{type(e).__name__}: {e}"
        _end(tracker, "failed", record, ctx, started, reason=reason)
        log.error("run failed: %s (recorded in %s)", reason, run_dir / "metrics.json")
        raise
    _end(tracker, "completed", record, ctx, started, metrics=metrics)
    tracker.hparams(hparams(cfg), metrics)
    tracker.close()
    log.info("%s", ", ".join(f"{k}={_fmt(v)}" for k, v in metrics.items() if _scalar(v)))
    log.info("run dir: %s", run_dir)
    return metrics.get("test/accuracy")


def _end(tracker, status, record, ctx, started, metrics=None, reason=None) -> None:
    tracker.seconds["total"] = round(time.perf_counter() - started, 3)
    final = {**record, **ctx.record, "metrics": metrics or {}}
    final["env"] = {"device": str(ctx.device), "precision": ctx.precision}
    if reason:
        final["reason"] = reason
    tracker.finish(status, final)
    tracker.writer.flush()


def output_dir(cfg: DictConfig) -> Path:
    """The run dir: `resume=` names it; else Hydra's output dir for this job."""
    if cfg.get("resume"):
        path = Path(cfg.resume)
        if not path.is_dir():
            raise ConfigError(f"resume={cfg.resume!r} is not a run dir; give the dir of a run")
        return path
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:  # composed without @hydra.main (tests, notebooks)
        return Path(os.environ.get("UCL_RUN_DIR", "runs/adhoc"))


def hydra_info(cfg: DictConfig) -> dict[str, Any]:
    """The group choices and the command-line overrides of this job."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra")}
        return {"choices": dict(choices), "overrides": list(hc.overrides.task)}
    except ValueError:
        groups = ("model", "optimizer", "activation", "dataset")
        choices = {g: cfg[g].name for g in groups if cfg.get(g) is not None and "name" in cfg[g]}
        return {"choices": choices, "overrides": []}


def hparams(cfg: DictConfig) -> dict[str, Any]:
    """What the HParams tab compares: the group choices and the top-level knobs."""
    info = hydra_info(cfg)
    flat = {k: v for k, v in info["choices"].items() if v is not None}
    for key in ("hidden", "lr", "epochs", "steps", "batch_size", "seed"):
        if cfg.get(key) is not None:
            flat[key] = cfg[key]
    for override in info["overrides"]:
        key, _, value = override.partition("=")
        flat.setdefault(key.lstrip("+~"), value)
    return flat


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is available; use device=auto or cpu")
    return torch.device(name)


def _scalar(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)
