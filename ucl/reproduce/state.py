"""What a stage's dir already holds: how many of its runs completed, and why the others
did not. A stage is done when every run it should hold completed with the stage's own
overrides; anything else is run (again), and train.py resumes, skips or refuses each job."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ucl import rundir
from ucl.errors import CorruptFileError
from ucl.reproduce.stages import Planned
from ucl.rundir import RUNTIME_KEYS
from ucl.tracking import read_metrics


@dataclass
class StageState:
    completed: int = 0  # runs whose metrics.json says completed, with the stage's overrides
    expected: int | None = 1  # runs the stage should hold (None: a sweep not counted)
    problems: list[str] = field(default_factory=list)  # "<run>: <status>: <reason>"
    changed: list[str] = field(default_factory=list)  # "<run>: <key>: <old> there, <new> now"

    @property
    def done(self) -> bool:
        return self.expected is not None and self.completed >= self.expected

    def describe(self) -> str:
        total = "?" if self.expected is None else str(self.expected)
        return f"{self.completed}/{total} runs completed"


def stage_state(planned: Planned) -> StageState:
    if not planned.stage.sweep:
        state = StageState()
        _count(state, planned.dir, identity(planned.args), planned.dir.name)
        return state
    state = StageState(expected=expected_jobs(planned.args))
    fixed = identity(a for a in planned.args if not _is_sweep(a))
    if planned.dir.is_dir():
        for job in sorted(p for p in planned.dir.iterdir() if (p / "metrics.json").exists()):
            _count(state, job, fixed, job.name, subset=True)
    return state


def _count(state: StageState, run_dir: Path, want: dict, label: str, subset=False) -> None:
    try:
        record = read_metrics(run_dir)
    except CorruptFileError as e:
        state.problems.append(f"{label}: corrupt: {e}")
        return
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
    elif changes := config_changes(run_dir, record):
        state.changed.append(f"{label}: {changes}")
    elif record["status"] == "completed":
        state.completed += 1
    else:
        state.problems.append(f"{label}: {record['status']}: {record.get('reason', '')}")


def config_changes(run_dir: Path, record: dict) -> str:
    """How the config the run's own overrides compose to today differs from the one it ran
    with (a default or a preset in conf/ changed since); "" when it does not, or when the
    run predates the config record."""
    if "identity" not in record:
        return ""
    now = _composed(tuple(record.get("overrides", [])))
    if now is None or rundir.identity_hash(now) == record["identity"]:
        return ""
    before = rundir.read_config_record(run_dir, legacy=False) or {}
    return rundir.describe(rundir.differences(rundir.identity(before), rundir.identity(now)))


_COMPOSED: dict[tuple[str, ...], dict | None] = {}  # a running sweep is looked at often


def _composed(overrides: tuple[str, ...]) -> dict | None:
    if overrides not in _COMPOSED:
        from hydra.errors import HydraException
        from omegaconf import OmegaConf

        from ucl.config import compose

        try:
            cfg = OmegaConf.to_container(compose(list(overrides)), resolve=True)
        except (HydraException, ValueError):
            cfg = None
        _COMPOSED[overrides] = cfg
    return _COMPOSED[overrides]


def identity(overrides) -> dict[str, str]:
    """key -> value of the overrides that change what a run computes (not where or how)."""
    out = {}
    for item in overrides:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+~")
        if key not in RUNTIME_KEYS and key != "hydra" and not key.startswith("hydra."):
            out[key] = value
    return out


def _difference(have: dict, want: dict) -> str:
    keys = sorted(k for k in have.keys() | want.keys() if have.get(k) != want.get(k))
    return ", ".join(f"{k}: {have.get(k)!r} there, {want.get(k)!r} now" for k in keys)


def _is_sweep(arg: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(arg).is_sweep_override()


_EXPECTED: dict[tuple[str, ...], int] = {}  # a running sweep is looked at every few seconds


def expected_jobs(args: tuple[str, ...]) -> int | None:
    """How many jobs `train.py -m ARGS` launches: the preset's hydra.sweeper.params with the
    command line's sweeps replacing them by key, multiplied out (Hydra's basic sweeper).
    None when that cannot be known here (a sweep over glob() or a preset that does not
    compose): the stage then runs, and train.py skips the jobs that already completed."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from ucl.config import CONF_DIR
    from ucl.schema import register_schema

    if args in _EXPECTED:
        return _EXPECTED[args]
    parser = OverridesParser.create()
    try:
        given = parser.parse_overrides(list(args))
        fixed = [a for a, o in zip(args, given, strict=True) if not o.is_sweep_override()]
        register_schema()
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=fixed, return_hydra_config=True)
        params = cfg.hydra.sweeper.get("params") or {}
        swept = [f"{k}={v}" for k, v in params.items()]
        values: dict[str, int] = {}
        for o in parser.parse_overrides(swept) + given:  # the command line comes last: wins
            values[o.get_key_element()] = (
                len(list(o.sweep_string_iterator())) if o.is_sweep_override() else 1
            )
    except (HydraException, ValueError):
        return None
    _EXPECTED[args] = math.prod(values.values())  # Hydra's basic sweeper: every combination
    return _EXPECTED[args]
