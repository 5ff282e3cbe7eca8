"""The training loop every task shares: iterations, evaluation, checkpoints, NaN guard,
interruption and resume. A task supplies what happens in one step and in one evaluation.

Resume is exact on the CPU: a checkpoint holds the model and optimizer states, the batch
order (generator state at the start of the epoch and the position in it), every RNG the
run draws from, the running averages and the history, so a run stopped and resumed ends
with the same metrics as the same run left alone.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ucl import checkpoint
from ucl.data.batcher import Batcher
from ucl.tracking import Tracker


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM: a checkpoint was written, the run can be resumed.
    `signum` is the signal, so that the process can exit with 128 + signum."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


StepFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
EvalFn = Callable[[int], dict[str, float]]


@dataclass
class Loop:
    cfg: Any
    tracker: Tracker
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
    _last_tick: float | None = field(default=None, init=False, repr=False)

    @property
    def checkpoint_path(self) -> Path:
        return self.tracker.run_dir / checkpoint.CHECKPOINT

    # -- the loop -------------------------------------------------------------------------
    def run(
        self,
        train_step: StepFn,
        evaluate: EvalFn,
        on_epoch_end: Callable[[int, int], None] | None = None,
    ) -> None:
        cfg = self.cfg
        eval_every = int(cfg.eval_every)
        ckpt_every = int(cfg.checkpoint_every)
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=_bar_disabled(cfg.get("progress")),
            desc=str(cfg.task),
            dynamic_ncols=True,
            leave=False,
        )
        self._last_tick = time.perf_counter()
        with _trap_signals() as stop:
            while self.step < self.total_steps:
                for module in self.modules.values():
                    module.train()
                for x, y in self.batcher.epoch_batches():
                    out = train_step(x, y)
                    self.step += 1
                    self._accumulate(out)
                    for sched in self.schedulers.values():
                        sched.step()
                    bar.update(1)
                    done = self.step >= self.total_steps
                    if self.step % eval_every == 0 or done:
                        self._evaluate(evaluate, bar)
                    due = ckpt_every and self.step % ckpt_every == 0
                    if due or done or stop.signal is not None:
                        self.save_checkpoint()
                    if stop.signal is not None:
                        bar.close()
                        self._record_seconds()
                        raise RunInterrupted(
                            f"{signal.Signals(stop.signal).name} at iteration {self.step}; "
                            f"checkpoint written to {self.checkpoint_path}. Continue with "
                            f"resume={self.tracker.run_dir} (or re-run the same sweep into "
                            f"the same sweep dir)",
                            stop.signal,
                        )
                    if done:
                        # the last step may also end its epoch: the generator has not
                        # returned yet, so that epoch's end is marked here
                        if on_epoch_end is not None and self.batcher.position == len(self.batcher):
                            on_epoch_end(self.batcher.epoch + 1, self.step)
                        break
                else:  # the epoch ran to its end
                    if self.last_eval != self.step:
                        self._evaluate(evaluate, bar)
                    if on_epoch_end is not None:
                        on_epoch_end(self.batcher.epoch, self.step)
        bar.close()
        self._record_seconds()

    def _record_seconds(self) -> None:
        self._tick()
        self._last_tick = None
        self.tracker.seconds.update({k: round(v, 3) for k, v in self.seconds.items()})

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
                kept = (
                    f"the last good checkpoint is kept in {self.checkpoint_path}"
                    if self.checkpoint_path.exists()
                    else "no checkpoint had been written yet"
                )
                raise NonFiniteLoss(
                    f"{name} became {v} at iteration {self.step}; stopped ({kept}). A lower "
                    f"learning rate (lr=...) or a different seed usually helps."
                )
            self.sums[name] = self.sums.get(name, 0.0) + v
        self.count += 1

    def _evaluate(self, evaluate: EvalFn, bar) -> None:
        self._tick()
        t = time.perf_counter()
        averages = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        for module in self.modules.values():
            module.eval()
        with torch.no_grad():
            metrics = {**averages, **evaluate(self.step)}
        for module in self.modules.values():
            module.train()
        self.tracker.log(self.step, metrics)
        self.last_eval = self.step
        bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in list(metrics.items())[-3:]})
        self.seconds["eval"] += time.perf_counter() - t
        if self._last_tick is not None:
            self._last_tick = time.perf_counter()

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        self._tick()
        return {
            "step": self.step,
            "last_eval": self.last_eval,
            "sums": dict(self.sums),
            "count": self.count,
            "batcher": self.batcher.state_dict(),
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "generators": {k: g.get_state() for k, g in self.generators.items()},
            "torch_rng": torch.get_rng_state(),
            "history": self.tracker.history,
            "seconds": dict(self.seconds),
        }

    def save_checkpoint(self) -> None:
        checkpoint.save(self.checkpoint_path, self.state_dict())

    def resume_if_possible(self) -> bool:
        """Load the run dir's checkpoint when there is one; True if it did."""
        if not self.checkpoint_path.exists():
            return False
        state = read_checkpoint(self.checkpoint_path)
        try:
            self.batcher.load_state_dict(state["batcher"])
            for kind, parts in (
                ("modules", self.modules),
                ("optimizers", self.optimizers),
                ("schedulers", self.schedulers),
            ):
                _same_names(kind, parts, state[kind], self.checkpoint_path)
                for name, sd in state[kind].items():
                    parts[name].load_state_dict(sd)
            _same_names("generators", self.generators, state["generators"], self.checkpoint_path)
            for name, gs in state["generators"].items():
                self.generators[name].set_state(gs)
        except (RuntimeError, ValueError, KeyError) as e:  # e.g. a tensor of another shape
            raise checkpoint.CheckpointMismatch(
                f"{self.checkpoint_path} does not fit this run ({str(e).splitlines()[0][:300]}). "
                f"It was written by a run with another config; resume with that config, "
                f"or move the checkpoint away to start afresh."
            ) from e
        self.step, self.last_eval = int(state["step"]), int(state["last_eval"])
        self.sums, self.count = dict(state["sums"]), int(state["count"])
        self.seconds.update(state.get("seconds", {}))
        torch.set_rng_state(state["torch_rng"])
        # TensorBoard hides what the stopped run logged after the checkpoint; an evaluation
        # at the checkpoint's own iteration came before it and stays
        purge_from = self.step + 1 if self.last_eval == self.step else self.step
        self.tracker.restart_at(purge_from, state["history"])
        return True


