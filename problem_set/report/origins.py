"""Where a table's settings came from. A pipeline stage may take a value from an earlier
table (Table 2 runs at the activation Table 1 chose): the report names the value, the table,
the rule and the number ("Activation tanh: Table 1's choice, the best of its 7 cells on
validation accuracy (97.9%, mean of 3 seeds)"). Read from stages.json's `choices`, else from
the runs' metrics.json `consumed`; a value the runs did not run with is not claimed, and a
table with neither record (run by hand) gets no sentence rather than a guess.

Also: the settings every job of a table shares, from the jobs' configs, and the earlier runs
a run built on (the classifier that judged it, ...), with their run identities."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace
from pathlib import Path

from problem_set.report.sources import Run, Source
from problem_set.report.words import link, pct, sig, slug
from ucl import aggregate
from ucl.errors import CorruptFileError, MissingFileError
from ucl.pipeline.choices import table_identity
from ucl.rundir import run_identity
from ucl.summary import Job, swept_keys
from ucl.sweeps import CELL_IGNORES

# The report's headings of the classification tables (sections.py writes them)
TABLES = {
    "activation_sweep": "Table 1: activation of the hidden layer",
    "width_sweep": "Table 2: hidden width",
    "lr_sweep": "Table 3: learning rate",
    "optimizer_sweep": "Table 4: optimizer and learning rate",
}
# A setting in words, by its key: its value goes where {} is
SETTING_WORDS = {
    "activation": "activation {}",
    "hidden": "{} hidden units",
    "optimizer": "optimizer {}",
    "lr": "learning rate {}",
    "batch_size": "batch {}",
}
METRIC_WORDS = {"val/accuracy": "validation accuracy", "test/accuracy": "test accuracy"}
# The earlier runs a run can link to, and what it did with each
LINKS = {
    "classifier": "the classifier that judged it",
    "autoencoder": "the autoencoder it is compared with",
    "generator": "the generator it drew its samples from",
}


@dataclass(frozen=True)
class Taken:
    """A value a stage took from an earlier table's best cell."""

    key: str
    value: str
    stage: str  # the sweep whose table chose it
    identity: str  # table_identity of the jobs the choice read
    metric: str | None = None  # what the best cell was chosen on, when known
    mean: float | None = None  # the best cell's mean of it over its seeds
    seeds: int | None = None
    cells: int | None = None
    now: str | None = None  # that table's identity in this root now; None: not here

    @property
    def changed(self) -> bool:
        return self.now is not None and self.now != self.identity


_TAKEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Source -> {stage: taken}


def taken(src: Source, stage: str) -> list[Taken]:
    """The values `stage`'s completed runs took from earlier tables: stages.json's record,
    unless the runs' own `consumed` names another table or value; only values every run
    with a config ran with. [] when neither record holds one. Read once per Source."""
    known = _TAKEN.setdefault(src, {})
    if stage not in known:
        known[stage] = _read_taken(src, stage)
    return known[stage]


def _read_taken(src: Source, stage: str) -> list[Taken]:
    runs = [r for r in src.job_runs(stage) if r.ok]
    if not runs:
        return []
    found: dict[str, Taken] = {}
    entry = (src.stages.get("stages") or {}).get(stage) or {}
    for c in entry.get("choices") or []:
        try:
            found[c["key"]] = Taken(
                c["key"], str(c["value"]), c["from"], c["identity"], c.get("metric"),
                c.get("mean"), c.get("seeds"), c.get("cells"),
            )  # fmt: skip
        except (KeyError, TypeError):
            continue
    for key, seen in _consumed(runs).items():
        if len(seen) > 1:  # the runs took different values or tables: no one choice
            found.pop(key, None)
            continue
        value, table, identity = next(iter(seen))
        have = found.get(key)
        if have is None or (have.value, have.identity) != (value, identity):
            found[key] = _from_table(src, key, value, Path(table).name, identity)
    jobs = [j for j in src.jobs(stage) if j.status == "completed"]
    kept = [t for t in found.values() if all(_ran_with(j, t.key, t.value) for j in jobs)]
    return [replace(t, now=_identity_now(src, t.stage)) for t in kept]


def sentences(src: Source, stage: str) -> str:
    """Each value `stage` took from an earlier table, a sentence each ("" when none)."""
    return " ".join(sentence(t) for t in taken(src, stage))


def sentence(t: Taken) -> str:
    """'Activation tanh: Table 1's choice, the best of its 2 cells on validation accuracy
    (75.3%, one seed).'"""
    what = _setting(t.key, t.value)
    table = table_name(t.stage)
    text = f"{what[0].upper()}{what[1:]}: {table}'s choice, "
    if t.metric and t.mean is not None:
        cells = f"the best of its {t.cells} cells" if t.cells else "its best cell"
        seeds = ""
        if t.seeds:
            seeds = ", one seed" if t.seeds == 1 else f", mean of {t.seeds} seeds"
        text += (
            f"{cells} on {METRIC_WORDS.get(t.metric, t.metric)} "
            f"({_number(t.metric, t.mean)}{seeds})"
        )
    else:
        text += "its best cell when this table ran"
    if t.now is None:
        text += f"; {_bare(t.stage)} is not in this reproduction's folder now"
    elif t.changed:
        text += f"; {_bare(t.stage)} has been run again since, so its best cell may now be another"
    return text + "."


def brief(src: Source, stage: str) -> str:
    """The values `stage` took, in a clause: 'activation tanh (Table 1's choice) and 64
    hidden units (Table 2's choice)'; "" when none."""
    parts = [
        f"{_setting(t.key, t.value)} ({table_name(t.stage)}'s choice)" for t in taken(src, stage)
    ]
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return "".join(parts)


