"""The stages of the reproduction, declared in one place: what each runs (train.py
overrides), what it needs (a `{stage}` in an override is that stage's run dir), how long it
should take, and how --smoke shrinks it.

A stage runs into the fixed dir <root>/<name>: one run, or with `sweep` a multirun with one
numbered dir per job below it. The estimates are minutes of wall time at the problem set's
settings with one torch thread, two stages side by side on 2 cores, as `scripts/reproduce.py`
runs them by default: what runs/reproduce/stages.json recorded for full reproductions on
full MNIST (a 2-core AMD EPYC with AVX2 and no native bfloat16, so the GAN trains in fp32;
two, a day apart, agreed within 0.3 minutes a stage).
The four tables run 3 seeds per cell at 10 epochs each. The sum is about 81 minutes of work,
41 two at a time; the chain best_mlp -> gan -> divergence_gan alone takes 35 of them.
`--estimate NAME=MINUTES` replaces one, and runs/reproduce/stages.json records what each
stage really took.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ucl.config import CONF_DIR, REPO
from ucl.keys import launcher, split_override

FIXTURE_MNIST = REPO / "tests" / "fixtures" / "mnist"  # the committed 2000/500-digit subset
# In an override, "{best_mlp}" is that stage's run dir and "{activation_sweep.activation}"
# the value of `activation` in the best cell of that sweep's table (ucl/pipeline/choices.py).
REFERENCE = re.compile(r"\{(\w+)(?:\.([\w.]+))?\}")

RETINA_COUNTS_ENV = "UCL_RETINA_COUNTS"  # the real GEO counts file (GSE81904_...txt.gz)
RETINA_CLUSTERS_ENV = "UCL_RETINA_CLUSTERS"  # the real SCP3 cluster file
RETINA_DIR_ENV = "UCL_RETINA_DIR"  # or a folder holding both (conf/dataset/retinal_bipolar.yaml)


# (environment, smoke root or None) -> the dataset overrides of a stage
DataOverrides = Callable[[Mapping[str, str], Path | None], tuple[str, ...]]


def mnist_data(env: Mapping[str, str], smoke_root: Path | None) -> tuple[str, ...]:
    """Full runs: the dataset config's own source (UCL_MNIST_DIR, or torchvision's download).
    --smoke: the committed MNIST subset, imported under the smoke root, so the real data
    root never receives the subset."""
    if smoke_root is None:
        return ()
    return (
        f"dataset.idx_dir={shown(FIXTURE_MNIST)}",
        f"dataset.root={shown(smoke_root / 'data')}",
    )


def retina_data(env: Mapping[str, str], smoke_root: Path | None) -> tuple[str, ...]:
    """The real retina files when both environment variables name them, or when the dataset
    config's folder (UCL_RETINA_DIR, default data/retina) holds both; else the synthetic
    stand-in (whose runs say "synthetic" in metrics.json and every figure title). --smoke
    always takes a small synthetic set."""
    if smoke_root is not None:
        return (
            "dataset=retina_synthetic",
            f"dataset.root={shown(smoke_root / 'data')}",
            *SMOKE_RETINA,
        )
    counts, clusters = env.get(RETINA_COUNTS_ENV), env.get(RETINA_CLUSTERS_ENV)
    if counts and clusters:
        return (
            "dataset=retinal_bipolar",
            f"dataset.counts={counts}",
            f"dataset.clusters={clusters}",
        )
    if counts or clusters:
        given, missing = (
            (RETINA_COUNTS_ENV, RETINA_CLUSTERS_ENV)
            if counts
            else (RETINA_CLUSTERS_ENV, RETINA_COUNTS_ENV)
        )
        raise ValueError(
            f"{given} is set but {missing} is not: the real retina data needs both files "
            f"(GSE81904_BipolarUMICounts_Cell2016.txt.gz and clust_retinal_bipolar.txt); "
            f"set {missing} too, or unset {given} to use the synthetic stand-in"
        )
    from omegaconf import OmegaConf

    # the two files' names as the dataset config gives them (ucl.data would load torch)
    dataset = OmegaConf.load(CONF_DIR / "dataset" / "retinal_bipolar.yaml")
    names = [Path(dataset[key]).name for key in ("counts", "clusters")]
    folder = Path(env.get(RETINA_DIR_ENV) or REPO / "data" / "retina")  # as the dataset config
    if all((folder / name).is_file() for name in names):
        return ("dataset=retinal_bipolar", f"dataset.dir={shown(folder)}")
    return ("dataset=retina_synthetic",)


def no_data(env: Mapping[str, str], smoke_root: Path | None) -> tuple[str, ...]:
    """Stages that draw their own samples (no dataset)."""
    return ()


@dataclass(frozen=True)
class Stage:
    name: str  # also the stage's dir under the pipeline's root
    overrides: tuple[str, ...]  # train.py overrides; "{other}" / "{other.key}": see REFERENCE
    minutes: float  # estimated wall time at full settings, 2-core CPU
    smoke: tuple[str, ...] = ()  # overrides --smoke adds (tiny steps, fewer sweep values)
    smoke_minutes: float = 0.3  # estimated wall time under --smoke
    sweep: bool = False  # a multirun (-m): one job dir per combination below the stage dir
    data: DataOverrides = mnist_data  # (environment, smoke root or None) -> dataset overrides
    title: str = ""  # what the stage is, for progress lines and the report
    after: tuple[str, ...] = ()  # stages it needs without naming them in an override

    @property
    def references(self) -> list[tuple[str, str | None]]:
        """(stage, key) of every reference in the overrides; key None: the run dir."""
        return [(m[0], m[1] or None) for o in self.overrides for m in REFERENCE.findall(o)]

    @property
    def needs(self) -> tuple[str, ...]:
        """The stages this one needs, in order of first mention."""
        return tuple(dict.fromkeys([*self.after, *(name for name, _ in self.references)]))

    @property
    def choices(self) -> bool:
        """Whether an override takes a value from an earlier table."""
        return any(key for _, key in self.references)


SMOKE_RETINA = ("dataset.cells=1500", "dataset.genes=400")  # still every class, ~1% ones too
DATA_SOURCES: dict[str, DataOverrides] = {
    "mnist": mnist_data,
    "retina": retina_data,
    "none": no_data,
}
PIPELINES = REPO / "conf" / "pipeline"  # pipeline=<name>: conf/pipeline/<name>.yaml


@dataclass(frozen=True)
class Pipeline:
    """A pipeline file made into stages: where they run, whether at smoke settings, and
    where the problem set's report goes (None: no report)."""

    name: str
    stages: tuple[Stage, ...]
    root: Path
    smoke: bool = False
    report: Path | None = None


