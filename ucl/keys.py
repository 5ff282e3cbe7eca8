"""The config's names: the builders a config can pick by name (the registries), and config
keys by what they say about a run: the key an override sets, the keys that do not change
what a run computes, the links to earlier runs, and the sweep job dir names made of the
swept keys (`hidden=64`, `activation=elu,hidden=128`).

A registry maps a name (the value a config gives, e.g. ``model.name: mlp``) to a builder.
``register`` adds one, ``create`` builds one, ``names`` lists them. An unknown name lists
the valid ones and suggests the closest; a name registered twice is an error, so two
modules cannot silently shadow each other.

Imported by train.py before Hydra starts (conf/config.yaml's `hydra.sweep.subdir` calls
the `ucl.job_name` resolver registered here), and by every component that registers
itself, so it imports nothing of ucl's. A job's name depends only on its own overrides and
on which keys the sweep varies, so re-running a sweep into the same dir finds the same
jobs.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ucl.errors import UclError

# Knobs that say how or where a run executes, not what it computes: they may differ
# between a run and its continuation (resume=, a re-run sweep), they are not part of a
# run's identity, and a sweep job's name leaves them out unless the sweep varies them.
RUNTIME_KEYS = frozenset(
    {
        "resume",
        "skip_completed",
        "device",
        "threads",
        "progress",
        "checkpoint_every",
        "dataset.root",
        "dataset.idx_dir",
        "dataset.download",
        "dataset.dir",  # where the retinal bipolar files are: not what they hold
        "dataset.counts",
        "dataset.clusters",
        "objective",  # which final metric a sweeper reads: no number of the run changes
    }
)
# A job's name also leaves out the evaluation's chunk size: it changes memory and speed,
# and a metric only in its last bits (sums in another order), so it stays in the identity
UNNAMED_KEY = "eval_batch_size"
# the links to earlier runs (run dirs): a task takes those its settings have a field for
LINKS = ("classifier", "autoencoder", "generator")


def split_override(item: object) -> tuple[str, str]:
    """(key, value) of a command-line override: `+a.b=1`, `++a.b=1` and `~a.b=1` set `a.b`,
    `group@pkg=x` chooses in `group` (Hydra's key_or_group). Parsed by hand: Hydra's
    OverridesParser takes about 1000x as long per override, and the pipelines' identities
    parse every override of every job."""
    key, _, value = str(item).partition("=")
    return key.lstrip("+~").partition("@")[0], value


def launcher(args: Iterable[str]) -> str | None:
    """The launcher the overrides choose (the last `hydra/launcher=NAME`); None for Hydra's
    basic one, which runs the jobs in train.py's own process."""
    chosen = None
    for arg in args:
        key, value = split_override(arg)
        if key == "hydra/launcher":
            chosen = value.strip() or None
    return None if chosen in (None, "basic") else chosen


def on_slurm(args: Iterable[str]) -> bool:
    """Whether the overrides send the jobs to SLURM (submitit_slurm, or its detached twin):
    they then run on when the command that sent them stops."""
    return "slurm" in (launcher(args) or "")


def changes_result(key: str) -> bool:
    """Whether the config key `key` can change what a run computes: not a runtime knob
    (RUNTIME_KEYS) and not one of Hydra's own settings (hydra.*, hydra/launcher)."""
    return key not in RUNTIME_KEYS and key != "hydra" and not key.startswith(("hydra.", "hydra/"))


RESOLVER = "ucl.job_name"
# what a dir name keeps; anything else (a `/` of `classifier=runs/x`, spaces, quotes)
# becomes `_`, so a value never makes subdirs
UNSAFE = re.compile(r"[^A-Za-z0-9._=,+@-]")
MAX_LENGTH = 100  # longer names are cut and end in a hash of the whole name


def register_resolver() -> None:
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
        chosen = [o for o in items if (k := _key(o)) != UNNAMED_KEY and changes_result(k)]
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
    return keys | {split_override(k)[0] for k in params}


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
    return split_override(override)[0]


# The registries: named builders for every component a config can pick.


class RegistryError(UclError, KeyError):
    """A name that is not registered (bad input: one line from the commands), or registered
    twice."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable], Callable]:
        """Decorator: ``@MODELS.register("mlp")`` (defaults to the builder's own name)."""

        def add(builder: Callable) -> Callable:
            key = name or builder.__name__
            if key in self._builders:
                raise RegistryError(
                    f"{self.kind} {key!r} is registered twice "
                    f"(by {_where(self._builders[key])} and {_where(builder)}); "
                    f"rename one of them."
                )
            self._builders[key] = builder
            return builder

        return add

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._builders[name]
        except KeyError:
            raise RegistryError(self._unknown(name)) from None

    def check(self, key: str, name: str) -> None:
        """Refuse a name that is not registered, naming the config key that gave it."""
        if name not in self._builders:
            raise RegistryError(f"{key}: {self._unknown(name)}")

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def _unknown(self, name: str) -> str:
        valid = ", ".join(self.names()) or "(none registered)"
        close = closest(name, self.names())
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"Unknown {self.kind} {name!r}.{hint} Valid {self.kind} names: {valid}."


def closest(
    name: object, names, n: int = 1, cutoff: float = 0.6, prefixes: bool = False
) -> list[str]:
    """The valid names most like `name` (a typo's fixes), at most `n`, best first; empty
    when none is close. Every "did you mean" of ucl asks here. `prefixes`: a name that
    begins `name`, or that `name` begins, comes first (`lr_rate` -> `lr`)."""
    name, names = str(name), sorted(map(str, names))
    close = difflib.get_close_matches(name, names, n=n, cutoff=cutoff)
    if prefixes:
        close = [k for k in names if name.startswith(k) or k.startswith(name)] + close
    return list(dict.fromkeys(close))[:n]


def _where(builder: Callable) -> str:
    return f"{getattr(builder, '__module__', '?')}.{getattr(builder, '__qualname__', builder)}"


MODELS = Registry("model")
OPTIMIZERS = Registry("optimizer")
ACTIVATIONS = Registry("activation")
DATASETS = Registry("dataset")
TASKS = Registry("task")
MEASURES = Registry("divergence measure")