CHECKPOINT_KEYS = (
    "step", "last_eval", "sums", "count", "batcher", "modules", "optimizers", "schedulers",
    "generators", "torch_rng", "history",
)  # fmt: skip


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A Loop checkpoint, checked: unreadable, truncated or incomplete is an error naming it.
    Cheap enough to call before a run writes anything into its run dir."""
    state = checkpoint.load(path)
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise checkpoint.CorruptFileError(
            f"{path} is not a training checkpoint (missing {', '.join(missing)}). Move it "
            f"away to start that run afresh (nothing else in the run dir was touched)."
        )
    return state


def _same_names(kind: str, have: dict, saved: dict, path: Path) -> None:
    if set(have) != set(saved):
        raise KeyError(f"{kind}: the checkpoint holds {sorted(saved)}, this run has {sorted(have)}")


def total_steps(cfg, batches_per_epoch: int) -> int:
    """`steps` when given, else `epochs` whole passes."""
    if cfg.get("steps") is not None:
        return int(cfg.steps)
    return int(cfg.epochs) * batches_per_epoch


def _bar_disabled(progress: bool | None) -> bool | None:
    return None if progress is None else not progress  # None: tqdm decides (terminal only)


@dataclass
class _Stop:
    signal: int | None = None  # the signal number once one arrived


@contextmanager
def _trap_signals():
    """Ctrl-C / SIGTERM set a flag the loop checks after each step; a second Ctrl-C
    stops at once. Outside the main thread signals cannot be trapped: left as they are."""
    stop = _Stop()

    def handler(signum, frame):
        if stop.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.signal = signum

    with _handlers(handler):
        yield stop


@contextmanager
def sigterm_interrupts():
    """Around a whole run: outside the loop (loading data, the task's last figures) SIGTERM
    stops the run as an exception, the way Ctrl-C does, so that the run can still record
    "interrupted" in metrics.json. Inside the loop `_trap_signals` takes over."""

    def handler(signum, frame):
        raise RunInterrupted(f"{signal.Signals(signum).name} outside the training loop", signum)

    with _handlers(handler, (signal.SIGTERM,)):
        yield


@contextmanager
def _handlers(handler, signals=(signal.SIGINT, signal.SIGTERM)):
    previous = {}
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (e.g. a thread-based launcher)
        pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
