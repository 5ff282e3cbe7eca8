"""One run: check the config, build the components from the registry, dispatch the task,
and record how it ended in metrics.json (completed, failed or interrupted)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from ucl import lifecycle, rundir
from ucl.errors import ConfigError
from ucl.keys import DATASETS, TASKS, split_override
from ucl.lifecycle import Threads, is_number, read_metrics, remove_stale_temps
from ucl.schema import load_all, validate

if TYPE_CHECKING:
    import torch

    from ucl.context import Context

log = logging.getLogger(__name__)
TASK_SETTINGS_CHOICE = "task@task_settings"  # Hydra's name for the choice of conf/task/


def run(cfg: DictConfig, run_dir: Path | None = None) -> float | None:
    """Run the experiment `cfg` describes into `run_dir` (default: `resume=`'s dir, else
    Hydra's output dir for this job); returns the final metric `objective` names (test
    accuracy by default; None for a task without it), which a sweeper optimises.

    Nothing is written into the run dir until every check has passed and the data has
    loaded, so a refused job (bad value, another experiment in the dir, a corrupt file, a
    dir in use) leaves the dir as it was, and no new dir behind. From the first write to the
    last, a run ends "completed", "interrupted" with a checkpoint, or "failed"
    (ucl/lifecycle.py).
    """
    made = lifecycle.hydra_dir()  # Hydra makes its dir even for resume=
    with lifecycle.Claim(made=made) as claim:
        run_dir = claim.take(output_dir(cfg, run_dir), check=rundir.check_ours)
        return _run_locked(cfg, run_dir)


def _run_locked(cfg: DictConfig, run_dir: Path) -> float | None:
    # what the run dir holds decides what happens; nothing is written before these checks
    previous = read_metrics(run_dir)  # a corrupt metrics.json stops here, naming the file
    info = hydra_info(cfg)
    if cfg.get("resume"):  # the run's own config, and its own choices and overrides
        cfg = rundir.resumed_config(cfg, run_dir, info["overrides"], previous)
        info = {k: previous.get(k, v) for k, v in info.items()} if previous else info
    else:
        rundir.check_same_job(run_dir, cfg, info["overrides"], previous)
    again = previous is not None and previous["status"] == "completed"
    if not (again and cfg.skip_completed):  # a completed run is skipped, whatever it read
        rundir.check_links(cfg.get("task_settings"))  # a wrong classifier= path: refused here
    # torch loads from here on, so that a dir or a path refused above is answered at once
    from ucl.context import Context, resolve_precision
    from ucl.loop import check_checkpoint
    from ucl.plots.training import Tracker

    load_all()
    if again and cfg.skip_completed:
        from ucl.data import fingerprint_of_config  # skipped only on the data it ran on

        rundir.check_same_data(run_dir, previous, fingerprint_of_config(cfg))
        log.info("%s already completed; skipped (skip_completed=false runs it again)", run_dir)
        return objective(cfg, previous.get("metrics", {}))
    try:
        validate(cfg)
    except ConfigError as e:
        if not cfg.get("resume"):
            raise
        # the run's own config, written by another version of ucl (keys moved since)
        raise ConfigError(
            f"resume={run_dir}: the run's own {rundir.CONFIG_RECORD} fails today's checks "
            f"({e}); it cannot be continued by this version of ucl: start it again in a new dir"
        ) from e
    taken = rundir.consumed(cfg, info.get("choices"))  # a malformed consumed.KEY: refused here too
    device = resolve_device(cfg.device)
    if not again:
        check_checkpoint(run_dir)  # a corrupt checkpoint stops here, naming the file
    threads = Threads(cfg.get("threads"), device)  # given or the launcher's: set from here
    lifecycle.at_run(run_dir)
    lifecycle.hold("data")
    data, data_seconds = _load_data(cfg, device)
    if not again and data is not None:  # a continuation trains on the data it started with
        rundir.check_same_data(run_dir, previous, data.fingerprint)
    if data is not None and "latent" in (cfg.get("task_settings") or {}):
        from ucl.latent import check_against_data

        check_against_data(cfg.task_settings.latent, data)

    # -- the first write ------------------------------------------------------------------
    remove_stale_temps(run_dir)  # left by a killed writer; we hold the lock, so no live one
    rundir.write_config_record(run_dir, cfg)
    file_log = _log_to(run_dir / "train.log")
    try:
        header: dict[str, Any] = {"task": cfg.task, **info, "identity": rundir.identity_hash(cfg)}
        if (slurm := lifecycle.slurm_info()) is not None:
            header["slurm"] = slurm
        header["code"] = rundir.code_version()  # not the identity: a new commit resumes
        if taken:  # what the run read from earlier runs and tables, so a pipeline sees a change
            header["consumed"] = taken
        if data is not None:
            header["data"] = {
                "name": data.name,
                "synthetic": data.synthetic,
                "train": len(data.y_train),
                "test": len(data.y_test),
                "fingerprint": data.fingerprint,
            }
        precision = resolve_precision(cfg.get("precision", "fp32"), device)
        env = {"device": str(device), "precision": precision}
        record = lifecycle.Record(run_dir, header, env, threads)
        if data_seconds is not None:
            record.seconds["data"] = data_seconds
        tracker = Tracker(run_dir)
        ctx = Context(cfg, data, device, tracker, record, threads, precision=precision)
        return _train(cfg, ctx, run_dir, again)
    finally:
        logging.getLogger().removeHandler(file_log)
        file_log.close()


def _load_data(cfg: DictConfig, device: torch.device):
    if cfg.get("dataset") is None or not cfg.dataset.get("name"):
        return None, None
    t = time.perf_counter()
    data = DATASETS.create(cfg.dataset.name, cfg).to(device)
    return data, round(time.perf_counter() - t, 3)


def _train(cfg, ctx: Context, run_dir: Path, again: bool):
    from ucl.loop import forget_checkpoint

    ctx.record.running()
    if again:  # skip_completed=false: from iteration 0, not from the final checkpoint. The
        # record says running first: a kill from here on leaves a run to continue, never
        # a "completed" one without its checkpoint and history
        forget_checkpoint(run_dir)
        ctx.tracker.restart_at(0, [])  # TensorBoard hides the curves of the last time

    def report(metrics: dict) -> None:
        log.info("%s", ", ".join(f"{k}={_fmt(v)}" for k, v in metrics.items() if is_number(v)))
        log.info("run dir: %s", run_dir)

    metrics = lifecycle.run_task(
        lambda: TASKS.get(cfg.task)(ctx),
        ctx.record,
        finish=lambda metrics: ctx.tracker.hparams(hparams(cfg), metrics),
        close=ctx.tracker.close,
        report=report,
    )
    return objective(cfg, metrics)


def objective(cfg: DictConfig, metrics: dict) -> float | None:
    """What a job hands a sweeper: the final metric `objective` names. A search names
    val/accuracy, so that the test set stays out of the choosing."""
    name = cfg.get("objective") or DEFAULT_OBJECTIVE
    if name == DEFAULT_OBJECTIVE:
        return metrics.get(name)
    if metrics.get(name) is None:
        have = ", ".join(sorted(k for k, v in metrics.items() if is_number(v)))
        hint = " (val/... needs dataset.validation=N, e.g. 5000)" if name.startswith("val/") else ""
        raise ConfigError(
            f"objective={name!r}: the run reported no such metric{hint}; it reports: "
            f"{have or 'none'}"
        )
    return float(metrics[name])


DEFAULT_OBJECTIVE = "test/accuracy"


def _log_to(path: Path) -> logging.Handler:
    """train.log in the run dir, attached only once the run is accepted (Hydra's own
    logging writes to the terminal alone, so a refused job writes no log there)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def output_dir(cfg: DictConfig, given: Path | None = None) -> Path:
    """The run dir: `resume=` names it; else the one given (a config composed without
    @hydra.main: scripts, tests, notebooks); else Hydra's output dir for this job."""
    if cfg.get("resume"):
        return rundir.check_resume_dir(str(cfg.resume))
    if given is not None:
        return Path(given)
    return lifecycle.hydra_dir() or Path("runs/adhoc")


def hydra_info(cfg: DictConfig) -> dict[str, Any]:
    """The group choices and the command-line overrides of this job."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        # the task's settings are chosen by the model file (or the preset): that choice says
        # nothing the model's does not, so metrics.json and the HParams tab leave it out
        choices = {
            k: v
            for k, v in hc.runtime.choices.items()
            if not k.startswith("hydra") and k != TASK_SETTINGS_CHOICE
        }
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
        key, value = split_override(override)
        flat.setdefault(key, value)
    return flat


def resolve_device(name: str) -> torch.device:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is available; use device=auto or cpu")
    return torch.device(name)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)
