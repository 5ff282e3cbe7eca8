"""The training loop every task shares: iterations, evaluation, checkpoints, NaN guard,
interruption and resume. A task supplies what happens in one step and in one evaluation.

Checkpoints and saved models (`save_pt`, `load_pt`, `save_model`) are written atomically
and read with weights_only=True: checkpoint.pt to continue a run, model.pt for the runs
that link to it, samples.pt for a generative run's samples.

Evaluations run a model over a whole split a chunk of rows at a time, without gradients
(`chunks`, `map_chunks`, `mse_per_element`): their memory is bounded by `eval_batch_size`,
not by the split.

Resume is exact on the CPU: a checkpoint holds the model and optimizer states, the batch
order (generator state at the start of the epoch and the position in it), every RNG the
run draws from, the running averages and the history, so a run stopped and resumed ends
with the same metrics as the same run left alone.
"""

from __future__ import annotations

import io
import logging
import math
import re
import signal
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ucl.data import Batcher
from ucl.errors import (
    CorruptFileError,
    MissingFileError,
    NonFiniteLoss,
    UclError,
    UnreadableFileError,
)
from ucl.lifecycle import TRAIN_STEP, RunInterrupted, atomic_write, duration, hold, trapped
from ucl.rundir import MODEL

EVAL_EACH_EPOCH = "epoch"  # eval_every=epoch: evaluate at the end of every epoch

StepFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
EvalFn = Callable[[int], dict[str, float]]


