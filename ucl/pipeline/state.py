"""What a stage's dir already holds: which of its runs completed, and why the others did
not. A stage is done when every run it should hold completed with the stage's own overrides
and the config those compose to now. For a sweep, the runs it should hold are the jobs its
overrides define now (the preset's sweeper params and the command line's sweeps, named as
Hydra names the job dirs): a job dir of other values (extra) or of another config (stale)
is set aside, never counted, and the jobs not there (missing) run; train.py resumes, skips
or refuses each job."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ucl import rundir
from ucl.errors import CorruptFileError
from ucl.keys import changes_result, split_override, sweep_jobs
from ucl.lifecycle import read_metrics
from ucl.pipeline.stages import Planned, shown


@dataclass
class StageState:
    completed: int = 0  # runs whose metrics.json says completed, with the stage's overrides
    expected: int | None = 1  # runs the stage should hold (None: a sweep not counted)
    problems: list[str] = field(default_factory=list)  # "<run>: <status>: <reason>"
    changed: list[str] = field(default_factory=list)  # "<run>: <key>: <old> there, <new> now"
    # a sweep's job dirs: ones its overrides no longer define, ones whose config changed
    # ("<job>: <why>"), and the jobs it defines that have no record yet
    extra: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.expected is not None and self.completed >= self.expected

    def describe(self) -> str:
        total = "?" if self.expected is None else str(self.expected)
        return f"{self.completed}/{total} runs completed"

    @property
    def aside(self) -> list[str]:
        """The job dirs to set aside before the stage runs: extra and stale."""
        return self.extra + [s.partition(":")[0] for s in self.stale]

    def describe_aside(self) -> str:
        parts = []
        if self.extra:
            parts.append(f"{len(self.extra)} job(s) its sweep no longer defines: "
                         f"{_some(self.extra)}")  # fmt: skip
        if self.stale:
            by_reason: dict[str, list[str]] = {}
            for item in self.stale:
                name, _, why = item.partition(": ")
                by_reason.setdefault(why, []).append(name)
            reasons = [f"{_some(names)}: {why}" for why, names in by_reason.items()]
            parts.append(f"{len(self.stale)} stale job(s): {'; '.join(reasons)}")
        return "; ".join(parts)


def _some(names: list[str], shown: int = 3) -> str:
    """The first few names and the last (a sweep's jobs often share one reason)."""
    if len(names) <= shown + 1:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} ... {names[-1]}"


def stage_state(planned: Planned) -> StageState:
    links = _links(planned)
    if not planned.stage.sweep:
        state = StageState()
        _count(state, planned.dir, identity(planned.args), planned.dir.name, links=links)
        return state
    jobs = stage_jobs(planned.args)
    if jobs is not None:
        return _sweep_state(planned.dir, jobs, links)
    state = StageState(expected=None)
    fixed = identity(a for a in planned.args if not _is_sweep(a))
    if planned.dir.is_dir():
        for job in sorted(p for p in planned.dir.iterdir() if (p / "metrics.json").exists()):
            _count(state, job, fixed, job.name, subset=True)
    return state


def _sweep_state(
    sweep_dir: Path, jobs: dict[str, list[str]], links: dict | None = None
) -> StageState:
    """A sweep's state against the jobs it defines now (name -> overrides)."""
    state = StageState(expected=len(jobs))
    # a job dir holds a metrics.json once it ran; only those can be tabled
    found = sorted(p.parent.name for p in sweep_dir.glob("*/metrics.json"))
    state.extra = [name for name in found if name not in jobs]
    for name, overrides in jobs.items():
        run_dir = sweep_dir / name
        record = _record(state, run_dir, name)
        if record is None:
            if not (run_dir / "metrics.json").exists():
                state.missing.append(name)
            continue
        have = identity(record.get("overrides", []))
        if why := _outdated(run_dir, record, have, identity(overrides), links):
            state.stale.append(f"{name}: {why}")
        elif record["status"] == "completed":
            state.completed += 1
        else:  # train.py resumes it
            state.problems.append(f"{name}: {record['status']}: {record.get('reason', '')}")
    return state


def set_aside(stage_dir: Path, state: StageState) -> Path:
    """Move the state's extra and stale job dirs out of the stage's dir, into
    <stage>.replaced-<time>/, so no report tables them and train.py runs those jobs again;
    that dir. With extra jobs, the sweep's multirun.yaml goes too: it lists the jobs of the
    sweep that made them (the next run writes today's)."""
    kept = stage_dir.with_name(f"{stage_dir.name}.replaced-{datetime.now():%Y%m%d-%H%M%S}")
    kept.mkdir(exist_ok=True)
    names = state.aside + (["multirun.yaml"] if state.extra else [])
    for name in names:
        if (stage_dir / name).exists():
            (stage_dir / name).rename(kept / name)
    return kept


