"""What a task receives and trains with: the config, the loaded data, the device, the run's
record and tracker (`Context`); the optimizers and learning-rate schedules built from the
`optimizer` config group; and the arithmetic of training steps (`precision`).

Precision: `precision=fp32`, `bf16` or `auto`. bf16 runs a step's forward pass under
autocast: matrix products in bfloat16 (8-bit mantissa), with the reductions that need range
(softmax, losses) and the weights and their updates kept in float32. On a CPU with native
bfloat16 (avx512_bf16 or AMX) the products of the GAN's MLPs run about 1.7x faster; on one
without, bfloat16 is emulated and slower than fp32, so `auto` picks it only where the
hardware has it. Evaluations, figures and samples always run in fp32.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ucl.data import Batcher, DataLoaderBatcher, Splits
from ucl.errors import ConfigError
from ucl.keys import MODELS, OPTIMIZERS
from ucl.lifecycle import Record, Threads, as_given, is_list, is_number
from ucl.loop import Loop, total_steps
from ucl.plots.training import Tracker


@dataclass
class Context:
    cfg: Any
    data: Splits | None
    device: torch.device
    tracker: Tracker  # TensorBoard, history.csv, figures
    record: Record  # metrics.json; a task adds its own keys: ctx.record["judge"] = ...
    threads: Threads  # the thread count; on a CPU with threads=auto the loop decides it
    precision: str = "fp32"  # training steps' arithmetic, resolved: fp32 or bf16 (below)

    @property
    def run_dir(self) -> Path:
        return self.tracker.run_dir

    def autocast(self):
        """Around one training step's forward pass and loss: bf16 autocast or nothing."""
        return autocast(self.device, self.precision)

    def train_eval(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training rows the curves' train points are measured on (task_settings.
        train_eval_size: a fixed seeded subset, so an evaluation costs a fraction of a full
        pass); metrics.json says which under `train_eval`."""
        size = (self.cfg.get("task_settings") or {}).get("train_eval_size")
        x, y = self.data.train_eval(size, int(self.cfg.seed))
        self.record["train_eval"] = {"rows": len(y), "of": len(self.data.y_train)}
        return x, y

    @property
    def train_label(self) -> str:
        """How the curves name the train points: 'train' or 'train (10000 of 55000)'."""
        seen = self.record.get("train_eval")
        if not seen or seen["rows"] == seen["of"]:
            return "train"
        return f"train ({seen['rows']} of {seen['of']})"

    def batcher(
        self, x: torch.Tensor | None = None, y: torch.Tensor | None = None, least: int = 1
    ) -> Batcher:
        """Training batches: the whole-tensor batcher, or the problem set's DataLoader
        path when `dataset.loader=dataloader`; a last batch under `least` is left out."""
        cfg = self.cfg
        loader = cfg.dataset.get("loader", "tensor")
        size, seed = int(cfg.batch_size), int(cfg.seed)
        if loader == "dataloader" and x is None:
            train = self.data.torch_datasets["train"]
            return DataLoaderBatcher(train, size, self.device, seed, least=least)
        x = self.data.x_train if x is None else x
        y = self.data.y_train if y is None else y
        return Batcher(x, y, size, seed=seed, least=least)

    def build_model(self) -> torch.nn.Module:
        """The config's model from the registry, seeded (parameter init and dropout), on
        the device."""
        torch.manual_seed(int(self.cfg.seed))
        return MODELS.create(self.cfg.model.name, self.cfg, self.data).to(self.device)

    def training(
        self,
        modules: dict[str, torch.nn.Module],
        optimize: dict[str, torch.nn.Module],
        generators: dict[str, torch.Generator] | None = None,
    ) -> tuple[dict[str, torch.optim.Optimizer], Loop]:
        """The path every task trains by: one optimizer (and schedule) from `cfg.optimizer`
        per entry of `optimize` ({name: module whose parameters it updates}), and a Loop over
        the training split that checkpoints `modules`, the optimizers, their schedules and
        `generators`. Returns ({name: optimizer}, loop)."""
        batcher = self.batcher(least=2 if any(map(has_batch_norm, modules.values())) else 1)
        steps = total_steps(self.cfg, len(batcher))
        optimizers, schedulers = {}, {}
        for name, module in optimize.items():
            optimizers[name], sched = build_optimizer(
                self.cfg.optimizer, module.parameters(), steps
            )
            if sched is not None:
                schedulers["lr" if len(optimize) == 1 else f"lr_{name}"] = sched
        loop = self.loop(
            batcher,
            steps,
            modules=modules,
            optimizers=optimizers,
            schedulers=schedulers,
            generators=generators or {},
        )
        return optimizers, loop

    def model_and_loop(self, **generators: torch.Generator):
        """The common case: the config's model with one optimizer. Returns (model, opt, loop)."""
        model = self.build_model()
        optimizers, loop = self.training({"model": model}, {"optimizer": model}, generators)
        return model, optimizers["optimizer"], loop

    def loop(self, batcher: Batcher, total_steps: int, **components) -> Loop:
        """A Loop over this run; picks up the run dir's checkpoint when there is one."""
        modules = components.get("modules", {})
        params = sum(p.numel() for m in modules.values() for p in m.parameters())
        self.threads.for_step(float(batcher.batch_size) * params)  # multiply-adds per step
        loop = Loop(
            self.cfg,
            self.tracker,
            batcher,
            total_steps,
            record_seconds=self.record.seconds,
            **components,
        )
        if loop.resume_if_possible():
            logging.getLogger(__name__).info(
                "resumed from %s at iteration %d", loop.checkpoint_path, loop.step
            )
        return loop


