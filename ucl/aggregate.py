"""A sweep's cells as objects, for prose that names and compares them (the report's answers,
a pipeline's choice of the best cell): each holds its swept parameters as written, its jobs,
its status and its values per metric. The grouping, the values and the marks are those of
ucl.sweeps' frame, the one summarize.py prints.
"""

from __future__ import annotations

from dataclasses import dataclass

from ucl import stats, sweeps
from ucl.summary import Job


@dataclass(eq=False)
class Cell:
    params: dict[str, str]  # the swept parameters (for display; seed left out)
    jobs: list[Job]
    status: str  # completed, or which seeds did not complete and how they ended
    numbers: dict[str, list[float]]  # per metric, the completed jobs' values

    @property
    def completed(self) -> list[Job]:
        return [j for j in self.jobs if j.status == "completed"]

    def values(self, metric: str) -> list[float]:
        return self.numbers.get(metric, [])

    def agg(self, metric: str) -> stats.Aggregate:
        return stats.aggregate(self.values(metric))


def cells(jobs: list[Job]) -> list[Cell]:
    """The jobs grouped by their config minus seed and runtime knobs, in first-job order."""
    if not jobs:
        return []
    frame = sweeps.from_jobs(jobs)
    table = sweeps.cells(frame, list(frame.attrs["metrics"]), as_written=True)
    keys = table.columns[: table.columns.get_loc("n")]
    values = table.attrs["values"]
    return [
        Cell(dict(zip(keys, row[keys], strict=True)), [jobs[i] for i in row["jobs"]],
             row["status"], {m: list(v[label]) for m, v in values.items()})
        for label, row in table.iterrows()
    ]  # fmt: skip


def choose_metric(jobs: list[Job]) -> str | None:
    """Validation accuracy when the jobs report it, else test accuracy, else None."""
    return next((m for m in sweeps.CHOOSE_BY if any(m in j.metrics for j in jobs)), None)


def seeds_per_cell(found: list[Cell]) -> int:
    return max((len(c.jobs) for c in found), default=0)


def marks(found: list[Cell], metric: str) -> dict[int, str]:
    """id(cell) -> BEST or NEAR by `metric` (sweeps.marks)."""
    marked = sweeps.marks([c.values(metric) for c in found], metric)
    return {id(c): mark for c, mark in zip(found, marked, strict=True) if mark}


def best_cell(found: list[Cell], metric: str) -> Cell | None:
    marked = marks(found, metric)
    return next((c for c in found if marked.get(id(c)) == sweeps.BEST), None)


def describe(cell: Cell) -> str:
    return sweeps.describe(cell.params)