def set_aside_all(stages: list[Planned], unknowable: frozenset[str] = frozenset()) -> list[str]:
    """set_aside every sweep stage's extra and stale jobs, as the runner does before it
    runs a stage (for the stages a report reads but this invocation did not run): a line
    for each stage that had some. A stage in `unknowable` (its choice cannot be made, so
    none of its jobs can be what it takes) has every job set aside."""
    lines = []
    for planned in stages:
        if not (planned.stage.sweep and planned.dir.is_dir()):
            continue
        if planned.name in unknowable:
            state = _sweep_state(planned.dir, {})
        else:
            state = stage_state(planned)
        if state.aside:
            kept = set_aside(planned.dir, state)
            lines.append(f"{planned.name}: {state.describe_aside()}; moved aside to {shown(kept)}")
    return lines


def _record(state: StageState, run_dir: Path, label: str) -> dict | None:
    """The run's metrics.json; None when there is none, or when it is corrupt (said)."""
    try:
        return read_metrics(run_dir)
    except CorruptFileError as e:
        state.problems.append(f"{label}: corrupt: {e}")
        return None


def _count(
    state: StageState, run_dir: Path, want: dict, label: str, subset=False, links=None
) -> None:
    record = _record(state, run_dir, label)
    if record is None:
        return
    have = identity(record.get("overrides", []))
    if subset:  # a sweep job: its swept values come on top of the stage's fixed overrides
        have = {k: v for k, v in have.items() if k in want}
        if have != want:
            state.problems.append(
                f"{label}: holds a run with other overrides ({_difference(have, want)}); "
                f"delete {run_dir} to run this stage there again"
            )
            return
    if why := _outdated(run_dir, record, have, want, links):  # set aside, run again
        state.changed.append(f"{label}: {why}")
    elif record["status"] == "completed":
        state.completed += 1
    else:
        state.problems.append(f"{label}: {record['status']}: {record.get('reason', '')}")


def _outdated(run_dir: Path, record: dict, have: dict, want: dict, links: dict | None) -> str:
    """Why a run (overrides `have`) is not the one its stage would run now (`want`), "" when
    it is: other overrides, a resolved config that changed since, or a need that changed."""
    if differs := _difference(have, want, links):
        return f"other overrides ({differs})"
    if changes := config_changes(run_dir, record):
        return f"its resolved config changed ({changes})"
    return consumed_changes(record, links or {})


def _in_root(overrides: dict[str, str], links: dict | None) -> dict[str, str]:
    """The overrides with each path to an earlier stage (a `key={stage}` link, a
    `consumed.KEY=<table>@<identity>` choice) cut to the stage's name: a root moved or
    copied elsewhere holds the same runs, and what each link reads is checked by identity
    (consumed_changes; a choice carries its table's)."""
    out = dict(overrides)
    for key, value in overrides.items():
        if key in (links or {}) or key.startswith("consumed."):
            table, at, ident = value.rpartition("@") if "@" in value else (value, "", "")
            out[key] = Path(table).name + at + ident
    return out


def _links(planned: Planned) -> dict[str, Path]:
    """key -> the earlier stage's run dir, for each `key={stage}` override of the stage."""
    from ucl.pipeline.stages import REFERENCE

    links = {}
    for override in planned.stage.overrides:
        key, value = split_override(override)
        if (m := REFERENCE.fullmatch(value)) and not m[2]:
            links[key] = planned.dir.parent / m[1]
    return links


def consumed_changes(record: dict, links: dict[str, Path]) -> str:
    """How what a completed run read from its earlier runs differs from what they hold now
    (a need ran again, or changed): "" when nothing differs."""
    if record.get("status") != "completed":
        return ""
    consumed = record.get("consumed") or {}
    out = []
    for key, run_dir in links.items():
        now = _run_identity(run_dir)
        had = (consumed.get(key) or {}).get("identity")
        if had != now:
            what = "not recorded" if had is None else f"{had} there"
            out.append(f"{key}={shown(run_dir)} changed since it ran ({what}, {now} now)")
    return "; ".join(out)


_IDENTITIES: dict[tuple, str | None] = {}  # a running stage is looked at every few seconds


def _run_identity(run_dir: Path) -> str | None:
    from ucl.errors import UclError
    from ucl.rundir import run_identity

    try:
        stats = [(run_dir / f).stat() for f in ("metrics.json", "model.pt")]
    except OSError:
        return None
    key = (str(run_dir), *((s.st_mtime_ns, s.st_size) for s in stats))
    if key not in _IDENTITIES:
        try:
            _IDENTITIES[key] = run_identity(run_dir)
        except (UclError, OSError):
            _IDENTITIES[key] = None
    return _IDENTITIES[key]


def config_changes(run_dir: Path, record: dict) -> str:
    """How the config the run's own overrides compose to today differs from the one it ran
    with (a default or a preset in conf/ changed since); "" when it does not, or when the
    run predates the config record."""
    if "identity" not in record:
        return ""
    now = _composed(tuple(record.get("overrides", [])))
    if now is None or rundir.identity_hash(now) == record["identity"]:
        return ""
    before = rundir.read_config_record(run_dir) or {}
    return rundir.describe(rundir.differences(rundir.identity(before), rundir.identity(now)))


_COMPOSED: dict[tuple[str, ...], dict | None] = {}  # a running sweep is looked at often
_BASES: dict[tuple[str, ...], object] = {}


