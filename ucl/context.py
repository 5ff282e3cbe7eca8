"""What a task receives: the config, the loaded data, the device and the run dir."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ucl.data.splits import Batcher, DataLoaderBatcher, Splits
from ucl.lifecycle import Record
from ucl.loop import Loop, total_steps
from ucl.optimizers import build_optimizer
from ucl.precision import autocast
from ucl.registry import MODELS
from ucl.threads import Threads
from ucl.tracking import Tracker


@dataclass
class Context:
    cfg: Any
    data: Splits | None
    device: torch.device
    tracker: Tracker  # TensorBoard, history.csv, figures
    record: Record  # metrics.json; a task adds its own keys: ctx.record["judge"] = ...
    threads: Threads  # the thread count; on a CPU with threads=auto the loop decides it
    precision: str = "fp32"  # training steps' arithmetic, resolved: fp32 or bf16 (ucl/precision.py)

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

    def batcher(self, x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> Batcher:
        """Training batches: the whole-tensor batcher, or the problem set's DataLoader
        path when `dataset.loader=dataloader`."""
        cfg = self.cfg
        loader = cfg.dataset.get("loader", "tensor")
        if loader == "dataloader" and x is None:
            return DataLoaderBatcher(
                self.data.torch_datasets["train"], int(cfg.batch_size), self.device, int(cfg.seed)
            )
        if loader not in ("tensor", "dataloader"):
            raise ValueError(f"dataset.loader={loader!r} is unknown; use tensor or dataloader")
        x = self.data.x_train if x is None else x
        y = self.data.y_train if y is None else y
        return Batcher(x, y, int(cfg.batch_size), seed=int(cfg.seed))

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
        batcher = self.batcher()
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
            self.cfg, self.tracker, batcher, total_steps, record_seconds=self.record.seconds,
            **components,
        )
        if loop.resume_if_possible():
            logging.getLogger(__name__).info(
                "resumed from %s at iteration %d", loop.checkpoint_path, loop.step
            )
        return loop