def table_name(stage: str) -> str:
    """'Table 1' linked to its section, or the sweep's stage name."""
    title = TABLES.get(stage)
    return link(title.split(":")[0], slug(title)) if title else f"the {stage} table"


def _bare(stage: str) -> str:
    title = TABLES.get(stage)
    return title.split(":")[0] if title else f"the {stage} table"


def _consumed(runs: list[Run]) -> dict[str, set[tuple[str, str, str]]]:
    """key -> the (value, table, identity) the runs recorded taking from a table."""
    out: dict[str, set[tuple[str, str, str]]] = {}
    for run in runs:
        for key, c in ((run.record or {}).get("consumed") or {}).items():
            if isinstance(c, dict) and {"table", "identity", "value"} <= c.keys():
                out.setdefault(key, set()).add((str(c["value"]), str(c["table"]), c["identity"]))
    return out


def _from_table(src: Source, key: str, value: str, stage: str, identity: str) -> Taken:
    """The choice a run's `consumed` records, with the rule and number read again from the
    table in this root when it is still the one the run read (same identity)."""
    jobs = [j for j in src.jobs(stage) if j.status == "completed"]
    if not jobs or table_identity(jobs) != identity:
        return Taken(key, value, stage, identity)
    metric = aggregate.choose_metric(jobs)
    cells = aggregate.cells(jobs)
    best = aggregate.best_cell(cells, metric) if metric else None
    if best is None or not _same(best.params.get(key), value):
        return Taken(key, value, stage, identity)
    mean = best.agg(metric).mean
    return Taken(key, value, stage, identity, metric, mean, len(best.completed), len(cells))


def _identity_now(src: Source, stage: str) -> str | None:
    jobs = [j for j in src.jobs(stage) if j.status == "completed"]
    return table_identity(jobs) if jobs else None


def _ran_with(job: Job, key: str, value: str) -> bool:
    """Did the job run with `value` for `key`, by its config? (True when it has none.)"""
    if not job.config:
        return True
    have = _config_value(job.config, key)
    return have is None or _same(have, value)


def _config_value(config: dict, key: str):
    """A top-level setting of a job's config (by dotted key): a group's choice by its name
    (activation.name), else the plain value."""
    return config.get(f"{key}.name", config.get(key))


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def _setting(key: str, value) -> str:
    return SETTING_WORDS.get(key, key + " {}").format(value)


def _number(metric: str, value: float) -> str:
    return pct(value) if "accuracy" in metric else sig(value, 3)


# -- what a table held fixed ------------------------------------------------------------


def fixed(src: Source, stage: str) -> str:
    """The settings every completed job of a table shares, from their configs: 'Every job
    ran with activation tanh, 256 hidden units (not Table 2's choice, 64), optimizer sgd,
    batch 128, 10 epochs.' A value other than what a table before it chose, as a later table
    took it, says so.
    "" when the jobs hold no configs."""
    jobs = [j for j in src.jobs(stage) if j.status == "completed" and j.config]
    if not jobs:
        return ""
    swept = set(swept_keys(jobs, CELL_IGNORES))
    mine = {t.key for t in taken(src, stage)}
    order = list(TABLES)
    before = set(order[: order.index(stage)]) if stage in TABLES else set()
    # a choice of an earlier table that a later one took (Table 2's width, taken by Table 3)
    elsewhere = {t.key: t for s in TABLES if s != stage for t in taken(src, s) if t.stage in before}
    parts = []
    for key in SETTING_WORDS:
        values = {repr(_config_value(j.config, key)) for j in jobs}
        value = _config_value(jobs[0].config, key)
        if key in swept or len(values) != 1 or value is None:
            continue
        part = _setting(key, value)
        other = elsewhere.get(key)
        if key not in mine and other is not None and not _same(other.value, value):
            part += f" (not {table_name(other.stage)}'s choice, {other.value})"
        parts.append(part)
    steps, epochs = jobs[0].config.get("steps"), jobs[0].config.get("epochs")
    if steps is not None and len({j.config.get("steps") for j in jobs}) == 1:
        parts.append(f"{steps} iterations")
    elif epochs is not None and len({j.config.get("epochs") for j in jobs}) == 1:
        parts.append(f"{epochs} epochs")
    if not parts:
        return ""
    return "Every job of this table ran with " + ", ".join(parts) + "."


# -- earlier runs a run built on -----------------------------------------------------------


def linked(src: Source, run: Run) -> str:
    """The earlier runs `run` read (its metrics.json `consumed`): 'The classifier that
    judged it: `runs/reproduce/best_mlp` (run identity 2987e24ffc2d872d, the best_mlp run of
    this reproduction).' "" when it records none."""
    consumed = (run.record or {}).get("consumed") or {}
    parts = []
    for key, words in LINKS.items():
        c = consumed.get(key)
        if not isinstance(c, dict) or not c.get("run") or not c.get("identity"):
            continue
        name = Path(c["run"]).name
        now = _run_identity(src.root / name)
        note = ""
        if now == c["identity"]:
            note = f", the {name} run of this reproduction"
        elif now is not None:
            note = f"; the {name} run here now is another, {now}"
        parts.append(f"{words}: `{c['run']}` (run identity {c['identity']}{note})")
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _run_identity(path: Path) -> str | None:
    try:
        return run_identity(path)
    except (MissingFileError, CorruptFileError, OSError):
        return None