def _composed(overrides: tuple[str, ...]) -> dict | None:
    """The config a job's overrides compose to today, resolved; None when they no longer
    compose. A composition costs about 70 ms, and a pipeline's root holds a hundred jobs
    that differ mostly in plain values (seed, lr). So the other overrides (config groups,
    additions, deletions) are composed once, and each job's plain values are set on a copy
    after it, as Hydra itself sets them once the config groups are composed."""
    if overrides not in _COMPOSED:
        from hydra.errors import HydraException
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        from ucl.config import compose

        composed, values = _split(overrides)
        try:
            if composed not in _BASES:
                _BASES[composed] = compose(list(composed))
            cfg = copy.deepcopy(_BASES[composed])
            for key, value in values:
                OmegaConf.update(cfg, key, value, merge=True)
            _COMPOSED[overrides] = OmegaConf.to_container(cfg, resolve=True)
        except (HydraException, OmegaConfBaseException, ValueError):
            _COMPOSED[overrides] = None
    return _COMPOSED[overrides]


def _split(overrides: tuple[str, ...]) -> tuple[tuple[str, ...], list[tuple[str, object]]]:
    """(the overrides to compose, the (key, parsed value) of those to set after): a plain
    value of a key that is no config group and that no other override touches."""
    plain = {item: value for item in overrides if (value := _plain_value(item)) is not None}
    keys = [split_override(item)[0].lstrip("+~") for item in overrides]

    def alone(key: str) -> bool:  # no other override sets it, a part of it or a node above it
        return (
            sum(f"{k}.".startswith(f"{key}.") or f"{key}.".startswith(f"{k}.") for k in keys) == 1
        )

    moved = [item for item in overrides if item in plain and alone(plain[item][0])]
    return tuple(i for i in overrides if i not in moved), [plain[i] for i in moved]


@functools.lru_cache(maxsize=4096)
def _plain_value(item: str) -> tuple[str, object] | None:
    """(key, parsed value) of an override that sets a plain value, which Hydra applies after
    composing the config groups; None for a group's option, an addition or deletion, or one
    that does not parse (composed, for Hydra's own verdict). Cached: a root's jobs share
    most of their overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType
    from hydra.errors import HydraException

    from ucl.config import CONF_DIR

    try:
        o = OverridesParser.create().parse_override(item)
    except HydraException:
        return None
    key = o.key_or_group
    if (o.type == OverrideType.CHANGE and o.package is None and not o.is_sweep_override()
            and not key.startswith("hydra") and not (CONF_DIR / key).is_dir()):  # fmt: skip
        return key, o.value()
    return None


def identity(overrides) -> dict[str, str]:
    """key -> value of the overrides that change what a run computes (not where or how:
    hydra.* settings and groups such as hydra/launcher, which a run's record never lists),
    each value as Hydra's sweeper writes it (_as_launched)."""
    out = {}
    for item in overrides:
        key, value = split_override(item)
        if changes_result(key):
            out[key] = _as_launched(str(item), value)
    return out


@functools.lru_cache(maxsize=4096)
def _as_launched(item: str, value: str) -> str:
    """An override's value as a multirun job records it: Hydra's sweeper writes each value
    back from its parsed form (lr=1e9 as lr=1000000000.0), a single run as it was typed. A
    stage run by a launcher (a multirun of one job) and the same stage run here, or its
    plan, then agree."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        override = OverridesParser.create().parse_override(item)
    except HydraException:
        return value
    return value if override.is_sweep_override() else override.get_value_element_as_str()


def _difference(have: dict, want: dict, links: dict | None = None) -> str:
    """The overrides that differ, "" when none does (a link to an earlier stage compares by
    the stage's name: _in_root)."""
    a, b = _in_root(have, links), _in_root(want, links)
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {have.get(k)!r} there, {want.get(k)!r} now" for k in keys)


def _is_sweep(arg: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(arg).is_sweep_override()


_JOBS: dict[tuple[str, ...], dict[str, list[str]] | None] = {}  # looked at every few seconds


def stage_jobs(args: tuple[str, ...]) -> dict[str, list[str]] | None:
    """The jobs `train.py -m ARGS` launches, by dir name, with their overrides: the preset's
    hydra.sweeper.params with the command line's sweeps replacing them by key, multiplied
    out (Hydra's basic sweeper). None when that cannot be known here (a sweep over glob()
    or a preset that does not compose): the stage then runs, and train.py skips the jobs
    that already completed."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from ucl.config import CONF_DIR
    from ucl.schema import register_schema

    if args in _JOBS:
        return _JOBS[args]
    parser = OverridesParser.create()
    try:
        given = parser.parse_overrides(list(args))
        fixed = [a for a, o in zip(args, given, strict=True) if not o.is_sweep_override()]
        register_schema()
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=fixed, return_hydra_config=True)
        params = cfg.hydra.sweeper.get("params") or {}
        jobs = sweep_jobs(dict(params), list(args))
    except (HydraException, ValueError):
        jobs = None
    _JOBS[args] = jobs
    return jobs
