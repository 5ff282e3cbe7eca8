"""When stages run: the order they are considered in, and how long a plan takes on the
estimates scheduled as the runner schedules it (the `--list` total and the time left)."""

from __future__ import annotations

import math

from ucl.pipeline.stages import Plan, Planned


def start_order(plan: Plan, jobs: int) -> list[Planned]:
    """The order stages are considered in: the plan's, or with several jobs the longest
    chain of estimates first (it bounds the total)."""
    pending = list(plan.stages)
    if jobs > 1:
        chain = _chains(plan)
        pending.sort(key=lambda p: -chain[p.name])  # stable: ties keep the plan's order
    return pending


def schedule_seconds(
    plan: Plan, jobs: int, seconds: dict[str, float], running: set[str] = frozenset()
) -> float:
    """How long the stages in `seconds` (name -> seconds still to go) take when scheduled
    as the runner does: `running` ones hold a slot from the start, a stage starts once the
    stages it needs (those in `seconds`) finished, `jobs` at a time."""
    clock, finish = 0.0, {}  # finish: name -> time the stage ends, for started stages
    for name in running:
        finish[name] = seconds.get(name, 0.0)
    pending = [p for p in start_order(plan, jobs) if p.name in seconds and p.name not in running]
    while pending:
        active = [n for n, t in finish.items() if t > clock]
        ready = [
            p
            for p in pending
            if all(n not in seconds or finish.get(n, math.inf) <= clock for n in p.stage.needs)
        ]
        if ready and len(active) < jobs:
            p = ready[0]
            pending.remove(p)
            finish[p.name] = clock + seconds[p.name]
            continue
        later = [t for t in finish.values() if t > clock]
        if not later:  # waits for a stage outside `seconds`: cannot happen for a valid plan
            raise RuntimeError(f"cannot schedule {[p.name for p in pending]}")
        clock = min(later)
    return max(finish.values(), default=0.0)


def _chains(plan: Plan, seconds: dict[str, float] | None = None) -> dict[str, float]:
    """Per stage: its seconds plus the longest chain of seconds of the stages that need
    it, transitively (default: the estimates; stages missing from `seconds` count 0)."""
    if seconds is None:
        seconds = {p.name: p.minutes * 60 for p in plan.stages}
    chain: dict[str, float] = {}
    for p in reversed(plan.stages):  # a stage's dependents come after it in the plan
        after = [chain[q.name] for q in plan.stages if p.name in q.stage.needs]
        chain[p.name] = seconds.get(p.name, 0.0) + max(after, default=0.0)
    return chain


def critical_path(plan: Plan) -> tuple[float, list[str]]:
    """(minutes, stage names) of the longest chain of estimates through the needs."""
    chain = _chains(plan)
    if not chain:
        return 0.0, []
    names = [max(chain, key=chain.get)]
    while True:
        after = [q.name for q in plan.stages if names[-1] in q.stage.needs]
        if not after:
            return chain[names[0]] / 60, names
        names.append(max(after, key=chain.get))