@dataclass
class Loop:
    cfg: Any
    tracker: Any  # the run's Tracker (ucl.plots.training), which the loop logs to
    batcher: Batcher
    total_steps: int
    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any] = field(default_factory=dict)
    generators: dict[str, torch.Generator] = field(default_factory=dict)  # task RNGs
    step: int = 0
    last_eval: int = -1
    sums: dict[str, float] = field(default_factory=dict)  # running sums since the last eval
    count: int = 0
    # seconds spent training and evaluating, summed over every segment of a resumed run
    seconds: dict[str, float] = field(default_factory=lambda: {"train": 0.0, "eval": 0.0})
    record_seconds: dict[str, float] = field(default_factory=dict)  # metrics.json's seconds
    _last_tick: float | None = field(default=None, init=False, repr=False)

    @property
    def checkpoint_path(self) -> Path:
        return self.tracker.run_dir / CHECKPOINT

    # -- the loop -------------------------------------------------------------------------
    def run(
        self,
        train_step: StepFn,
        evaluate: EvalFn,
        on_epoch_end: Callable[[int, int], None] | None = None,
    ) -> None:
        """Train to `total_steps`. Evaluations fall on multiples of `eval_every` (or on
        epoch ends with `eval_every=epoch`) and on the final iteration, nowhere else, so
        every curve has a regular x-axis."""
        cfg = self.cfg
        ckpt_every = int(cfg.checkpoint_every)
        progress = Progress(
            self.total_steps, self.step, len(self.batcher), str(cfg.task), cfg.get("progress")
        )
        self._last_tick = time.perf_counter()
        hold_at = self.step + TRAIN_STEP  # where a test may hold "train"
        with trapped() as stop, _closing(progress, self):
            while self.step < self.total_steps:
                for module in self.modules.values():
                    module.train()
                for x, y in self.batcher.epoch_batches():
                    out = train_step(x, y)
                    self.step += 1
                    if self.step == hold_at:
                        hold("train")
                    self._accumulate(out)
                    for sched in self.schedulers.values():
                        sched.step()
                    done = self.step >= self.total_steps
                    epoch_ended = self.batcher.position == len(self.batcher)
                    if done or self._eval_due(epoch_ended):
                        self._evaluate(evaluate, progress)
                    if epoch_ended and on_epoch_end is not None:
                        on_epoch_end(self.batcher.epoch + 1, self.step)
                    progress.update(self.step, epoch_ended)
                    due = ckpt_every and self.step % ckpt_every == 0
                    if due or done or stop.signal is not None:
                        self.save_checkpoint()
                    if stop.signal is not None:
                        raise self._interrupted(stop.signal)
                    if done:
                        break
            if stop.signal is not None:  # it came after the last step's check
                raise self._interrupted(stop.signal)

    def _eval_due(self, epoch_ended: bool) -> bool:
        every = self.cfg.eval_every
        if every == EVAL_EACH_EPOCH:
            return epoch_ended
        return self.step % int(every) == 0

    def _interrupted(self, signum: int) -> RunInterrupted:
        return RunInterrupted(
            f"{signal.Signals(signum).name} at iteration {self.step}; checkpoint written to "
            f"{self.checkpoint_path}. Continue with resume={self.tracker.run_dir} (or re-run "
            f"the same sweep into the same sweep dir)",
            signum,
        )

    def _record_seconds(self) -> None:
        self._tick()
        self._last_tick = None
        self.record_seconds.update({k: round(v, 3) for k, v in self.seconds.items()})

    def _tick(self) -> None:
        """Charge the time since the last tick to training (an evaluation charges its own)."""
        if self._last_tick is not None:
            now = time.perf_counter()
            self.seconds["train"] += now - self._last_tick
            self._last_tick = now

    def _accumulate(self, out: dict[str, torch.Tensor]) -> None:
        for name, value in out.items():
            v = float(value)
            if not math.isfinite(v):
                raise NonFiniteLoss(
                    f"{name} became {v} at iteration {self.step}; stopped ({self._kept()}). "
                    f"A lower learning rate (lr=...) or a different seed usually helps."
                )
            self.sums[name] = self.sums.get(name, 0.0) + v
        self.count += 1

    def _evaluate(self, evaluate: EvalFn, progress: Progress) -> None:
        self._tick()
        t = time.perf_counter()
        averages = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        for module in self.modules.values():
            module.eval()
        with torch.no_grad():
            metrics = {**averages, **evaluate(self.step)}
        hold("eval")
        for module in self.modules.values():
            module.train()
        self.tracker.log(self.step, metrics)
        self.last_eval = self.step
        progress.metrics(metrics)
        self.seconds["eval"] += time.perf_counter() - t
        if self._last_tick is not None:
            self._last_tick = time.perf_counter()

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        self._tick()
        return training_state(self)

    def save_checkpoint(self) -> None:
        """Only finite state is ever written: the checkpoint before a divergence stays the
        last good one."""
        state = self.state_dict()
        bad = non_finite(state["modules"]) or non_finite(state["optimizers"])
        if bad:
            raise NonFiniteLoss(
                f"{bad} became non-finite at iteration {self.step}; stopped "
                f"({self._kept()}). A lower learning rate (lr=...) or a different seed "
                f"usually helps."
            )
        save_pt(self.checkpoint_path, state)

    def _kept(self) -> str:
        if self.checkpoint_path.exists():
            return f"the last good checkpoint is kept in {self.checkpoint_path}"
        return "no checkpoint had been written yet"

    def resume_if_possible(self) -> bool:
        """Load the run dir's checkpoint when there is one; True if it did."""
        if not self.checkpoint_path.exists():
            return False
        state = read_checkpoint(self.checkpoint_path)
        restore_parts(self, state, self.checkpoint_path)
        self.step, self.last_eval = int(state["step"]), int(state["last_eval"])
        self.sums, self.count = dict(state["sums"]), int(state["count"])
        self.seconds.update(state.get("seconds", {}))
        torch.set_rng_state(state["torch_rng"])
        # TensorBoard hides what the stopped run logged after the checkpoint; an evaluation
        # at the checkpoint's own iteration came before it and stays
        purge_from = self.step + 1 if self.last_eval == self.step else self.step
        self.tracker.restart_at(purge_from, state["history"])
        return True


@contextmanager
def _closing(progress: Progress, loop: Loop):
    """However the loop ends: the bar closed, the training time charged once."""
    try:
        yield
    finally:
        progress.close()
        loop._record_seconds()