class PipelineError(ValueError):
    """A pipeline file that cannot run: one line naming the file, the stage and the fix."""


def load_pipeline(name: str | Path, overrides: Iterable[str] = ()) -> Pipeline:
    """conf/pipeline/<name>.yaml, or the YAML file `name` names, composed by Hydra (a
    pipeline file may extend another through its defaults list; `overrides` such as
    stages.gan.minutes=20 apply on top), its stages checked (check_stages)."""
    import yaml
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.parent != Path("."):
        folder, config = path.absolute().parent, path.stem
        if not path.is_file():
            raise PipelineError(
                f"pipeline={name}: no such file; give conf/pipeline/<name>.yaml's name or "
                f"a YAML file's path"
            )
    else:
        folder, config = PIPELINES, str(name)
        if not (folder / f"{config}.yaml").is_file():
            known = ", ".join(sorted(p.stem for p in PIPELINES.glob("*.yaml")))
            raise PipelineError(
                f"pipeline={name}: no conf/pipeline/{name}.yaml; the pipelines are: {known}, "
                f"or give a YAML file's path"
            )
    try:
        with initialize_config_dir(str(folder), version_base="1.3"):
            cfg = OmegaConf.to_container(compose(config, overrides=list(overrides)), resolve=True)
    except HydraException as e:
        raise PipelineError(f"pipeline={name}: {str(e).splitlines()[0]}") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise PipelineError(f"pipeline={name}: not YAML: {e.problem}{at}") from None
    where = f"pipeline={name}"
    if unknown := sorted(set(cfg) - {"root", "report", "smoke", "stages"}):
        raise PipelineError(
            f"{where}: unknown key {unknown[0]!r}; a pipeline has root, report, smoke and stages"
        )
    stages = cfg.get("stages") or {}
    if not isinstance(stages, dict) or not stages:
        raise PipelineError(
            f"{where}: no stages; list them under `stages:`, each a name with its overrides"
        )
    made = tuple(_stage(where, n, entry) for n, entry in stages.items())
    root = Path(cfg.get("root") or f"runs/{path.stem}")
    report = cfg.get("report")
    return Pipeline(
        path.stem,
        made,
        root if root.is_absolute() else REPO / root,
        bool(cfg.get("smoke", False)),
        None if report is None else (Path(report) if Path(report).is_absolute() else REPO / report),
    )


