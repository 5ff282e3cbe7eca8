"""A sweep's jobs grouped into cells (the jobs that differ only in `seed`), each with the
mean, the standard deviation and a Student-t interval over its seeds, the best cell chosen
by a validation metric, and the cells Welch's t-test cannot tell from it.

The cells come from ucl.summary's jobs; the numbers from ucl.stats.
"""

from __future__ import annotations

from dataclasses import dataclass

from ucl import stats
from ucl.summary import CELL_IGNORES, CHOOSE_BY, Job, swept_keys, two_way

BEST, NEAR = "best", "≈ best"  # the marks of the best cell and of those within noise of it


@dataclass
class Cell:
    params: dict[str, str]  # the swept parameters (for display; seed left out)
    jobs: list[Job]

    @property
    def completed(self) -> list[Job]:
        return [j for j in self.jobs if j.status == "completed"]

    def values(self, metric: str) -> list[float]:
        return [float(j.metrics[metric]) for j in self.completed if _number(j.metrics.get(metric))]

    def agg(self, metric: str) -> stats.Aggregate:
        return stats.aggregate(self.values(metric))

    @property
    def status(self) -> str:
        """completed, or which seeds did not complete and how they ended."""
        bad = [j for j in self.jobs if j.status != "completed"]
        if not bad:
            return "completed"
        if len(bad) == len(self.jobs) == 1:
            return bad[0].status
        seeds = ", ".join(f"seed={j.seed if j.seed is not None else '?'} {j.status}" for j in bad)
        return f"{len(self.jobs) - len(bad)} of {len(self.jobs)} completed ({seeds})"


def cells(jobs: list[Job]) -> list[Cell]:
    """The jobs grouped by their config minus seed and runtime knobs, in first-job order."""
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.cell_key, []).append(job)
    keys = swept_keys(jobs, CELL_IGNORES)
    found = []
    for members in groups.values():
        first = members[0].params
        found.append(Cell({k: first.get(k, "") for k in keys}, members))
    return found


def seeds_per_cell(found: list[Cell]) -> int:
    return max((len(c.jobs) for c in found), default=0)


def choose_metric(jobs: list[Job], wanted: str | None = None) -> str | None:
    """The metric the best cell is chosen by: `wanted`, else validation accuracy when the
    jobs report it, else test accuracy, else None (no choosing)."""
    if wanted:
        return wanted
    reported = {k for j in jobs for k in j.metrics}
    return next((m for m in CHOOSE_BY if m in reported), None)


def higher_is_better(metric: str) -> bool:
    return any(word in metric for word in ("accuracy", "score", "confidence"))


def best_cell(found: list[Cell], metric: str) -> Cell | None:
    scored = [c for c in found if c.agg(metric).mean is not None]
    if not scored:
        return None
    sign = 1 if higher_is_better(metric) else -1
    return max(scored, key=lambda c: sign * c.agg(metric).mean)


def marks(found: list[Cell], metric: str) -> dict[int, str]:
    """id(cell) -> BEST or NEAR: the best cell by `metric`'s mean, and every cell whose
    values Welch's t-test at 5% cannot tell from the best's (needs 2 seeds on both sides)."""
    best = best_cell(found, metric)
    if best is None:
        return {}
    out = {id(best): BEST}
    for c in found:
        if c is not best and stats.within_noise(best.values(metric), c.values(metric)):
            out[id(c)] = NEAR
    return out


def table(
    found: list[Cell], metrics: list[str], choose: str | None
) -> tuple[list[str], list[list]]:
    """One row per cell: the swept parameters, n, and per metric the mean ± the 95%
    interval's half-width; for the first of `metrics` also the std and the interval."""
    keys = list(found[0].params) if found else []
    shown = ([choose] if choose and choose not in metrics else []) + metrics
    header = [*keys, "n", *shown, f"{metrics[0]} std", f"{metrics[0]} 95% CI", "train s",
              "status", "mark"]  # fmt: skip
    marked = marks(found, choose) if choose else {}
    rows = []
    for c in found:
        main = c.agg(metrics[0])
        rows.append(
            [*c.params.values(), len(c.completed), *(mean_pm(c.agg(m)) for m in shown),
             main.std, interval(main), _seconds(c), c.status,
             marked.get(id(c), "")]
        )  # fmt: skip
    return header, rows