def total_steps(cfg, batches_per_epoch: int) -> int:
    """`steps` when given, else `epochs` whole passes."""
    if cfg.get("steps") is not None:
        return int(cfg.steps)
    return int(cfg.epochs) * batches_per_epoch


# -- progress ------------------------------------------------------------------------------
log = logging.getLogger("ucl.progress")  # the name its lines carry in train.log
LOG_EVERY_SECONDS = 30.0


class Progress:
    """Progress of a training loop: a tqdm bar on a terminal; elsewhere (a log file, a batch
    job, a pipe) a log line at every epoch's end and at least every LOG_EVERY_SECONDS, with
    the iteration, the epochs done, the latest losses and the time left."""

    def __init__(self, total: int, initial: int, per_epoch: int, desc: str, show: bool | None):
        self.total, self.per_epoch, self.desc = total, max(per_epoch, 1), desc
        self.show_bar = sys.stderr.isatty() if show is None else bool(show)
        self.bar = tqdm(
            total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=False,
            disable=not self.show_bar,
        )  # fmt: skip
        self.start_step, self.started = initial, time.perf_counter()
        self.last_line = self.started
        self.latest: dict[str, float] = {}

    def update(self, step: int, epoch_ended: bool) -> None:
        self.bar.update(1)
        if self.show_bar:
            return
        now = time.perf_counter()
        if epoch_ended or now - self.last_line >= LOG_EVERY_SECONDS or step == self.total:
            self.last_line = now
            log.info("%s", self.line(step, now))

    def metrics(self, metrics: dict[str, float]) -> None:
        """The latest evaluation, shown beside the bar or in the next line."""
        self.latest = {k: float(v) for k, v in metrics.items() if k.endswith("loss")}
        self.bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in list(metrics.items())[-3:]})

    def line(self, step: int, now: float) -> str:
        elapsed = now - self.started
        done = step - self.start_step
        left = elapsed / done * (self.total - step) if done > 0 else float("nan")
        losses = ", ".join(f"{k} {v:.4g}" for k, v in self.latest.items())
        return (
            f"{self.desc}: iteration {step}/{self.total} "
            f"(epoch {step / self.per_epoch:.1f}/{self.total / self.per_epoch:.1f})"
            + (f", {losses}" if losses else "")
            + f", {duration(elapsed)} elapsed, {duration(left)} left"
        )

    def close(self) -> None:
        self.bar.close()


# -- evaluation in chunks ------------------------------------------------------------------
def chunks(x: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    for i in range(0, len(x), size):
        yield x[i : i + size]


def map_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int):
    """fn over x's rows, chunk by chunk, concatenated."""
    with torch.no_grad():
        return torch.cat([fn(xb) for xb in chunks(x, size)])


def mse_per_element(model_out: Callable, x: torch.Tensor, size: int) -> float:
    """Mean squared error per pixel/feature of model_out(x) against x."""
    total = 0.0
    with torch.no_grad():
        for xb in chunks(x, size):
            total += torch.sum((model_out(xb) - xb.flatten(1)) ** 2).item()
    return total / x[0].numel() / len(x)


# Checkpoints and saved models: written atomically, read with weights_only=True.

CHECKPOINT = "checkpoint.pt"
SAMPLES = "samples.pt"  # a generative run's final samples: {"samples": (N, D), "image_shape"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # torch's weights_only message carries terminal colours


class CheckpointMismatch(UclError, ValueError):
    """A readable checkpoint that belongs to a run with another config."""


def save_pt(path: Path, state: dict[str, Any]) -> None:
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


def load_pt(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
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


def check_checkpoint(run_dir: Path) -> None:
    """Read the checkpoint a job would resume from before the job writes anything:
    a corrupt or truncated one stops here, naming the file."""
    path = Path(run_dir) / CHECKPOINT
    if path.exists():
        read_checkpoint(path)


def forget_checkpoint(run_dir: Path) -> bool:
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
    state = load_pt(path)
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
    save_pt(path, state)
    return path
