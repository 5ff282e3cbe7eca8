"""What a run dir holds and may become: the run's own record of its config, the run's
identity, and the checks that decide what a job does in a dir that already holds
something: skip it (completed), continue it (a checkpoint is there), start it again
(skip_completed=false), or refuse (another experiment, a corrupt file, not a run dir).

It records the code a run ran (`code_version`: the checkout's commit, whether it had
uncommitted changes and a hash of them, and the package versions), which is not part of
the identity: a new commit never refuses a resume.

It also checks the earlier runs a run links to (`classifier=`, `autoencoder=`,
`generator=`) and records what the run takes from earlier runs and tables (`consumed`, by
`run_identity`), so that a pipeline sees when a need changed.

Every check here runs before the job writes anything, so a refused job leaves its run dir
exactly as it found it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from ucl.errors import ConfigError, CorruptFileError, MissingFileError, UclError
from ucl.keys import LINKS, RUNTIME_KEYS, changes_result, split_override
from ucl.lifecycle import LOCK, atomic_write, is_temp_name, is_ucl_lock, read_metrics

CONFIG_RECORD = "config.yaml"  # the resolved config the run trains with, written once
# its first line, which tells it from a config.yaml of the user's own (a Hydra project's)
CONFIG_HEADER = "# The config this run trains with (resolved); ucl writes it once, never again.\n"
MODEL = "model.pt"  # the trained weights a later run links to
PRE_RELEASE = (
    "{run_dir} holds a run from before ucl 0.1.0 (.hydra/ and no config.yaml): this ucl "
    "cannot tell what it trained, so it neither resumes, skips nor tables it; move it away "
    "to run there again"
)


# -- the config record ---------------------------------------------------------------------
def write_config_record(run_dir: Path, cfg: DictConfig) -> bool:
    """At a run's first start: its resolved config, atomically. Never rewritten: a
    continuation trains with this record. True if it was written now."""
    path = Path(run_dir) / CONFIG_RECORD
    if path.exists():
        return False
    atomic_write(path, CONFIG_HEADER + OmegaConf.to_yaml(cfg, resolve=True))
    return True


def read_config_record(run_dir: Path) -> dict | None:
    """A run dir's config record as plain data; None when there is none."""
    path = Path(run_dir) / CONFIG_RECORD
    if not path.exists():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise CorruptFileError(
            f"{path} is not valid YAML ({str(e).splitlines()[0]}); restore it from a "
            f"backup, or move the run dir away to run this job again."
        ) from e
    if not isinstance(data, dict):
        raise CorruptFileError(f"{path} holds no config; move the run dir away.")
    return data


def pre_release(run_dir: Path) -> bool:
    """A run dir of a ucl older than its first release: Hydra's .hydra/ and no config.yaml
    (ucl writes the record itself, and Hydra no .hydra/, since then)."""
    return (Path(run_dir) / ".hydra").is_dir() and not (Path(run_dir) / CONFIG_RECORD).exists()


def check_release(run_dir: Path) -> None:
    if pre_release(run_dir):
        raise ConfigError(PRE_RELEASE.format(run_dir=run_dir))


def check_ours(run_dir: Path) -> None:
    """A run starts in a missing or empty dir, or continues a ucl run dir; any other folder
    (a typo, `hydra.run.dir=.`, a folder of the user's own) is refused before anything in
    it is touched."""
    run_dir = Path(run_dir)
    if (outer := next((p for p in run_dir.absolute().parents if is_run_dir(p)), None)) is not None:
        raise ConfigError(
            f"{run_dir} is inside the run dir {outer}; give this run a dir of its own "
            f"(hydra.run.dir=..., or hydra.sweep.dir=... for a sweep)."
        )
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file, not a run dir; give the run another dir.")
    if is_run_dir(run_dir):
        return
    foreign = []
    for entry in sorted(run_dir.iterdir()):
        if entry.name == LOCK and entry.is_file() and not entry.is_symlink():
            # a run that stopped before its first record, or (empty) before naming itself
            if is_ucl_lock(text := entry.read_text(errors="replace")) or not text:
                continue
        elif is_temp_name(entry.name):
            continue
        foreign.append(entry.name)
    if foreign:
        raise ConfigError(
            f"{run_dir} holds files ucl did not write ({_listed(foreign)}); a run starts in an "
            f"empty or new dir, or continues a ucl run dir. Give this run another dir "
            f"(hydra.run.dir=..., or hydra.sweep.dir=... for a sweep)."
        )


