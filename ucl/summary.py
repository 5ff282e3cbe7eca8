"""A sweep dir's jobs, and how each planned job ended: what ucl.sweeps' tables are made of.

Reads each job's metrics.json (the run-dir contract, which also holds its overrides) and its
resolved config (the run's own config.yaml); a job that failed or never finished shows its
status instead of numbers, and a job dir from before ucl 0.1.0 says so in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ucl.errors import CorruptFileError
from ucl.lifecycle import LOCK, parse, read_metrics
from ucl.rundir import PRE_RELEASE, identity, pre_release, read_config_record


@dataclass
class Job:
    path: Path
    params: dict[str, str]
    status: str
    metrics: dict
    seconds: dict
    reason: str = ""
    config: dict = field(default_factory=dict)  # its identity: config by dotted key
    data: str | None = None  # the fingerprint of the data files it trained on

    @property
    def seed(self) -> str | None:
        if "seed" in self.params:
            return self.params["seed"]
        return None if "seed" not in self.config else str(self.config["seed"])


def find_jobs(sweep_dir: Path) -> list[Job]:
    """Every job dir below `sweep_dir` (one holding metrics.json)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(
            f"{sweep_dir} is not a folder; give a sweep dir under runs/multirun/"
        )
    dirs = {p.parent for p in sweep_dir.rglob("metrics.json")}
    jobs = [load_job(d) for d in dirs]
    digests = {j.data for j in jobs if j.data is not None}
    if len(digests) > 1:  # the data shows as a swept parameter: the table says which is which
        for j in jobs:
            j.params[DATA_COLUMN] = (j.data or "?")[:8]
    return sorted(jobs, key=lambda j: _natural(j.path.relative_to(sweep_dir)))


DATA_COLUMN = "data"


# a job whose record cannot be read: its params are what its dir's name says
UNREAD = ("corrupt", "missing", "unreadable")


def load_job(job_dir: Path) -> Job:
    config = load_config(job_dir)

    def unread(status: str, reason: str, config: dict = config) -> Job:
        return Job(job_dir, _named_params(job_dir.name), status, {}, {}, reason, config)

    try:
        record = read_metrics(job_dir)
    except CorruptFileError as e:
        return unread("corrupt", str(e))
    if record is None:
        return unread("missing", "no metrics.json")
    if pre_release(job_dir):
        return unread("unreadable", PRE_RELEASE.format(run_dir=job_dir), {})
    params = dict(p.split("=", 1) for p in record.get("overrides", []) if "=" in p)
    fingerprint = (record.get("data") or {}).get("fingerprint") or {}
    return Job(
        job_dir,
        params,
        record["status"],
        record.get("metrics", {}),
        record.get("seconds", {}),
        record.get("reason", ""),
        config,
        fingerprint.get("digest"),
    )


# -- the sweep's own job list ---------------------------------------------------------------
NEVER_STARTED = (
    "never started, or refused before it started (a refused job writes nothing; the "
    "sweep's own output says why)"
)


def planned_overrides(sweep_dir: Path) -> dict[str, list[str]] | None:
    """The dir names of the jobs the sweep's multirun.yaml asks for, in launch order, each
    with the job's overrides; None when it cannot say (no multirun.yaml, or a sweeper that
    chooses its trials itself)."""
    from ucl.keys import sweep_jobs

    path = Path(sweep_dir) / "multirun.yaml"
    if not path.is_file():
        return None
    try:
        hydra = (yaml.safe_load(path.read_text()) or {}).get("hydra") or {}
        sweeper = hydra.get("sweeper") or {}
        if "optuna" in str(sweeper.get("_target_", "")).lower():
            return None
        given = [str(o) for o in (hydra.get("overrides") or {}).get("task") or []]
        return sweep_jobs(sweeper.get("params") or {}, given)
    except Exception as e:  # noqa: BLE001  (any damage: the list cannot be read)
        raise CorruptFileError(
            f"{path}: the sweep's job list cannot be read ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); restore it, or move it away to "
            f"summarise the job dirs alone"
        ) from e


def accounting(
    sweep_dir: Path, jobs: list[Job], refusal: Callable[[list[str]], str | None] | None = None
) -> tuple[list[str], str | None]:
    """Every planned job that is not in the table, with how it ended, and the line saying
    how many of the planned jobs the table covers (None without a job list: then the jobs
    found that did not complete). `refusal(overrides)` gives the one-line refusal today's
    config checks give a job that left nothing (ucl.config.refusal)."""
    plan = planned_overrides(sweep_dir)
    found = {str(j.path.relative_to(sweep_dir)): j for j in jobs}
    if plan is None:
        return failures(jobs), None
    planned = list(plan)
    lines = []
    cluster = cluster_notes(sweep_dir)
    for i, name in enumerate(planned):
        job = found.get(name)
        said = f"; {cluster[name]}" if name in cluster else ""
        if said and cluster[name].startswith(NOT_ENDED):  # queued or running on SLURM
            lines.append(f"{name}: {cluster[name]}")
        elif said and (job is None or job.status != "failed"):  # ended by SLURM, not by ucl
            own = _ended(job) if job is not None else "no metrics.json"
            lines.append(f"{name}: failed on the cluster: {cluster[name]} (its record: {own})")
        elif job is None:
            folder = Path(sweep_dir) / name
            empty = not folder.is_dir() or not any(folder.iterdir())
            lines.append(
                f"{name}: "
                + (_not_started(plan[name], planned[i + 1 :], found, refusal) if empty else
                   "started, but wrote no metrics.json (killed before its first record; "
                   "re-run the sweep)") + said
            )  # fmt: skip
        elif job.status != "completed" or said:
            lines.append(f"{name}: {_ended(job)}{said}")
    extra = sorted(set(found) - set(planned))
    lines += [f"{n}: not in this sweep's job list (multirun.yaml); {_ended(found[n])}"
              for n in extra]  # fmt: skip
    covered = sum(1 for n in planned if n in found and found[n].status == "completed")
    return lines, f"The table covers {covered} of the {len(planned)} planned jobs (multirun.yaml)."


