"""The runner's console lines: each stage's line tagged with the time since the runner
started, and the estimate of the time left, scaled by how the stages finished so far
compared with their estimates."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import IO

from ucl.lifecycle import duration
from ucl.pipeline.schedule import schedule_seconds
from ucl.pipeline.stages import Plan, Planned


class Progress:
    def __init__(self, plan: Plan, jobs: int, out: IO[str]):
        self.plan, self.jobs, self.out = plan, jobs, out
        self.started = time.perf_counter()
        self.spent = self.estimated = 0.0  # stages finished now: seconds against estimates

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def tag(self, planned: Planned) -> str:
        return f"[{duration(self.elapsed())}] {planned.name}"

    def finished(self, planned: Planned, seconds: float) -> None:
        """A stage this runner ran ended after `seconds`: the pace of the estimates."""
        self.spent += seconds
        self.estimated += planned.minutes * 60

    def left(self, settled: Collection[str], running: Mapping[str, float]) -> str:
        """'about X left': the stages still to run (all but the `settled` ones; the
        `running` ones, name -> when they started, less what they already spent) scheduled
        on the estimates as the runner schedules them, scaled by the pace so far."""
        now = time.perf_counter()
        remaining: dict[str, float] = {}
        for p in self.plan.stages:
            if p.name in settled:
                continue
            spent = now - running[p.name] if p.name in running else 0.0
            remaining[p.name] = max(p.minutes * 60 - spent, 0.0)
        left = schedule_seconds(self.plan, self.jobs, remaining, set(running))
        pace = self.spent / self.estimated if self.estimated else 1.0
        scaled = f" at {pace:.2f}x the estimates" if self.estimated else ""
        return f"about {duration(left * pace)} left{scaled}"