def pivot(found: list[Cell], row_key: str, col_key: str, metric: str):
    """A two-way table of `metric`: mean ± half-width (the mean alone with one seed)."""

    def value(c: Cell):
        return mean_pm(c.agg(metric)) if c.completed else c.status

    return two_way(found, value, row_key, col_key, list(found[0].params) if found else [])


def conclusions(found: list[Cell], choose: str, report: str) -> list[str]:
    """What the seeds support, in words: the best cell and its test result, which cells
    are within noise of it, and how many are significantly worse."""
    best = best_cell(found, choose)
    if best is None:
        return []
    a = best.agg(report)
    lines = [
        f"Best by {choose}: {describe(best)}, {report} {mean_pm(a, pct=True)} "
        f"(mean over {a.n} seed{'s' if a.n != 1 else ''}"
        + (", ± the 95% interval's half-width)" if a.half_width is not None else ")")
    ]
    if seeds_per_cell(found) < 2 or len(best.values(choose)) < 2:
        lines.append(
            "One seed per cell: no confidence interval or significance test can be given "
            "(run the sweep with seed=0,1,2)."
        )
        return lines
    marked = marks(found, choose)
    near = [c for c in found if marked.get(id(c)) == NEAR]
    worse = [c for c in found if c.values(choose) and id(c) not in marked]
    if near:
        names = ", ".join(describe(c) for c in near)
        lines.append(
            f"Within noise of the best (Welch's t-test on {choose}, p >= 0.05): {names}; "
            f"the seeds do not rank these."
        )
    else:
        lines.append(f"Every other cell is significantly worse on {choose} (Welch, p < 0.05).")
    if worse and near:
        lines.append(f"Significantly worse than the best (p < 0.05): {len(worse)} cell(s).")
    if ties := neighbours_within_noise(found, choose):
        pairs = "; ".join(f"{describe(a)} and {describe(b)}" for a, b in ties)
        lines.append(f"Neighbours in the ranking the seeds do not separate (p >= 0.05): {pairs}.")
    return lines


def neighbours_within_noise(found: list[Cell], metric: str) -> list[tuple[Cell, Cell]]:
    """Cells next to each other when ranked by `metric`'s mean that Welch's t-test cannot
    tell apart (the best's own neighbours are already marked NEAR, so left out)."""
    sign = 1 if higher_is_better(metric) else -1
    ranked = sorted(
        (c for c in found if len(c.values(metric)) >= 2), key=lambda c: -sign * c.agg(metric).mean
    )
    best = best_cell(found, metric)
    return [
        (a, b)
        for a, b in zip(ranked, ranked[1:], strict=False)
        if best not in (a, b) and stats.within_noise(a.values(metric), b.values(metric))
    ]


def describe(cell: Cell) -> str:
    return ", ".join(f"{k}={v}" for k, v in cell.params.items()) or "the only cell"


def mean_pm(a: stats.Aggregate, pct: bool = False) -> str | float | None:
    if a.mean is None:
        return None
    if pct:
        text = f"{100 * a.mean:.2f}%"
        return text if a.half_width is None else f"{text} ± {100 * a.half_width:.2f}"
    if a.half_width is None:
        return a.mean
    return f"{a.mean:.4f} ± {a.half_width:.4f}"


def interval(a: stats.Aggregate) -> str | None:
    return None if a.low is None else f"[{a.low:.4f}, {a.high:.4f}]"


def _seconds(c: Cell) -> str | None:
    """Mean train seconds of a cell's completed jobs, to 0.1 s."""
    mean = stats.aggregate(_train_seconds(c)).mean
    return None if mean is None else f"{mean:.1f}"


def _train_seconds(c: Cell) -> list[float]:
    return [float(j.seconds["train"]) for j in c.completed if _number(j.seconds.get("train"))]


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
