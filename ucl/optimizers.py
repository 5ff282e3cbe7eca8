"""Optimizers and learning-rate schedules built from the `optimizer` config group."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ucl.errors import ConfigError
from ucl.registry import OPTIMIZERS


@OPTIMIZERS.register("sgd")
def sgd(params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
    )


@OPTIMIZERS.register("adam")
def adam(params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=False):
    if len(betas) != 2:  # torch would fail on an index, not say why
        raise ValueError(
            f"optimizer.betas={list(betas)} must be two numbers in [0, 1), the decays of the "
            f"first and second moments; e.g. optimizer.betas=[0.9,0.999]"
        )
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
    try:
        opt = OPTIMIZERS.create(cfg_opt.name, list(params), **kwargs)
    except (TypeError, ValueError) as e:  # an option it does not take, a value torch refuses
        raise ConfigError(
            f"optimizer {cfg_opt.name}: {e}. Check the optimizer.* keys (their values and "
            f"comments: conf/optimizer/{cfg_opt.name}.yaml)"
        ) from e
    schedule = cfg_opt.get("schedule", "constant")
    if schedule not in SCHEDULES:
        raise ValueError(f"optimizer.schedule={schedule!r} is unknown; use one of {SCHEDULES}")
    if schedule == "constant":
        return opt, None
    # cosine: lr * (1 + cos(pi t / T)) / 2 down to 0 at the run's last step, stepped once
    # per iteration (the loop never steps past T, where the schedule would rise again)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps))
    return opt, sched
