"""Sweep dirs -> tables: the swept parameters against the final metrics, one row per job or
one row per cell (the jobs that differ only in `seed`) with the mean, spread and a
confidence interval over the seeds.

Reads each job's metrics.json (the run-dir contract, which also holds its overrides) and its
resolved config (the run's own config.yaml, else Hydra's .hydra/config.yaml of older runs,
whose .hydra/overrides.yaml is read too); a job that failed or never finished shows its
status instead of numbers.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ucl.errors import CorruptFileError
from ucl.rundir import identity, read_config_record
from ucl.runtime_keys import RUNTIME_KEYS
from ucl.tracking import read_metrics

# val/accuracy only shows when the jobs held out a validation split (dataset.validation=N)
CLASSIFY_COLUMNS = [
    "val/accuracy", "test/accuracy", "test/error", "test/best_accuracy", "test/best_step"
]  # fmt: skip
MAX_DEFAULT_METRICS = 6
# two jobs that differ only in these (where and how they ran) or in their seed are the same
# cell of a table
CELL_IGNORES = RUNTIME_KEYS | {"seed"}
CHOOSE_BY = ("val/accuracy", "test/accuracy")  # the first a sweep's jobs report picks the best


@dataclass
class Job:
    path: Path
    params: dict[str, str]
    status: str
    metrics: dict
    seconds: dict
    reason: str = ""
    config: dict = field(default_factory=dict)  # its identity: config by dotted key

    @property
    def seed(self) -> str | None:
        if "seed" in self.params:
            return self.params["seed"]
        return None if "seed" not in self.config else str(self.config["seed"])

    @property
    def cell_key(self) -> tuple:
        """What makes two jobs the same cell: the resolved config minus seed and runtime
        knobs; the overrides (minus those) when no config record is there."""
        source = self.config or self.params
        return tuple(sorted((k, repr(v)) for k, v in source.items() if k not in CELL_IGNORES))


def find_jobs(sweep_dir: Path) -> list[Job]:
    """Every job dir below `sweep_dir` (one holding .hydra/overrides.yaml or metrics.json)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(
            f"{sweep_dir} is not a folder; give a sweep dir under runs/multirun/"
        )
    dirs = {p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")}
    dirs |= {p.parent for p in sweep_dir.rglob("metrics.json")}
    jobs = [load_job(d) for d in dirs]
    return sorted(jobs, key=lambda j: _natural(j.path.relative_to(sweep_dir)))


def load_job(job_dir: Path) -> Job:
    params = {}
    overrides = job_dir / ".hydra" / "overrides.yaml"
    if overrides.exists():
        for item in yaml.safe_load(overrides.read_text()) or []:
            key, _, value = str(item).partition("=")
            params[key.lstrip("+~")] = value
    config = load_config(job_dir)
    try:
        record = read_metrics(job_dir)
    except CorruptFileError as e:
        return Job(job_dir, params, "corrupt", {}, {}, str(e), config)
    if record is None:
        return Job(job_dir, params, "missing", {}, {}, "no metrics.json", config)
    if not params:
        params = dict(p.split("=", 1) for p in record.get("overrides", []) if "=" in p)
    return Job(
        job_dir,
        params,
        record["status"],
        record.get("metrics", {}),
        record.get("seconds", {}),
        record.get("reason", ""),
        config,
    )


def load_config(job_dir: Path) -> dict:
    """What identifies the job's experiment (ucl.rundir.identity: its resolved config by
    dotted key, minus the runtime knobs), from the run's own record (config.yaml, written
    once at first start) or, for older runs, Hydra's .hydra/config.yaml; {} when neither is
    there or it cannot be read (the job is then grouped by its overrides)."""
    try:
        record = read_config_record(job_dir)
    except CorruptFileError:
        return {}
    return identity(record) if record else {}


def swept_keys(jobs: list[Job], skip: frozenset = frozenset()) -> list[str]:
    """Parameters that take more than one value across the jobs (all of them if one job)."""
    keys = list(dict.fromkeys(k for j in jobs for k in j.params if k not in skip))
    varying = [k for k in keys if len({j.params.get(k) for j in jobs}) > 1]
    return varying or keys


def metric_columns(jobs: list[Job], wanted: list[str] | None = None) -> list[str]:
    if wanted:
        return wanted
    present = list(dict.fromkeys(k for j in jobs for k, v in j.metrics.items() if _scalar(v)))
    if "test/accuracy" in present:
        return [c for c in CLASSIFY_COLUMNS if c in present]
    return present[:MAX_DEFAULT_METRICS]


def table(jobs: list[Job], metrics: list[str] | None = None) -> tuple[list[str], list[list]]:
    keys, columns = swept_keys(jobs), metric_columns(jobs, metrics)
    header = ["job", *keys, "status", *columns, "train s"]
    rows = []
    for job in jobs:
        values = [job.metrics.get(c) for c in columns]
        rows.append(
            [job.path.name, *(job.params.get(k, "") for k in keys), job.status, *values,
             job.seconds.get("train")]
        )  # fmt: skip
    return header, rows


def pivot(jobs: list[Job], row_key: str, col_key: str, metric: str) -> tuple[list[str], list[list]]:
    """A two-way table of `metric`: one row per value of row_key, one column per col_key."""

    def value(j: Job):
        return j.metrics.get(metric) if j.status == "completed" else j.status

    return two_way(jobs, value, row_key, col_key, swept_keys(jobs))


def two_way(items: list, value, row_key: str, col_key: str, have: list[str]):
    """Rows by `row_key`, columns by `col_key` of items with `.params`; each square holds
    value(item). `have` names the swept parameters for the error when a key is not one."""
    for key in (row_key, col_key):
        if not any(key in item.params for item in items):
            raise KeyError(
                f"--pivot: no job sets {key!r}; the swept parameters are: "
                f"{', '.join(have) or 'none'}"
            )
    rows_v = ordered({item.params.get(row_key, "") for item in items})
    cols_v = ordered({item.params.get(col_key, "") for item in items})
    square = {(i.params.get(row_key, ""), i.params.get(col_key, "")): value(i) for i in items}
    header = [f"{row_key} \\ {col_key}", *cols_v]
    return header, [[r, *(square.get((r, c)) for c in cols_v)] for r in rows_v]


def markdown(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_csv(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return out.getvalue()


def failures(jobs: list[Job]) -> list[str]:
    return [f"{j.path.name}: {j.status}: {j.reason}" for j in jobs if j.status != "completed"]


def _cell(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _scalar(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def ordered(values: set[str]) -> list[str]:
    """Numbers in numeric order, names alphabetically."""
    return sorted(values, key=_value_key)


def _value_key(v: str):
    try:
        return (0, float(v), "")
    except ValueError:
        return (1, 0.0, v)


def _natural(path: Path):
    """Job dirs (`hidden=64`, `activation=elu,hidden=128`, or numbered) by key, then by
    value, numbers in numeric order: hidden=64 before hidden=128."""
    items = [item.partition("=") for part in path.parts for item in part.split(",")]
    return [(k, *_value_key(v)) if sep else ("", *_value_key(k)) for k, sep, v in items]