STAGE_KEYS = {"overrides", "sweep", "needs", "minutes", "smoke", "smoke_minutes", "data", "title"}


def _stage(where: str, name: str, entry) -> Stage:
    where = f"{where}: stage {name}"
    if not isinstance(entry, dict):
        raise PipelineError(
            f"{where}: give a mapping with `overrides:` (a list of train.py overrides)"
        )
    if unknown := sorted(set(entry) - STAGE_KEYS):
        raise PipelineError(
            f"{where}: unknown key {unknown[0]!r}; a stage has {', '.join(sorted(STAGE_KEYS))}"
        )
    if not re.fullmatch(r"\w+", name):
        raise PipelineError(f"{where}: a stage's name is letters, digits and _ (it names its dir)")
    data = entry.get("data", "mnist")
    if data not in DATA_SOURCES:
        raise PipelineError(f"{where}: data={data!r}; give one of {', '.join(DATA_SOURCES)}")
    lists = {}
    for key in ("overrides", "smoke", "needs"):
        value = entry.get(key) or []
        if isinstance(value, str) or not all(isinstance(v, str | int | float) for v in value):
            raise PipelineError(
                f"{where}: {key} must be a list of strings, e.g. [experiment=gan, seed=0]"
            )
        lists[key] = tuple(str(v) for v in value)
    for key in ("minutes", "smoke_minutes"):
        value = entry.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise PipelineError(
                f"{where}: {key}={value!r} must be a number of minutes, e.g. {key}: 5"
            )
    if not isinstance(entry.get("sweep", False), bool):
        raise PipelineError(f"{where}: sweep={entry['sweep']!r} must be true or false")
    return Stage(
        name,
        lists["overrides"],
        minutes=float(entry.get("minutes", 1.0)),
        smoke=lists["smoke"],
        smoke_minutes=float(entry.get("smoke_minutes", 0.3)),
        sweep=entry.get("sweep", False),
        data=DATA_SOURCES[data],
        title=str(entry.get("title") or name),
        after=lists["needs"],
    )


def problem_set_stages() -> tuple[Stage, ...]:
    """The problem set's stages, as conf/pipeline/problem_set.yaml lists them."""
    return load_pipeline("problem_set").stages


@dataclass(frozen=True)
class Planned:
    """A stage made concrete: its dir, and the exact train.py arguments."""

    stage: Stage
    dir: Path
    args: tuple[str, ...]
    minutes: float

    @property
    def name(self) -> str:
        return self.stage.name


