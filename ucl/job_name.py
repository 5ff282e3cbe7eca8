"""Sweep job dirs named by what differs between the jobs: `hidden=64`,
`activation=elu,hidden=128`, so TensorBoard's run list and the summary rows say it.

conf/config.yaml's `hydra.sweep.subdir` calls the `ucl.job_name` resolver registered here.
A name depends only on the job's own overrides and on which keys the sweep varies, so
re-running a sweep into the same dir finds the same jobs.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ucl.runtime_keys import RUNTIME_KEYS

RESOLVER = "ucl.job_name"
# what a dir name keeps; anything else (a `/` of `classifier=runs/x`, spaces, quotes)
# becomes `_`, so a value never makes subdirs
UNSAFE = re.compile(r"[^A-Za-z0-9._=,+@-]")
MAX_LENGTH = 100  # longer names are cut and end in a hash of the whole name
# keys that say where and how a run executes, not what it is: not in a name unless swept
RUNTIME = RUNTIME_KEYS | {"eval_batch_size"}


def register() -> None:
    """Make `${ucl.job_name:...}` known to OmegaConf (Hydra resolves it per job)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, job_name)


def job_name(overrides, sweep_dir, num) -> str:
    """The dir name of one job: its overrides of the swept keys, sorted by key; when the
    sweep varies nothing, its other overrides but the runtime knobs; else its number."""
    return name_for(overrides, swept_keys(Path(str(sweep_dir)) / "multirun.yaml"), num)


def name_for(overrides, swept: set[str], num) -> str:
    """job_name, given the keys the sweep varies."""
    items = [str(o) for o in overrides]
    chosen = [o for o in items if _key(o) in swept]
    if not chosen:
        chosen = [o for o in items if _key(o) not in RUNTIME]
    return safe(",".join(sorted(chosen, key=_key))) or str(num)


def swept_keys(multirun_yaml: Path) -> set[str]:
    """The keys the sweep varies: command-line sweeps (`hidden=64,128`, `range(...)`) and
    the sweeper's params (experiment presets), from the sweep's multirun.yaml, which
    Hydra's sweeper writes before it launches the jobs (none: an empty set)."""
    import yaml

    if not multirun_yaml.is_file():
        return set()
    hydra = (yaml.safe_load(multirun_yaml.read_text()) or {}).get("hydra") or {}
    given = (hydra.get("overrides") or {}).get("task") or []
    return swept_in((hydra.get("sweeper") or {}).get("params") or {}, [str(o) for o in given])


def swept_in(params, given: list[str]) -> set[str]:
    """swept_keys of the sweeper's `params` (key -> values) and the command line `given`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(given)
    keys = {o.key_or_group for o in parsed if o.is_sweep_override()}
    return keys | {str(k).lstrip("+~") for k in params}


def sweep_jobs(params, given: list[str]) -> dict[str, list[str]]:
    """The jobs Hydra's basic sweeper launches for the sweeper's `params` (key -> values)
    and the command line `given` (which wins by key): each job's dir name with its
    overrides, in launch order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    swept = [f"{k}={v}" for k, v in params.items()]
    parsed = OverridesParser.create().parse_overrides([*swept, *given])
    batches = BasicSweeper.split_arguments(parsed, None)[0]
    keys = swept_in(params, given)
    return {name_for(o, keys, num): list(o) for num, o in enumerate(batches)}


def safe(name: str) -> str:
    """`name` as one short, filesystem-safe path component."""
    name = UNSAFE.sub("_", name)
    if len(name) > MAX_LENGTH:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_LENGTH - 9]}-{digest}"
    return name


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")