def has_batch_norm(module: torch.nn.Module) -> bool:
    """Whether `module` holds batch norm, which cannot train on a batch of one example."""
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())


# -- optimizers and schedules ---------------------------------------------------------------
def _check_settings(kwargs: dict) -> None:
    """The optimizers' settings are numbers in range, said with the key and what it takes:
    torch names no key ("Invalid momentum value: -1"), and takes a running average's weight
    of 1 or more, where the past never fades and the run drifts or ends in NaN."""
    decay = "in [0, 1), the weight on the past of its running average"
    ranges = {  # key: (in range, what it takes, an example)
        "momentum": (lambda v: 0 <= v < 1, decay, 0.9),
        "alpha": (lambda v: 0 <= v < 1, decay, 0.99),
        "weight_decay": (lambda v: v >= 0, ">= 0 (0: none)", 0.0001),
        "eps": (lambda v: v > 0, "> 0", 1e-8),
    }
    for key, (fits, takes, example) in ranges.items():
        if key in kwargs and not (is_number(kwargs[key], finite=True) and fits(kwargs[key])):
            raise ValueError(
                f"optimizer.{key}={kwargs[key]} must be {takes}; e.g. optimizer.{key}={example}"
            )
    betas = kwargs.get("betas", (0.9, 0.999))
    pair = is_list(betas) and len(betas) == 2
    if not (pair and all(is_number(b, finite=True) and 0 <= b < 1 for b in betas)):
        raise ValueError(
            f"optimizer.betas={as_given(betas)} must be two numbers in [0, 1), the decays of "
            f"the first and second moments; e.g. optimizer.betas=[0.9,0.999]"
        )


@OPTIMIZERS.register("sgd")
def sgd(params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
    )


@OPTIMIZERS.register("adam")
def adam(params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=False):
    # fused: one kernel for the whole update instead of several per parameter (~3x faster
    # on the CPU for the autoencoder's 2.8M parameters)
    return torch.optim.Adam(
        params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, fused=fused
    )


@OPTIMIZERS.register("rmsprop")
def rmsprop(params, lr, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0):
    return torch.optim.RMSprop(
        params, lr=lr, alpha=alpha, eps=eps, momentum=momentum, weight_decay=weight_decay
    )


@OPTIMIZERS.register("adagrad")
def adagrad(params, lr, eps=1e-10, weight_decay=0.0):
    return torch.optim.Adagrad(params, lr=lr, eps=eps, weight_decay=weight_decay)


SCHEDULES = ("constant", "cosine")


def build_optimizer(cfg_opt, params: Iterable[torch.nn.Parameter], total_steps: int, **overrides):
    """(optimizer, scheduler or None) from an `optimizer` config node.

    `overrides` replace config keys (a GAN builds two optimizers from one node).
    """
    kwargs = {k: v for k, v in dict(cfg_opt).items() if k not in ("name", "schedule")}
    kwargs.update(overrides)
    schedule = cfg_opt.get("schedule", "constant")
    if schedule not in SCHEDULES:  # first: building torch's first optimizer loads torch._dynamo
        raise ConfigError(
            f"optimizer.schedule={schedule!r} is unknown; use one of {', '.join(SCHEDULES)}; "
            f"e.g. optimizer.schedule=cosine"
        )
    try:
        _check_settings(kwargs)
        opt = OPTIMIZERS.create(cfg_opt.name, list(params), **kwargs)
    except (TypeError, ValueError) as e:  # an option it does not take, a value torch refuses
        raise ConfigError(
            f"optimizer {cfg_opt.name}: {e}. Check the optimizer.* keys (their values and "
            f"comments: conf/optimizer/{cfg_opt.name}.yaml)"
        ) from e
    if schedule == "constant":
        return opt, None
    # cosine: lr * (1 + cos(pi t / T)) / 2 down to 0 at the run's last step, stepped once
    # per iteration (the loop never steps past T, where the schedule would rise again)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps))
    return opt, sched


# -- precision -----------------------------------------------------------------------------
PRECISIONS = ("fp32", "bf16", "auto")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bfloat16 matrix products natively."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(check is not None and check())
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """The precision a run uses, fp32 or bf16, for the config's `precision` on `device`."""
    if name not in PRECISIONS:
        raise ValueError(f"precision={name!r} is not one of {', '.join(PRECISIONS)}")
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if name == "bf16" and not native_bf16(device):
        warnings.warn(
            f"precision=bf16 on a {device.type} without native bfloat16: it is emulated and "
            f"slower than fp32; precision=auto picks fp32 here",
            stacklevel=2,
        )
    return name


def autocast(device: torch.device, precision: str):
    """A context for one training step's forward pass and loss (a no-op for fp32).

    Use one context per backward pass: autocast keeps its bfloat16 copies of the weights
    until the outermost context exits, so weights updated inside it would be seen stale."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