@dataclass
class Plan:
    root: Path
    smoke: bool
    stages: list[Planned] = field(default_factory=list)

    def __getitem__(self, name: str) -> Planned:
        for p in self.stages:
            if p.name == name:
                return p
        raise KeyError(f"no stage {name!r}; the stages are: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.stages]


def plan(
    root: Path,
    *,
    smoke: bool = False,
    stages: Iterable[Stage] | None = None,
    env: Mapping[str, str] | None = None,
    estimates: Mapping[str, float] | None = None,
    threads: int | None = None,
    extra: Iterable[str] = (),
) -> Plan:
    """The stages in an order their needs allow, with their dirs under `root` and their
    train.py arguments (a "{stage}" replaced by its dir; a "{stage.key}" is left for the
    runner, which knows the table once that stage completed); `estimates` (stage ->
    minutes) replaces the declared estimates; `threads` (torch threads per run, when several
    stages run at once) applies where a stage does not set its own, and not when `extra`
    chooses a launcher (each job's cores are then the launcher's: cpus_per_task); `extra`
    overrides go to every stage, last (e.g. hydra/launcher=submitit_slurm)."""
    env = os.environ if env is None else env
    estimates = dict(estimates or {})
    stages = ordered_stages(problem_set_stages() if stages is None else stages)
    known = {s.name for s in stages}
    if unknown := sorted(set(estimates) - known):
        raise ValueError(f"--estimate names no stage: {unknown}; the stages are: {sorted(known)}")
    root = Path(root).absolute()
    extra = tuple(extra)
    if (chosen := launcher(extra)) is not None:  # the jobs run where the launcher puts them
        threads = None
        if chosen.endswith("_detached"):
            raise ValueError(
                f"hydra/launcher={chosen} returns before its jobs end, so no stage could wait "
                f"for the stages it needs; give hydra/launcher={chosen.removesuffix('_detached')}"
                f", which waits (run the pipeline in tmux or screen to log out)"
            )
    result = Plan(root, smoke)
    dirs = {stage.name: shown(root / stage.name) for stage in stages}
    for stage in stages:
        args = [REFERENCE.sub(lambda m: m[0] if m[2] else dirs[m[1]], o) for o in stage.overrides]
        if threads is not None:  # first: a stage's own threads= replaces it
            args.insert(0, f"threads={threads}")
        args += stage.data(env, root if smoke else None)
        minutes = stage.minutes
        if smoke:
            args += stage.smoke
            minutes = stage.smoke_minutes
        minutes = estimates.get(stage.name, minutes)
        args += extra
        result.stages.append(Planned(stage, root / stage.name, merged(args), minutes))
    return result


OWN_DIRS = ("hydra.run.dir", "hydra.sweep.dir")  # each stage's: the runner gives them


def check_overrides(plan: Plan) -> None:
    """Each stage's train.py overrides compose as train.py would compose them: a key the
    config lacks, an option with no file, a value of the wrong type, several values in a
    stage that is not a sweep, or a dir of its own are refused before anything runs
    (PipelineError). A sweep is composed at its first values, and each further value is
    checked against that config; a value taken from a table, a search space (an interval, a
    glob) and the launcher's hydra settings are left to the run."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from ucl.schema import unsettable

    parser = OverridesParser.create()
    for planned in plan.stages:
        where, fixed, further = f"stage {planned.name}", {}, []
        for arg in planned.args:
            key = split_override(arg)[0]
            if message := unsettable(arg, CONF_DIR):
                raise PipelineError(f"{where}: {message}")
            if key in OWN_DIRS:
                raise PipelineError(
                    f"{where}: {arg}: the pipeline gives each stage its dir "
                    f"(root/{planned.name}); drop it"
                )
            if REFERENCE.search(arg) or key.startswith(("hydra.", "hydra/")):
                continue
            try:
                override = parser.parse_override(arg)
            except HydraException as e:
                raise PipelineError(f"{where}: {arg}: {str(e).splitlines()[0]}") from None
            if override.is_sweep_override() and not planned.stage.sweep:
                raise PipelineError(
                    f"{where}: {arg} lists several values, but {planned.name} is not a sweep; "
                    f"add sweep: true to the stage, or give one value"
                )
            if override.is_sweep_override():
                try:  # an interval (a sweeper's search space) or a glob has no list of values
                    texts = list(override.sweep_string_iterator())
                    values = list(zip(texts, override.sweep_iterator(), strict=True))
                except HydraException:
                    continue
                further += [(override, key, *value) for value in values[1:]]
                arg = f"{key}={values[0][0]}"
            fixed[key] = arg
        config = _compose_or_refuse(where, fixed)
        for override, key, text, value in further:
            if not _takes(config, override, value):
                _compose_or_refuse(where, {**fixed, key: f"{key}={text}"})


def _compose_or_refuse(where: str, fixed: dict[str, str]):
    """The config these overrides compose to, or the composition's refusal as a
    PipelineError naming the override it is about."""
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    from ucl.config import compose

    try:
        return compose(list(fixed.values()))
    except (HydraException, OmegaConfBaseException) as e:
        cause = e.__cause__
        key = getattr(cause, "full_key", None) or (
            e.missing_cfg_file.split("/")[0] if isinstance(e, MissingConfigException) else None
        )
        said = str(cause or e).splitlines()[0]
        if isinstance(e, MissingConfigException) and e.options:
            said += f"; the options: {', '.join(e.options)}"
        named = [a for k, a in fixed.items() if key and (k == key or k.startswith(f"{key}."))]
        given = f"{named[0]}: " if named else ""
        raise PipelineError(f"{where}: {given}{said}") from None


def _takes(config, override, value) -> bool:
    """Whether `config` takes a sweep's further value without a composition of its own (which
    costs about 70 ms): an option file of a config group, or a value the typed key accepts.
    False sends the value to a composition, for Hydra's own verdict and message."""
    from hydra.core.override_parser.types import OverrideType
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if override.type != OverrideType.CHANGE or override.package is not None:
        return False
    group = CONF_DIR / override.key_or_group
    if group.is_dir():  # an option is a file of the group's own folder (no path)
        return "/" not in str(value) and (group / f"{value}.yaml").is_file()
    try:
        OmegaConf.update(config, override.key_or_group, value, merge=False)
    except OmegaConfBaseException:
        return False
    return True