def check_sweep_ours(sweep_dir: Path) -> None:
    """A sweep starts in a missing or empty dir, or runs again in a sweep dir of ucl's.
    Hydra's sweeper writes multirun.yaml before any job starts, over a file of that name, so
    a folder of the user's own, or a multirun.yaml that is not Hydra's, is refused first."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        return
    if is_run_dir(sweep_dir):
        raise ConfigError(
            f"{sweep_dir} is a run's dir, not a sweep dir (it holds the run's {CONFIG_RECORD}); "
            f"give this sweep another dir (hydra.sweep.dir=...)."
        )
    if (sweep_dir / SWEEP_RECORD).exists():
        foreign = [] if _hydra_sweep_record(sweep_dir / SWEEP_RECORD) else [SWEEP_RECORD]
    else:
        entries = [e for e in sorted(sweep_dir.iterdir()) if not is_temp_name(e.name)]
        ours = any(e.name in SWEEP_FILES or (e.is_dir() and is_run_dir(e)) for e in entries)
        foreign = [] if ours else [e.name for e in entries]
    if foreign:
        raise ConfigError(
            f"{sweep_dir} holds files ucl did not write ({_listed(foreign)}); a sweep starts "
            f"in an empty or new dir, or runs again in a ucl sweep dir. Give this sweep "
            f"another dir (hydra.sweep.dir=...)."
        )


SWEEP_RECORD = "multirun.yaml"  # Hydra's: the sweep's composed config
# beside the jobs of a sweep of ucl's, with or without its multirun.yaml (a pipeline sets
# that aside with jobs it no longer wants): the launchers' ledger, submitit's logs,
# summarize.py's marker, a search's study
SWEEP_FILES = ("cluster.json", ".submitit", ".ucl-output.json", "study.db")


def _hydra_sweep_record(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and isinstance(data.get("hydra"), dict)


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - 4} more" if len(names) > 4 else ""
    return ", ".join(names[:4]) + more


def is_run_dir(path: Path) -> bool:
    """A dir a ucl run wrote into: it holds the run's config record, which a run writes
    first, or a metrics.json with a run's status. A folder's own config.yaml or
    metrics.json does not make it one."""
    path = Path(path)
    try:
        with open(path / CONFIG_RECORD) as f:
            if f.readline() == CONFIG_HEADER:
                return True
    except (OSError, UnicodeDecodeError):
        pass
    try:
        return read_metrics(path) is not None
    except (UclError, OSError):  # unreadable, or not a run's
        return False


# -- identity --------------------------------------------------------------------------------
def identity(config: DictConfig | dict) -> dict[str, Any]:
    """What makes two runs the same experiment: every resolved config value by dotted key,
    minus the RUNTIME_KEYS. An empty `consumed` (no value taken from an earlier table) is
    left out, so a run without one keeps the identity it had before the key existed."""
    if OmegaConf.is_config(config):
        config = OmegaConf.to_container(config, resolve=True)
    flat = _flatten(config)
    if not flat.get("consumed", True):
        del flat["consumed"]
    return {k: v for k, v in flat.items() if changes_result(k)}


def identity_hash(config: DictConfig | dict) -> str:
    text = json.dumps(identity(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(before: dict[str, Any], now: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    keys = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    return [(k, before.get(k, "<absent>"), now.get(k, "<absent>")) for k in keys]


def describe(diffs: list[tuple[str, Any, Any]], most: int = 6) -> str:
    shown = ", ".join(f"{k}: {old!r} there, {new!r} now" for k, old, new in diffs[:most])
    return shown + (f" and {len(diffs) - most} more" if len(diffs) > most else "")


def check_same_job(run_dir: Path, cfg: DictConfig, given: list[str], previous: dict | None):
    """A job finding another experiment in its dir (a sweep re-run with other values, or
    the same command after a default in conf/ changed): refuse, rather than skip or resume
    the wrong run."""
    check_release(run_dir)
    record = read_config_record(run_dir)
    if record is None:
        return
    diffs = differences(identity(record), identity(cfg))
    if diffs:
        raise ConfigError(
            f"{run_dir} holds a run of another experiment ({describe(diffs)}). Give this "
            f"sweep its own hydra.sweep.dir (or this run its own hydra.run.dir), or move "
            f"{run_dir} away to run it again there."
        )


def changed_files(before: dict, now: dict) -> list[str]:
    """The file names whose digests differ between two data fingerprints (in either)."""
    a, b = before.get("files", {}), now.get("files", {})
    return sorted(n for n in a.keys() | b.keys() if a.get(n) != b.get(n))


def check_same_data(run_dir: Path, previous: dict | None, fingerprint: dict | None) -> None:
    """A run continued on data files with other content would train on two datasets."""
    before = ((previous or {}).get("data") or {}).get("fingerprint")
    if not before or not fingerprint or before.get("digest") == fingerprint.get("digest"):
        return
    raise ConfigError(
        f"{run_dir} was trained on other data: {', '.join(changed_files(before, fingerprint))} "
        f"in {fingerprint.get('folder')} differ from the files it started with (then in "
        f"{before.get('folder')}). Point the dataset at the files it started with, or start "
        f"a new run (its own hydra.run.dir or hydra.sweep.dir) on these."
    )


# -- resume= -----------------------------------------------------------------------------------
def check_resume_dir(value: str) -> Path:
    """`resume=` takes the dir of one ucl run; anything else is refused, untouched."""
    path = Path(value)
    if path.is_file():  # often a run's checkpoint.pt or metrics.json
        fix = (
            f"resume={path.parent}, the run dir that holds it"
            if is_run_dir(path.parent)
            else "give the dir of a run, e.g. resume=runs/2026-11-24/10-00-00_mlp"
        )
        raise ConfigError(f"resume={value!r} is a file, not a run dir; {fix}")
    if not path.is_dir():
        raise MissingFileError(
            f"resume={value!r}: no such dir. Give the dir of a run (one holding "
            f"{CONFIG_RECORD} or metrics.json), e.g. resume=runs/2026-11-24/10-00-00_mlp"
        )
    if is_run_dir(path):
        return path
    jobs = sorted(p for p in path.iterdir() if p.is_dir() and is_run_dir(p))
    if jobs:
        names = ", ".join(p.name for p in jobs[:8]) + (" ..." if len(jobs) > 8 else "")
        raise ConfigError(
            f"resume={value!r} is a sweep dir, not a run dir; it holds the jobs {names}. "
            f"Resume one job (resume={jobs[0]}), or re-run the whole sweep with "
            f"hydra.sweep.dir={value} (completed jobs are skipped, the others continue)."
        )
    raise ConfigError(
        f"resume={value!r} is not a ucl run dir (it holds no run's {CONFIG_RECORD} or "
        f"metrics.json). Give the dir a run wrote, e.g. resume=runs/2026-11-24/10-00-00_mlp"
    )


def resumed_config(cfg: DictConfig, run_dir: Path, given: list[str], previous: dict | None):
    """`resume=<run dir>`: the run goes on with the config it was started with.

    Keys given on the command line beside `resume=` must agree with that config, except
    the RUNTIME_KEYS, which are taken from the command line.
    """
    check_release(run_dir)
    record = read_config_record(run_dir)
    if record is None:  # metrics.json only: a run not started by train.py
        return cfg
    saved = OmegaConf.create(record)
    saved_choices = (previous or {}).get("choices", {})
    for item in given:
        key = _key(item)
        if key is None:
            continue
        if key in RUNTIME_KEYS:
            OmegaConf.update(saved, key, _plain(OmegaConf.select(cfg, key)), force_add=True)
            continue
        if key in saved_choices:  # a config group (model=mlp): compare the choices
            now, before = split_override(item)[1], saved_choices[key]
        else:
            now = _plain(OmegaConf.select(cfg, key, default=None))
            before = _plain(OmegaConf.select(saved, key, default=None))
        if now != before:
            raise ConfigError(
                f"resume={run_dir}: {item!r} differs from the run's own {key}={before!r}. "
                f"A resumed run keeps the config it was started with (only "
                f"{', '.join(sorted(RUNTIME_KEYS))} may change); drop {key}= from the "
                f"command line, or start a new run to try another value."
            )
    OmegaConf.update(saved, "resume", str(cfg.resume), force_add=True)
    return saved


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


def _key(item: str) -> str | None:
    """The config key an override sets; None for Hydra's own keys."""
    key = split_override(item)[0]
    return None if key == "hydra" or key.startswith(("hydra.", "hydra/")) else key


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


