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
    """Ctrl-C or SIGTERM: a checkpoint was written, the run can be resumed."""


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
        started = time.perf_counter()
        eval_seconds = 0.0
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
                        eval_seconds += self._evaluate(evaluate, bar)
                    if (ckpt_every and self.step % ckpt_every == 0) or done:
                        self.save_checkpoint()
                    if stop.signal is not None:
                        self.save_checkpoint()
                        raise RunInterrupted(
                            f"{stop.signal} at iteration {self.step}; checkpoint written to "
                            f"{self.checkpoint_path}. Continue with resume={self.tracker.run_dir}"
                        )
                    if done:
                        break
                else:  # the epoch ran to its end
                    if self.last_eval != self.step:
                        eval_seconds += self._evaluate(evaluate, bar)
                    if on_epoch_end is not None:
                        on_epoch_end(self.batcher.epoch, self.step)
        bar.close()
        total = time.perf_counter() - started
        self.tracker.seconds["train"] = round(total - eval_seconds, 3)
        self.tracker.seconds["eval"] = round(eval_seconds, 3)

    def _accumulate(self, out: dict[str, torch.Tensor]) -> None:
        for name, value in out.items():
            v = float(value)
            if not math.isfinite(v):
                raise NonFiniteLoss(
                    f"{name} became {v} at iteration {self.step}; stopped. The last good "
                    f"checkpoint is kept in {self.checkpoint_path}. A lower learning rate "
                    f"(lr=...) or a different seed usually helps."
                )
            self.sums[name] = self.sums.get(name, 0.0) + v
        self.count += 1

    def _evaluate(self, evaluate: EvalFn, bar) -> float:
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
        return time.perf_counter() - t

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
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
            "seconds": dict(self.tracker.seconds),
        }

    def save_checkpoint(self) -> None:
        checkpoint.save(self.checkpoint_path, self.state_dict())

    def resume_if_possible(self) -> bool:
        """Load the run dir's checkpoint when there is one; True if it did."""
        if not self.checkpoint_path.exists():
            return False
        state = checkpoint.load(self.checkpoint_path)
        self.step, self.last_eval = int(state["step"]), int(state["last_eval"])
        self.sums, self.count = dict(state["sums"]), int(state["count"])
        self.batcher.load_state_dict(state["batcher"])
        for name, sd in state["modules"].items():
            self.modules[name].load_state_dict(sd)
        for name, sd in state["optimizers"].items():
            self.optimizers[name].load_state_dict(sd)
        for name, sd in state["schedulers"].items():
            self.schedulers[name].load_state_dict(sd)
        for name, gs in state["generators"].items():
            self.generators[name].set_state(gs)
        torch.set_rng_state(state["torch_rng"])
        self.tracker.restart_at(self.step, state["history"])
        return True


def total_steps(cfg, batches_per_epoch: int) -> int:
    """`steps` when given, else `epochs` whole passes."""
    if cfg.get("steps") is not None:
        return int(cfg.steps)
    return int(cfg.epochs) * batches_per_epoch


def _bar_disabled(progress: bool | None) -> bool | None:
    return None if progress is None else not progress  # None: tqdm decides (terminal only)


@dataclass
class _Stop:
    signal: str | None = None


@contextmanager
def _trap_signals():
    """Ctrl-C / SIGTERM set a flag the loop checks after each step; a second Ctrl-C
    stops at once. Outside the main thread signals cannot be trapped: left as they are."""
    stop = _Stop()
    previous = {}

    def handler(signum, frame):
        if stop.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.signal = signal.Signals(signum).name

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
