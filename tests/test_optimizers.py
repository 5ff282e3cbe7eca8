"""The optimizers and schedules a config can pick."""

import math

import torch
from omegaconf import OmegaConf

from ucl.context import build_optimizer


def test_the_cosine_schedule_falls_from_lr_to_zero_over_the_run():
    param = torch.nn.Parameter(torch.zeros(1))
    node = OmegaConf.create({"name": "sgd", "lr": 0.5, "schedule": "cosine"})
    opt, sched = build_optimizer(node, [param], total_steps=200)
    seen = []
    for _ in range(200):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    want = [0.25 * (1 + math.cos(math.pi * t / 200)) for t in range(200)]
    assert max(abs(a - b) for a, b in zip(seen, want, strict=True)) < 1e-12
    assert opt.param_groups[0]["lr"] < 1e-12  # zero after the last step


def test_a_constant_schedule_has_no_scheduler():
    param = torch.nn.Parameter(torch.zeros(1))
    node = OmegaConf.create({"name": "adam", "lr": 1e-3, "schedule": "constant"})
    opt, sched = build_optimizer(node, [param], total_steps=10)
    assert sched is None and opt.param_groups[0]["lr"] == 1e-3