# -- what a run takes from earlier runs --------------------------------------------------
def check_links(settings) -> None:
    """Each earlier run a task's settings link to (classifier=, autoencoder=, generator=) is
    a run dir with a saved model, so that a wrong path is refused before the new run writes
    anything; loading it, and checking it against the data, stay with the task."""
    for key in LINKS:
        path = (settings or {}).get(key)
        if path:
            try:
                saved_model(Path(path))
            except MissingFileError as e:
                raise ConfigError(f"{key}={path}: {e}") from e


def run_identity(run_dir: Path) -> str:
    """What a later run reads from `run_dir`, as 16 hex digits: the run's config identity,
    the identities of what it read itself (a GAN's judge reaches a divergence study through
    the GAN) and the bytes of its model.pt. Another config, a re-run that saved other
    weights or read other runs gives another hash; the same files give the same one."""
    run_dir = Path(run_dir)
    model = saved_model(run_dir)
    record = read_metrics(run_dir)
    if record is None:
        raise MissingFileError(f"{run_dir / 'metrics.json'} does not exist; check the run dir.")
    if "identity" not in record:
        raise CorruptFileError(f"{run_dir / 'metrics.json'} records no identity; train it again.")
    read = {k: v.get("identity") for k, v in (record.get("consumed") or {}).items()}
    digest = hashlib.sha256(f"{record['identity']}\n{json.dumps(read, sort_keys=True)}\n".encode())
    with open(model, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def consumed(cfg, choices: dict | None = None) -> dict:
    """What this run takes from earlier work, for its metrics.json: each linked run
    (classifier=, autoencoder=, generator=) with its run_identity, and each value a
    pipeline chose from an earlier sweep's table (`consumed.KEY=<table>@<identity>`) with
    the value this run has for KEY (its group choice, e.g. relu, for a component group)."""
    out: dict = {}
    settings = cfg.get("task_settings") or {}  # where the task reads its links, as check_links
    for key in LINKS:
        if path := settings.get(key):
            out[key] = {"run": str(path), "identity": run_identity(Path(path))}
    for key, given in (cfg.get("consumed") or {}).items():
        table, at, identity = str(given).rpartition("@")
        if not (at and table and identity):
            raise ConfigError(
                f"consumed.{key}={given!r}: give the table and its identity as "
                f"<table>@<identity>, e.g. +consumed.{key}=runs/x/{key}_sweep@0123456789abcdef"
            )
        if key not in cfg:
            raise ConfigError(f"consumed.{key}: the config has no key {key!r} to record")
        out[key] = {"table": table, "identity": identity, "value": _value(cfg, key, choices)}
    return out


def _value(cfg, key: str, choices: dict | None):
    """The value of top-level `key` as a sweep's table names it: a group's choice (relu),
    else a component's name, else the plain value."""
    if choices and choices.get(key) is not None:
        return choices[key]
    value = cfg.get(key)
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
        return value.get("name", value) if isinstance(value, dict) else value
    return value


def saved_model(run_dir: Path) -> Path:
    """The model.pt of a run dir, which must be there."""
    if run_dir.is_file():
        raise MissingFileError(f"{run_dir} is a file, not a run dir; give the dir that holds it")
    if not run_dir.is_dir():
        raise MissingFileError(f"run dir {run_dir} does not exist; give the dir of a finished run")
    path = run_dir / MODEL
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; check the run dir you gave.")
    return path


# The code a run ran: the checkout's git commit, whether it had uncommitted changes (and a
# hash of them, so two runs on the same changes can be told apart from runs on others), and
# the versions of the packages the results depend on. metrics.json records it under `code`.

REPO = Path(__file__).resolve().parents[1]  # the checkout the code lives in
PACKAGES = (
    "torch", "torchvision", "numpy", "hydra-core", "omegaconf", "scipy", "scikit-learn",
    "submitit",
)  # fmt: skip
GIT_TIMEOUT_SECONDS = 10
DIFF_HASH_CHARS = 12
UNTRACKED_HASH_BYTES = 10 * 2**20  # larger untracked files enter the hash by their size
NOT_A_CHECKOUT = "not a git checkout"


@cache
def code_version() -> dict[str, Any]:
    """This process's code: git_state of the checkout and the packages' versions."""
    try:
        state = git_state(REPO)
    except Exception as e:  # noqa: BLE001  (a record of the code never stops a run)
        state = {"git": f"git could not be read: {type(e).__name__}: {e}"}
    return {**state, "packages": package_versions()}


def git_state(repo: Path) -> dict[str, Any]:
    """{"commit", "dirty"} (+ "diff", a short sha256 of the uncommitted changes, when dirty),
    or {"git": why there is no commit}. The changes are `git diff HEAD` and the files git
    does not track and does not ignore (a new module the code imports counts)."""
    head = _git(repo, "rev-parse", "--verify", "HEAD")
    if isinstance(head, str):
        return {"git": head}
    commit = head.decode().strip()
    diff = _git(repo, "diff", "--no-ext-diff", "--no-textconv", "--binary", "HEAD")
    untracked = _git(repo, "ls-files", "--others", "--exclude-standard", "-z")
    if isinstance(diff, str) or isinstance(untracked, str):
        return {"commit": commit, "git": diff if isinstance(diff, str) else untracked}
    digest = hashlib.sha256(diff)
    for name in sorted(n for n in untracked.split(b"\0") if n):
        digest.update(b"\0untracked\0" + name + b"\0" + _content_hash(Path(repo) / name.decode()))
    state: dict[str, Any] = {"commit": commit, "dirty": bool(diff or untracked)}
    if state["dirty"]:
        state["diff"] = digest.hexdigest()[:DIFF_HASH_CHARS]
    return state


def _content_hash(path: Path) -> bytes:
    """A file's sha256 (its size alone when large: a data dump left beside the code)."""
    try:
        size = path.stat().st_size
        if size > UNTRACKED_HASH_BYTES:
            return f"size {size}".encode()
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError as e:  # removed meanwhile, or unreadable
        return f"unreadable: {e.strerror}".encode()


def _git(repo: Path, *args: str) -> bytes | str:
    """git's output, or a sentence saying why there is none."""
    # no optional locks: a read must not contend with a commit in the same checkout
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return "git is not installed"
    except subprocess.TimeoutExpired:
        return f"git did not answer within {GIT_TIMEOUT_SECONDS} s"
    except OSError as e:
        return f"git could not run: {e}"
    if proc.returncode != 0:
        error = proc.stderr.decode(errors="replace").strip()
        if "not a git repository" in error or not Path(repo).is_dir():
            return NOT_A_CHECKOUT
        if "unknown revision" in error or "Needed a single revision" in error:
            return "a git checkout with no commit yet"
        return f"git {args[0]} failed: {error.splitlines()[-1] if error else proc.returncode}"
    return proc.stdout


def package_versions() -> dict[str, str]:
    """The installed version of each of PACKAGES that is installed."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def dirty_warning() -> str | None:
    """One line when the checkout has uncommitted changes (None otherwise)."""
    code = code_version()
    if not code.get("dirty"):
        return None
    return (
        f"the checkout has uncommitted changes (diff {code['diff']}): the runs record "
        f"them as dirty; commit them to tie the results to a commit"
    )
