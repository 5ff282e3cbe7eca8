"""Train anything ucl knows: `python train.py model=mlp activation=elu -m hidden=64,128,256`.

The command line is checked here before Hydra parses it, and before anything loads torch:
a key the config does not have, or a group option with no YAML file, is one line naming
the closest valid ones. Hydra then composes the config and calls `main` once per job;
`ucl.run.run` runs it.
"""

from ucl.lifecycle import ctrl_c_ends_quietly

ctrl_c_ends_quietly(__name__)  # until ucl's own handlers are in place (command)

import dataclasses  # noqa: E402
import functools  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

from ucl.lifecycle import (  # noqa: E402
    RunInterrupted,
    describe,
    file_in_the_way,
    hydra_dir,
    interrupting,
    remove_if_empty,
    sleeping_threads,
    stopping,
)

sleeping_threads()  # before torch loads OpenMP: idle threads sleep (docs/performance.md, "Threads")

import hydra  # noqa: E402

from ucl.config import CONF_DIR  # noqa: E402
from ucl.errors import ConfigError  # noqa: E402
from ucl.keys import closest, split_override  # noqa: E402
from ucl.rundir import check_sweep_ours  # noqa: E402
from ucl.schema import (  # noqa: E402
    EXAMPLES,
    GROUPS,
    UclConfig,
    group_options,
    register_schema,
    unsettable,
)

register_schema()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    return job(cfg)  # the metric `objective` names: what a sweeper (Optuna) optimises


# Hydra's flags that each choose what the command does: one at a time
MODES = {"-m": "multirun", "--multirun": "multirun", "-r": "run", "--run": "run", "-c": "cfg",
         "--cfg": "cfg", "-i": "info", "--info": "info"}  # fmt: skip
USAGE_ERROR = 2  # exit status of a refused invocation (bad input), as argparse uses
DEBUG = False  # --debug: command sets it; a single run's job is in its process


def command(argv: list[str]) -> int:
    """The command: bad input is one line on stderr and exit status 2; a failed run one line
    and status 1 (its metrics.json says why); anything else, a bug, its traceback.
    `--debug` (or HYDRA_FULL_ERROR=1) shows the traceback of every error."""
    global DEBUG
    debug = DEBUG = "--debug" in argv or os.environ.get("HYDRA_FULL_ERROR") == "1"
    argv = [a for a in argv if a != "--debug"]
    if message := bad_override_message(argv):
        print(f"train.py: {message}", file=sys.stderr)
        return USAGE_ERROR
    sys.argv = multirun_flag_first(argv)
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing; we print here
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ucl.errors import NonFiniteLoss, RunFailed, UclError, machine_refused

    try:
        with interrupting():  # from the first moment: a signal ends the command, not a job
            main()
    except (RunInterrupted, KeyboardInterrupt) as e:  # no job of this process had a record
        return _stopped(getattr(e, "signum", signal.SIGINT), argv)
    except Exception as e:
        if debug:
            raise
        if (signum := stopping()) is not None:  # an import the signal cut short, and its error
            return _stopped(signum, argv)
        if isinstance(e, (UclError, HydraException, OmegaConfBaseException)):
            print(f"train.py: {one_line(e)}", file=sys.stderr)
            return USAGE_ERROR
        if isinstance(e, (NonFiniteLoss, RunFailed)):
            print(f"train.py: run failed: {one_line(e)}", file=sys.stderr)
            return 1
        if (refused := machine_refused(e)) is not None:  # before the run's first record
            print(f"train.py: {refused}", file=sys.stderr)
            return 1
        traceback.print_exc()
        print("train.py: an unexpected error (above); --debug shows it in full", file=sys.stderr)
        return 1
    return 0


