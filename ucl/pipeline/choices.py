"""A stage's override may take a value from an earlier sweep's table: in
`activation={activation_sweep.activation}`, the value of `activation` in the best cell of
activation_sweep's table, the cell with the highest mean validation accuracy over its
seeds (the cell summarize.py marks best; aggregate.best_cell).

The runner makes the choice once the sweep completed, and the stage runs with
`activation=relu +consumed.activation=<sweep dir>@<table identity>`: every run records the
table it took the value from, and a table whose jobs or numbers changed since makes those
runs other experiments, set aside and run again (state.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

from ucl import aggregate
from ucl.pipeline.stages import REFERENCE, Plan, Planned, shown
from ucl.summary import Job, find_jobs

CONSUMED = "+consumed"  # the override that records where a chosen value came from


class ChoiceError(ValueError):
    """A choice that cannot be made (yet): one line naming the stage, the table and why."""


@dataclass(frozen=True)
class Choice:
    stage: str  # the sweep whose table chose
    key: str  # the swept key
    value: str
    metric: str  # what the best cell was chosen on
    mean: float  # its mean over the cell's seeds
    seeds: int
    cells: int  # cells in the table
    table: str  # the sweep's dir, as overrides name it
    identity: str  # table_identity of the jobs the choice read

    def describe(self) -> str:
        return (
            f"{self.key}={self.value}: the best of {self.cells} cells of {self.stage} "
            f"({self.metric} {self.mean:.4f}, mean of {self.seeds} seed"
            f"{'s' if self.seeds != 1 else ''})"
        )

    def record(self) -> dict:
        return {
            "key": self.key,
            "value": self.value,
            "from": self.stage,
            "table": self.table,
            "metric": self.metric,
            "mean": self.mean,
            "seeds": self.seeds,
            "cells": self.cells,
            "identity": self.identity,
        }


def table_identity(jobs: list[Job]) -> str:
    """A hash of what a choice reads: each job's name, config and final metrics."""
    rows = sorted(
        (j.path.name, json.dumps(j.config, sort_keys=True, default=str),
         json.dumps(j.metrics, sort_keys=True, default=str))
        for j in jobs
    )  # fmt: skip
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def choose(source: Planned, key: str, job_names: set[str] | None = None) -> Choice:
    """The value of `key` in the best cell of `source`'s table, over its completed jobs
    (those in `job_names` when given: the jobs its sweep defines now)."""
    name = source.name
    if not source.dir.is_dir():
        raise ChoiceError(f"{name} has not run yet, so its table has no best {key}")
    jobs = [j for j in find_jobs(source.dir) if job_names is None or j.path.name in job_names]
    done = [j for j in jobs if j.status == "completed"]
    if not done or len(done) < len(jobs):
        raise ChoiceError(
            f"{name}'s table is not complete ({len(done)} of {len(jobs)} jobs completed), "
            f"so it has no best {key} yet"
        )
    metric = aggregate.choose_metric(done)
    found = aggregate.cells(done)
    best = aggregate.best_cell(found, metric) if metric else None
    if best is None:
        raise ChoiceError(f"{name}'s jobs report no accuracy to choose {key} by")
    if key not in best.params:
        swept = ", ".join(best.params) or "nothing"
        raise ChoiceError(f"{name}'s table does not sweep {key} (it sweeps {swept})")
    agg = best.agg(metric)
    return Choice(
        name, key, str(best.params[key]), metric, float(agg.mean), len(best.completed),
        len(found), shown(source.dir), table_identity(done),
    )  # fmt: skip


def resolve(planned: Planned, plan: Plan) -> tuple[Planned, list[Choice]]:
    """`planned` with every "{stage.key}" replaced by the choice of that stage's table and
    a `+consumed.key=` override recording it; the choices. ChoiceError when a table has no
    choice yet."""
    if not planned.stage.choices:
        return planned, []
    from ucl.pipeline.state import stage_jobs

    made: dict[tuple[str, str], Choice] = {}

    def value(match) -> str:
        name, key = match[1], match[2]
        if not key:
            return match[0]
        if (name, key) not in made:
            source = plan[name]
            jobs = stage_jobs(source.args)
            made[name, key] = choose(source, key, None if jobs is None else set(jobs))
        return made[name, key].value

    args = [REFERENCE.sub(value, a) for a in planned.args]
    args += [f"{CONSUMED}.{c.key}={c.table}@{c.identity}" for c in made.values()]
    return replace(planned, args=tuple(args)), list(made.values())


def check_choices(plan: Plan) -> None:
    """Every "{stage.key}" names a key that stage's sweep varies: refused before anything
    runs (ValueError), when the sweep's jobs can be listed here."""
    from ucl.pipeline.state import stage_jobs

    for planned in plan.stages:
        for name, key in planned.stage.references:
            if not key:
                continue
            source = next((p for p in plan.stages if p.name == name), None)
            jobs = stage_jobs(source.args) if source is not None else None
            if jobs is None:
                continue
            swept = _swept(jobs.values())
            if key not in swept:
                raise ValueError(
                    f"stage {planned.name} takes {{{name}.{key}}}, but {name}'s sweep does "
                    f"not vary {key} (it sweeps {', '.join(swept) or 'nothing'}); choose one "
                    f"of those keys, or sweep {key} in {name}"
                )


def _swept(job_overrides) -> list[str]:
    """The keys whose value differs between the jobs (seed left out: never a choice)."""
    from ucl.pipeline.state import identity

    values: dict[str, set[str]] = {}
    for overrides in job_overrides:
        for key, value in identity(overrides).items():
            values.setdefault(key, set()).add(value)
    return [k for k, vs in values.items() if len(vs) > 1 and k != "seed"]