def ordered_stages(stages: Iterable[Stage]) -> list[Stage]:
    """The stages with each after the stages it needs, otherwise in the given order; a need
    that is no stage, a run-dir reference to a sweep, a choice from a stage that is not a
    sweep, or a cycle: refused in one line (ValueError)."""
    stages = list(stages)
    by_name = {s.name: s for s in stages}
    for stage in stages:
        for need, key in [*((n, None) for n in stage.after), *stage.references]:
            if need not in by_name:
                raise ValueError(
                    f"stage {stage.name} needs {need}, which is no stage of this pipeline "
                    f"(its stages: {', '.join(by_name)}); fix the name or add the stage"
                )
            if key and not by_name[need].sweep:
                raise ValueError(
                    f"stage {stage.name} takes {{{need}.{key}}}, but {need} is not a sweep: a "
                    f"choice comes from a sweep's table; write {{{need}}} for its run dir, or "
                    f"make {need} a sweep (sweep: true)"
                )
            if key is None and by_name[need].sweep and need not in stage.after:
                raise ValueError(
                    f"stage {stage.name} refers to {{{need}}}, a sweep's dir of many jobs, not "
                    f"one run; take a value of its best cell with {{{need}.KEY}}, or list it "
                    f"under needs:"
                )
    done: list[Stage] = []
    state: dict[str, str] = {}  # name -> "visiting" or "done"

    def visit(stage: Stage, path: list[str]) -> None:
        if state.get(stage.name) == "done":
            return
        if state.get(stage.name) == "visiting":
            cycle = path[path.index(stage.name) :] + [stage.name]
            raise ValueError(
                f"stages {' -> '.join(cycle)} form a cycle: each waits for the next; remove "
                f"one of these needs"
            )
        state[stage.name] = "visiting"
        for need in stage.needs:
            visit(by_name[need], [*path, stage.name])
        state[stage.name] = "done"
        done.append(stage)

    for stage in stages:
        visit(stage, [])
    return done


def select(full: Plan, only: Iterable[str]) -> Plan:
    """The plan cut to `only` and the stages they need, transitively, in plan order."""
    wanted: set[str] = set()
    todo = list(only)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += full[name].stage.needs  # full[name] names the valid stages if unknown
    return replace(full, stages=[p for p in full.stages if p.name in wanted])


def merged(args: Iterable[str]) -> tuple[str, ...]:
    """Overrides with one value per key: a later one (--smoke's) replaces an earlier one in
    its place, so `normal_var=1,2,4,8,16` then `normal_var=1,16` sweeps over 1 and 16."""
    by_key: dict[str, str] = {}
    for arg in args:
        by_key[arg.partition("=")[0]] = arg
    return tuple(by_key.values())


def shown(path: Path) -> str:
    """A run dir as overrides name it: relative to the repo when inside it (portable
    metrics.json), absolute otherwise."""
    path = Path(path).absolute()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)