def _stopped(signum: int, argv: list[str]) -> int:
    """The command stopped by a signal: one line on what became of the jobs, 128 + signum.
    A launcher's jobs run in processes of their own: joblib's workers stop (a checkpoint and
    an interrupted record, or killed by joblib first: a record that says running), SLURM's
    jobs run on."""
    from ucl.keys import launcher, on_slurm

    if on_slurm(argv):
        jobs = (
            "its SLURM jobs run on (squeue lists them, scancel stops them); the same command "
            "waits for them, then continues the sweep"
        )
    elif launcher(argv):
        jobs = (
            "the launcher's jobs stop where they are, and the same command continues each "
            "from its last checkpoint"
        )
    else:
        jobs = "nothing was recorded"
    print(f"train.py: stopped by {describe(signum)}; {jobs}", file=sys.stderr)
    return 128 + signum


def job(cfg) -> float | None:
    """One job of train.py. In a single run an error ends the process here with its one
    line (Hydra would first print a line of its own); in a sweep it is raised, so that
    the other jobs still run and Hydra names the job that failed."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from ucl.errors import NonFiniteLoss, RunFailed, UclError, machine_refused
    from ucl.schema import check_numbers

    try:
        try:
            check_numbers(cfg)  # before torch loads: a bad number is answered at once
        except UclError:
            if (made := hydra_dir()) is not None:
                remove_if_empty(made)  # as ucl.run's refusals, a refused job leaves no dir
            raise
        from ucl.run import run

        return run(cfg)
    except Exception as e:
        refused = machine_refused(e)  # a full disk before the run's first record, say
        if refused is None and not isinstance(e, (UclError, NonFiniteLoss, RunFailed)):
            raise
        sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        if sweep or DEBUG:  # the traceback shows
            raise
        failed = "" if isinstance(e, UclError) or refused else "run failed: "
        print(f"train.py: {failed}{refused or one_line(e)}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR if isinstance(e, UclError) else 1) from None


def one_line(e: BaseException) -> str:
    """An error's message, and its cause's for a config error, folded into one line."""
    cause = e.__cause__
    key, value = getattr(cause, "full_key", None), getattr(cause, "value", None)
    if key and value is not None and getattr(cause, "msg", None):
        example = EXAMPLES.get(key)
        hint = f" (e.g. {key}={example})" if example is not None else ""
        return f"{key}={value!r}: {cause.msg.splitlines()[0].strip()}{hint}"
    parts = [str(e)]
    cause = e.__cause__
    if cause is not None and type(e).__module__.startswith(("hydra", "omegaconf")):
        parts.append(str(cause))
    return " ".join(" ".join(part.split()) for part in parts if part)


def multirun_flag_first(argv: list[str]) -> list[str]:
    """Hydra's parser wants `-m` before the overrides; accept it anywhere among them."""
    flags = [a for a in argv[1:] if a in ("-m", "--multirun")]
    return [argv[0], *flags, *(a for a in argv[1:] if a not in flags)]


def bad_override_message(argv: list[str], conf_dir: Path = CONF_DIR) -> str | None:
    """A message for an override Hydra would reject, naming the closest valid choices:
    a top-level key the config does not have, or a group option with no YAML file
    (Hydra's own messages name neither the closest key nor the closest option)."""
    known = {f.name for f in dataclasses.fields(UclConfig)} | {*GROUPS, "hydra"}
    modes = {MODES[a]: a for a in reversed(argv[1:]) if a in MODES}  # each mode's first flag
    if len(modes) > 1:  # Hydra's ValueError
        return f"{' and '.join(reversed(modes.values()))}: Hydra takes one of them; drop one"
    multirun = "multirun" in modes
    for arg in argv[1:]:
        if message := unsettable(arg, conf_dir):
            return message
        if arg.startswith(("-", "+", "~")) or "=" not in arg:
            continue
        key, value = split_override(arg)
        top = key.split(".", 1)[0].split("/", 1)[0]
        if key in ("hydra.run.dir", "hydra.sweep.dir") and (file := file_in_the_way(value)):
            return f"{arg}: {file} is a file, not a folder; give {key} a folder's path"
        if key == "hydra.output_subdir" and _leaves(value):  # Hydra writes there before a job
            return (
                f"{arg}: Hydra would write its config.yaml, hydra.yaml and overrides.yaml "
                f"there, not in a folder of their own inside the run dir, over any files of "
                f"those names; give one (e.g. hydra.output_subdir=.hydra), or null"
            )
        if multirun and "," in value and (repeated := _repeated(arg)):
            return repeated
        if multirun and "interval(" in value and (basic := _interval(arg, argv, conf_dir)):
            return basic
        if key == "hydra.sweep.dir" and multirun and "${" not in value:
            try:
                check_sweep_ours(Path(value))
            except ConfigError as e:
                return f"{arg}: {e}"
        if key in GROUPS and (message := _unknown_option(key, value, conf_dir)):
            return message
        if key == "pipeline":  # conf/pipeline is a folder of conf/, so --help lists it
            return f"{arg}: a pipeline runs as python scripts/pipeline.py {arg}, not in train.py"
        if top not in known:
            close = closest(top, known, n=3, cutoff=0.4, prefixes=True)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            return (
                f"Unknown config key {top!r} in override {arg!r}.{hint} "
                f"Valid top-level keys: {', '.join(sorted(known))}."
            )
    return None