NOT_ENDED = "not finished yet"


def cluster_notes(sweep_dir: Path) -> dict[str, str]:
    """What the scheduler said of each job that did not complete there (the SLURM launcher's
    cluster.json): its job id, state, reason and log, by job dir name."""
    from ucl.keys import job_name
    from ucl.launchers import ENDED, OPEN_STATES, refresh

    notes = {}
    for entry in refresh(sweep_dir).values():
        if entry.get("state") == "COMPLETED" or (entry.get("state") == ENDED and
                                                  not entry.get("reason")):  # fmt: skip
            continue  # the run's own record says how it ended
        name = job_name(entry["overrides"], sweep_dir, entry["num"])
        said_by_run = entry.get("recorded")  # the run's own record gives the reason
        reason = f" ({entry['reason']})" if entry.get("reason") and not said_by_run else ""
        said = f"SLURM job {entry['job_id']} {entry['state']}{reason}, log {entry['err']}"
        notes[name] = f"{NOT_ENDED}: {said}" if entry["state"] in OPEN_STATES else said
    return notes


def _not_started(overrides: list[str], later: list[str], found: dict, refusal=None) -> str:
    """Why a planned job left nothing: its config refused by today's checks (with the
    reason), refused by a later check (the sweep went on to later jobs), or not reached."""
    reason = refusal(overrides) if refusal is not None else None
    if reason:
        return f"refused before it started: {reason}"
    if any(name in found for name in later):
        return ("refused before it started (the sweep went on to later jobs; a refused job "
                "writes nothing, the sweep's own output says why)")  # fmt: skip
    return NEVER_STARTED


def _live_holder(job_dir: Path) -> str | None:
    """Who holds the run dir, when its lock names a live process on this host; a lock of
    another host counts as live (this host cannot tell)."""
    import os
    import socket

    try:
        holder = parse((job_dir / LOCK).read_text())
    except (OSError, UnicodeDecodeError):
        return None
    if holder is None:
        return None
    if holder.host != socket.gethostname():
        return str(holder)
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return str(holder)


def _ended(job: Job) -> str:
    if job.status == "completed":
        return "completed"
    if job.status == "running":
        holder = _live_holder(job.path)
        if holder:
            return f"running ({holder})"
        return "killed while running (no live process holds it; re-run the sweep to continue it)"
    return f"{job.status}: {job.reason}" if job.reason else job.status


def load_config(job_dir: Path) -> dict:
    """What identifies the job's experiment (ucl.rundir.identity: its resolved config by
    dotted key, minus the runtime knobs), from the run's own record (config.yaml, written
    once at first start); {} when it is not there or cannot be read (the job is then grouped
    by its overrides)."""
    try:
        record = read_config_record(job_dir)
    except CorruptFileError:
        return {}
    return identity(record) if record else {}


def swept_keys(jobs: list[Job], skip: frozenset = frozenset()) -> list[str]:
    """Parameters that take more than one value across the jobs (all of them if one job)."""
    return varying_keys([j.params for j in jobs], [j.status for j in jobs], skip)


def varying_keys(params: list[dict], statuses: list[str], skip=frozenset()) -> list[str]:
    """The keys of `params` (each job's overrides, with its status) that take more than one
    value across the jobs, all of them if none does. A job whose record was not read knows
    only its dir's name: a key it lacks is unknown there, not unset."""
    keys = list(dict.fromkeys(k for p in params for k in p if k not in skip))

    def values(k):
        pairs = zip(params, statuses, strict=True)
        return {p.get(k) for p, status in pairs if status not in UNREAD or k in p}

    return [k for k in keys if len(values(k)) > 1] or keys


def _name_parts(name: str) -> list[tuple[str, str, str]]:
    """A job dir's name as Hydra names it by the swept overrides (`activation=elu,hidden=8`),
    cut into (key, "=", value) parts; a part without "=" is (name, "", "")."""
    return [part.partition("=") for part in name.split(",")]


def _named_params(name: str) -> dict[str, str]:
    """A job dir's name -> {key: value}; {} for any other name (a numbered dir)."""
    parts = _name_parts(name)
    return {k: v for k, sep, v in parts} if all(k and sep for k, sep, _ in parts) else {}


def failures(jobs: list[Job]) -> list[str]:
    return [f"{j.path.name}: {_ended(j)}" for j in jobs if j.status != "completed"]


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
    items = [item for part in path.parts for item in _name_parts(part)]
    return [(k, *_value_key(v)) if sep else ("", *_value_key(k)) for k, sep, v in items]