def _leaves(subdir: str) -> bool:
    """A subdir that is not a folder of its own below its parent (an interpolation is
    Hydra's to resolve)."""
    path = Path(subdir)
    return (
        "${" not in subdir
        and subdir != "null"
        and (path.is_absolute() or ".." in path.parts or not path.parts)
    )


@functools.cache  # the checks below read the same override
def _swept(arg: str):
    """Hydra's parse of a sweep override, or None where Hydra has its own word on it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_override(arg)
    except HydraException:
        return None


def _repeated(arg: str) -> str | None:
    """A sweep's value listed twice: both jobs would be one job dir, run once (in parallel,
    the second finds the first's lock)."""
    from hydra.errors import HydraException

    if (parsed := _swept(arg)) is None:
        return None
    try:
        values = [str(v) for v in parsed.sweep_iterator()]
    except (HydraException, ValueError, TypeError):  # not a plain list: Hydra's word on it
        return None
    twice = next((v for i, v in enumerate(values) if v in values[:i]), None)
    if twice is not None:
        return f"{arg} lists {twice} twice: one job dir, run once; drop the repeat"
    return None


def _interval(arg: str, argv: list[str], conf_dir: Path) -> str | None:
    """An interval to sweep, on a command that keeps Hydra's basic sweeper (which takes
    lists only): point at the search that takes one. None when a sweeper is chosen, on
    the command line or by an experiment's defaults."""
    from hydra.core.override_parser.types import IntervalSweep

    parsed = _swept(arg)
    interval = parsed.value() if parsed is not None else None
    if not isinstance(interval, IntervalSweep):
        return None
    for a in argv[1:]:
        key, _, value = a.lstrip("+").partition("=")
        chosen = conf_dir / "experiment" / f"{value}.yaml"
        if key == "hydra/sweeper" or (
            key == "experiment" and chosen.is_file() and "/hydra/sweeper" in chosen.read_text()
        ):
            return None
    key = arg.split("=", 1)[0]
    return (
        f"{arg}: the basic sweeper runs a list of values (e.g. {key}={interval.start},"
        f"{interval.end}); an interval is searched by Optuna: python train.py -m "
        f"experiment=mlp_search (pip install -e '.[search]'), or hydra/sweeper=mlp_search"
    )


def _unknown_option(group: str, value: str, conf_dir: Path) -> str | None:
    options = group_options(conf_dir, group)
    for choice in value.split(","):  # a sweep lists several
        if choice in ("null", "") or choice in options:
            continue
        close = closest(choice, options, cutoff=0.4)
        hint = f" Did you mean {group}={close[0]}?" if close else ""
        return f"Unknown {group} {choice!r}.{hint} Valid {group} options: {', '.join(options)}."
    return None


if __name__ == "__main__":
    sys.exit(command(sys.argv))
