"""A run's lifecycle, in one place: from the first moment of a process to the run's last
record, what may happen and what is then on disk.

- **The lock** (`RunLock`): one writer per run dir, an OS file lock held for the run's life.
- **Signals** (`interrupting`, `trapped`, `deferred`, `ignoring`): Ctrl-C, SIGTERM, SIGHUP
  and a scheduler's time-limit warning, handled by phase.
- **The record** (`Record`): metrics.json, written by this module alone: "running" at the
  first write, then "completed", "interrupted" (with a checkpoint to continue from) or
  "failed", with the reason. `read_metrics` reads it back; `is_number` says which of its
  values are metrics.
- **Writing files** (`atomic_write`): every file of a run dir is written beside its target
  and renamed over it, so that a kill at any moment leaves the old file or the new one.
- **The end of the job** (`requeue_or_exit`): 128 + the signal, or the scheduler's requeue.
- **Threads** (`Threads`): the run's torch thread count, decided once: given, the
  launcher's share of the cores, or from the work of one training step. Idle OpenMP
  threads sleep (`sleeping_threads`, set by the entry points before torch loads; this
  module imports no torch).
- **Phases** (`hold`): named moments where the cluster tests hold a job so that a signal
  lands exactly there.
- **Where and how long** (`environment`, `slurm_info`, `duration`): what the record says
  of the machine and the scheduler, and how long, as a run's progress and a pipeline say it.

Signal regimes, one at a time:

- `interrupting`: outside the training loop (loading data, setting up, the task's last
  figures), a signal raises at once: the run records "interrupted" and its last checkpoint
  continues it; before the run's first write, the process ends with 128 + signum;
- `trapped`: inside the training loop, a signal sets a flag the loop checks after each step,
  so that it stops on a step boundary with a checkpoint (a second Ctrl-C: at once);
- `deferred`: while the final record is written, a signal waits until it is on disk.

Once a signal has started to end the run, later ones are ignored: a cluster that warns a job
(SIGUSR2) and then requeues it (SIGTERM) must not break the record the first one is writing.
Under submitit (a SLURM or local launcher job), submitit's handler for the warning signal
requeues the job; ucl takes that signal too, writes its checkpoint and record first, and then
hands the signal over to submitit's handler (`hand_over`). Outside the main thread signals
cannot be handled; the handlers are then left as they are.

The lock: the kernel frees it when its holder dies (even by SIGKILL), so a dir whose lock is
free but whose metrics.json says "running" holds a crashed run, which may be resumed; a held
lock means a live run, and a second process stops at once without writing. On many cluster
filesystems a lock is visible only on the node that took it (NFS mounted `nolock` or
`local_lock`, BeeGFS by default, Lustre with `localflock`). So the lock file also names its
holder (PID, host, SLURM job), and a free lock left by a process on another host is taken
over only when its SLURM job is known to have ended.

Phases: UCL_HOLD is a JSON object from a job's run-dir name (or "*") to a phase; UCL_HOLD_DIR
is a folder outside the run. On reaching its phase the job writes `<UCL_HOLD_DIR>/<name>.
<phase>` (holding its PID and SLURM job) and waits there until a signal starts to end it,
the marker is removed, or HOLD_SECONDS have passed. A job holds there once (a `.done` file
beside the marker says it did), so a requeued job runs straight through. Without UCL_HOLD
each call is one environment look-up.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import numbers
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ucl.errors import CorruptFileError, RunDirBusy, RunFailed, UclError, machine_refused

METRICS = "metrics.json"
STATUSES = ("completed", "failed", "interrupted", "running")


log = logging.getLogger(__name__)


# -- the run, from claiming its dir to its last record --------------------------------------
class Claim:
    """`with Claim(made) as claim: run_dir = claim.take(dir, check)`: the run dir, locked by
    this process until the block ends. A signal before the run's first record ends the
    process with 128 + signum and nothing recorded; a dir made for a job that never wrote
    (Hydra's output dir `made`, or the one taken) is removed again, with the empty parents
    made with it."""

    def __init__(self, made: Path | None = None):
        self.lock: RunLock | None = None
        self.maybe_empty = [made] if made is not None and _is_empty(made) else []
        self._regime = interrupting()

    def __enter__(self) -> Claim:
        reset()  # a sweep's jobs in one process: each starts with no signal pending
        self._regime.__enter__()
        return self

    def take(self, run_dir: Path, check: Callable[[Path], None]) -> Path:
        """`check` refuses a folder ucl did not make, untouched; a dir in use is refused
        here, untouched. Creates the dir and the lock file only."""
        if _is_empty(run_dir):  # made for this job
            self.maybe_empty.append(run_dir)
        check(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.lock = RunLock(run_dir)
        self.lock.acquire()
        return run_dir

    def __exit__(self, kind, error, tb) -> bool:
        try:
            self._regime.__exit__(None, None, None)
            if isinstance(error, (RunInterrupted, KeyboardInterrupt)):  # before the record
                signum = getattr(error, "signum", signal.SIGINT)
                log.warning("%s before the run started; nothing recorded", describe(signum))
                requeue_or_exit(signum, None)
        finally:
            if self.lock is not None:
                self.lock.release()
            for folder in self.maybe_empty:
                remove_if_empty(folder)  # refused or stopped before its first write
        return False


def run_task(
    task: Callable[[], dict],
    record: Record,
    finish: Callable[[dict], None],
    close: Callable[[], None],
    report: Callable[[dict], None],
) -> dict:
    """Run `task` and record how it ended. Interrupted (Ctrl-C, SIGTERM, SIGHUP, or the
    scheduler's warning that the job is about to end): "interrupted", then the process
    ends or the scheduler requeues it; so does an error after such a signal (one raised in
    an import can leave a module half-made, and the error that follows is its). Another
    error: "failed" with the reason, re-raised.
    Done: `finish` (the last summaries), then "completed" as the last write, during which
    a signal waits; `close` ends the run's other writers, `report` says what it measured."""
    try:
        metrics = task()
    except (RunInterrupted, KeyboardInterrupt, SystemExit) as e:
        _interrupted(record, close, str(e) if isinstance(e, RunInterrupted) else type(e).__name__)
        if isinstance(e, SystemExit):
            raise
        requeue_or_exit(getattr(e, "signum", signal.SIGINT), record)
    except BaseException as e:
        if (signum := stopping()) is not None:  # the error of an import the signal cut short
            _interrupted(record, close, f"{describe(signum)}, then {type(e).__name__}: {e}")
            requeue_or_exit(signum, record)
        reason = f"{type(e).__name__}: {e}"
        record.end("failed", reason=reason)
        close()
        log.error("run failed: %s (recorded in %s)", reason, record.path)
        if (refused := machine_refused(e)) is not None:
            raise RunFailed(refused) from e
        raise
    with deferred() as late:
        hold("final")
        finish(metrics)
        record.end("completed", metrics=metrics)
        close()
    report(metrics)
    if late.signal is not None and late.signal != scheduler_signal():
        log.warning("%s arrived as the run completed; stopping", late.name)
        raise SystemExit(128 + late.signal)
    if late.signal is not None:  # a time-limit warning for a job that has just finished
        log.info("%s arrived as the run completed; nothing left to requeue", late.name)
    return metrics


def _interrupted(record: Record, close: Callable[[], None], reason: str) -> None:
    with ignoring():  # a second signal (a requeue's SIGTERM) must not cut this record
        record.end("interrupted", reason=reason)
        close()
    log.warning("interrupted: %s", reason)


def file_in_the_way(path: Path) -> Path | None:
    """The file at `path` or above it, which keeps a folder from being made there."""
    path = Path(path)
    return next((p for p in (path, *path.parents) if p.is_file()), None)


def hydra_dir() -> Path | None:
    """The output dir Hydra made for this job; None when composed without @hydra.main."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except ValueError:
        return None


def _is_empty(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def remove_if_empty(folder: Path) -> None:
    """An empty dir made for a job that never wrote, and the empty parents made with it
    (runs/<date>/), up to the working dir."""
    cwd = Path.cwd().resolve()
    folder = folder.resolve()
    while True:
        try:
            folder.rmdir()  # only an empty dir goes
        except OSError:
            return
        folder = folder.parent
        if folder == cwd or cwd not in folder.parents:
            return


# -- the record ----------------------------------------------------------------------------
def read_metrics(run_dir: Path) -> dict | None:
    """A run dir's metrics.json, None when there is none; a corrupt one is an error."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptFileError(
            f"{path} is not valid JSON ({e}). Delete it to run this job again, "
            f"or restore it from a backup."
        ) from e
    if not isinstance(data, dict) or data.get("status") not in STATUSES:
        raise CorruptFileError(
            f"{path} has no valid 'status' (one of {STATUSES}); delete it to run the job again."
        )
    return data


def is_number(v, finite: bool = False) -> bool:
    """A metric in metrics.json: a real number (a bool is no measurement). NaN and inf count,
    as a metric that became nan is still a value; finite=True leaves them out (where a
    consumer cannot take them)."""
    if not isinstance(v, numbers.Real) or isinstance(v, bool):  # numpy.bool_ is no Real either
        return False
    return not finite or math.isfinite(v)


def is_list(v) -> bool:
    """A list a config gives (a ListConfig, a list, a tuple), not a string."""
    return isinstance(v, Sequence) and not isinstance(v, str)


def as_given(v):
    """A config's list as a list, any other value as given: for a check's message."""
    return list(v) if is_list(v) else v


class Record:
    """metrics.json, the contract scripts read, and its one writer. `header` says what the
    run is (task, choices, overrides, identity, code, data, what it consumed); a task adds
    top-level keys by item (`ctx.record["judge"] = ...`); `seconds` holds the time by part
    (data, train, eval, total) and `env` how the run ran (device, precision, threads)."""

    def __init__(self, run_dir: Path, header: dict, env: dict, threads: Threads):
        self.path = Path(run_dir) / METRICS
        self.header = header
        self.env = env
        self.threads = threads  # the run's Threads (below): its reason at the end
        self.extra: dict[str, Any] = {}
        self.seconds: dict[str, float] = {}
        self._started: float | None = None

    def __setitem__(self, key: str, value: Any) -> None:
        self.extra[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return self.extra.get(key, default)

    def running(self) -> None:
        """The first record: a kill from here on leaves a run to continue."""
        self._started = time.perf_counter()
        self._write({"status": "running", **self.header, "metrics": {}}, {})

    def end(self, status: str, metrics: dict | None = None, reason: str | None = None) -> None:
        """The final record: how the run ended, with what it measured."""
        assert status in STATUSES, status
        if self._started is not None:
            self.seconds["total"] = round(time.perf_counter() - self._started, 3)
        record = {"status": status, **self.header, **self.extra, "metrics": metrics or {}}
        if reason:
            record["reason"] = reason
        env = dict(self.env)
        if self.threads.reason:
            env["threads_reason"] = self.threads.reason
        self._write(record, env)

    def _write(self, record: dict, env: dict) -> None:
        record = {**record, "seconds": self.seconds, "env": {**environment(), **env}}
        atomic_write(self.path, json.dumps(record, indent=2, default=_json))


def environment() -> dict[str, Any]:
    import torch

    return {
        "torch": torch.__version__.split("+")[0],
        "python": platform.python_version(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "cpu_count": os.cpu_count(),
    }


def _json(v):
    if isinstance(v, Path):
        return str(v)
    if hasattr(v, "tolist"):  # a tensor or an array
        return v.tolist()
    if hasattr(v, "item"):
        return v.item()
    raise TypeError(f"not JSON serialisable: {type(v)}")


def duration(seconds: float) -> str:
    """How long, as ucl says it in a run's progress and a pipeline's: `45 s`, `1 min 05 s`,
    `2 h 03 min` (`?` while not known)."""
    if seconds != seconds:  # nan: not known yet
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


def slurm_info() -> dict[str, Any] | None:
    """Where the job runs on a SLURM cluster: job id, array index, node, requeues so far."""
    env = os.environ
    if not env.get("SLURM_JOB_ID"):
        return None
    info = {
        "job_id": env.get("SLURM_ARRAY_JOB_ID", env["SLURM_JOB_ID"]),
        "array_index": env.get("SLURM_ARRAY_TASK_ID"),
        "node": env.get("SLURMD_NODENAME"),
        "restarts": int(env.get("SLURM_RESTART_COUNT") or 0),
    }
    if info["array_index"] is not None:
        info["array_index"] = int(info["array_index"])
    return info


# -- the end of the job --------------------------------------------------------------------
def requeue_or_exit(signum: int, record: Record | None) -> NoReturn:
    """End the process for signal `signum`: 128 + signum, or for a scheduler's warning, the
    scheduler's own handler (submitit requeues the job and exits). A job it does not requeue
    (its requeues used up) fails in one line naming the job and its log; its record (when
    the run has one) says so."""
    if signum == scheduler_signal():
        with ignoring():
            try:
                hand_over(signum)
            except Exception as e:  # submitit's "not requeued because: ..."
                reason = f"{describe(signum)}; not requeued: {' '.join(str(e).split())}"
                if record is not None:
                    record.end("failed", reason=reason)
                job = slurm_job()
                name = f"SLURM job {job}" if job else f"job (PID {os.getpid()})"
                raise RunFailed(f"{name}: {reason} (log: {_job_log()})") from None
    raise SystemExit(128 + signum) from None


def _job_log() -> str:
    """The job's log file under submitit, else where the process prints."""
    if os.environ.get("SUBMITIT_FOLDER"):
        try:
            import submitit

            return str(submitit.JobEnvironment().paths.stderr)
        except Exception:  # noqa: BLE001 - a name for a message, not required
            return os.environ["SUBMITIT_FOLDER"]
    return "the terminal"


# -- signals -------------------------------------------------------------------------------
# the signals that stop a command and its runs: a terminal's Ctrl-C and, on closing, its
# hang-up; kill's SIGTERM
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class RunInterrupted(BaseException):
    """A signal ended the run; it can be resumed from its checkpoint. `signum` is the
    signal, so that the process can exit with 128 + signum. A BaseException, as
    KeyboardInterrupt is: a sweep stops at an interrupted job instead of going on."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)


def ctrl_c_ends_quietly(module: str) -> None:
    """In a script run as `__main__` (`module` is its __name__; a test importing it changes
    nothing): until `as_command` runs its main (or train.py its own handlers),
    Ctrl-C ends the process as SIGTERM does, with 128 + the signal and no traceback, as
    nothing is written while the imports load. A Ctrl-C the process was started ignoring
    stays so."""
    if module == "__main__" and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def as_command(prog: str, main: Callable[[], int]) -> int:
    """A script's `main` as a command: a file operation the machine refused is one line
    (exit status 1), as train.py says it; so are Ctrl-C, SIGTERM and a hang-up (exit status
    128 + the signal), once what was being written is whole or gone. A signal the process
    was started ignoring (a hang-up under nohup) stays ignored. A Ctrl-C a library
    swallowed, leaving something half made whose error follows, still ends the command as
    interrupted."""
    seen: list[int] = []

    def stop(signum, frame):
        seen.append(signum)
        raise KeyboardInterrupt

    previous = catch(SIGNALS, stop)
    try:
        code = main()
    except KeyboardInterrupt:
        code = None
    except Exception as e:
        if seen:  # the error of what the signal cut short
            code = None
        elif (refused := machine_refused(e)) is not None:
            print(f"{prog}: {refused}", file=sys.stderr)
            return 1
        else:
            raise
    finally:
        restore(previous)
    if code is None or (seen and code not in (0, 130)):  # 130: main said it was interrupted
        print(f"{prog}: interrupted; what was written before is kept", file=sys.stderr)
        return 128 + (seen[0] if seen else signal.SIGINT)
    return code


def scheduler_signal() -> int | None:
    """The signal submitit's job handler turns into a requeue (SLURM's time-limit warning,
    SUBMITIT_PREEMPT_SIGNAL, USR2 by default), when this process is a submitit job."""
    if not os.environ.get("SUBMITIT_FOLDER"):
        return None
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return getattr(signal, f"SIG{name}", None)


def handled() -> tuple[int, ...]:
    extra = scheduler_signal()
    return SIGNALS if extra is None else (*SIGNALS, extra)


@dataclass
class Caught:
    signal: int | None = None  # the signal number once one arrived

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""


@dataclass
class _State:
    stopping: int | None = None  # the signal that is ending the run, once one arrived
    outer: dict | None = None  # the handlers found before ucl's first, by signal
    depth: int = 0  # regimes entered and not left


_STATE = _State()


def stopping() -> int | None:
    """The signal that is ending this process's run, or None."""
    return _STATE.stopping


def reset() -> None:
    """Forget an earlier run's signal (one process that runs several jobs: a sweep)."""
    _STATE.stopping = None


def _stop(signum: int) -> bool:
    """Mark the run as ending; False when it already was (the signal is then ignored)."""
    if _STATE.stopping is not None:
        return False
    _STATE.stopping = signum
    return True


def describe(signum: int) -> str:
    if signum == scheduler_signal():
        return f"{signal.Signals(signum).name} (the scheduler's time-limit or preemption warning)"
    return signal.Signals(signum).name


@contextmanager
def interrupting() -> Iterator[None]:
    def handler(signum, frame):
        if not _stop(signum):
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise RunInterrupted(f"{describe(signum)} outside the training loop", signum)

    with _handlers(handler):
        yield


@contextmanager
def trapped() -> Iterator[Caught]:
    caught = Caught()

    def handler(signum, frame):
        if caught.signal is not None and signum == signal.SIGINT == caught.signal:
            raise KeyboardInterrupt  # Ctrl-C twice: now
        if _stop(signum):
            caught.signal = signum

    with _handlers(handler):
        yield caught


@contextmanager
def deferred() -> Iterator[Caught]:
    caught = Caught()

    def handler(signum, frame):
        if _stop(signum):
            caught.signal = signum

    with _handlers(handler):
        yield caught


@contextmanager
def ignoring() -> Iterator[None]:
    """While an interrupted run records how it ended: later signals change nothing."""

    with _handlers(lambda signum, frame: None):
        yield


def hand_over(signum: int) -> None:
    """Call the handler that held `signum` before ucl's (submitit's requeue): it may requeue
    the job and exit, or raise why it did not."""
    previous: Callable | None = (_STATE.outer or {}).get(signum)
    if callable(previous):
        previous(signum, None)


def catch(signals: Iterable[int], handler) -> dict[int, Any]:
    """Install `handler` for each of `signals` but those this process was started ignoring
    (`nohup` ignores SIGHUP; a shell's background job, SIGINT): the user chose that. Returns
    the handlers replaced, by signal, to put back."""
    previous = {}
    for sig in signals:
        if signal.getsignal(sig) != signal.SIG_IGN:
            previous[sig] = signal.signal(sig, handler)
    return previous


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers `catch` replaced."""
    for sig, old in previous.items():
        signal.signal(sig, old)


@contextmanager
def _handlers(handler) -> Iterator[None]:
    previous = {}
    try:
        previous = catch(handled(), handler)
    except ValueError:  # not the main thread (e.g. a thread-based launcher)
        pass
    if previous and _STATE.outer is None:
        _STATE.outer = dict(previous)  # kept for the process's life: see hand_over
    if _STATE.depth == 0:
        reset()  # a new outermost regime: a new run, no signal pending
    _STATE.depth += 1
    try:
        yield
    finally:
        _STATE.depth -= 1
        restore(previous)


# -- the lock ------------------------------------------------------------------------------
LOCK = ".lock"  # in the run dir; holds "<pid> on <host>[ job <SLURM job>]" of its holder
_RECORD = re.compile(r"^(?P<pid>\d+) on (?P<host>\S+)(?: job (?P<job>\S+))?$")
LIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING",
               "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT"}  # fmt: skip


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    job: str | None

    def __str__(self) -> str:
        job = f", SLURM job {self.job}" if self.job else ""
        return f"PID {self.pid} on {self.host}{job}"


def me() -> Holder:
    return Holder(os.getpid(), socket.gethostname(), slurm_job())


def slurm_job() -> str | None:
    """This process's SLURM job as squeue names it (<array job>_<index> in an array)."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


def is_ucl_lock(text: str) -> bool:
    return _RECORD.match(text.strip()) is not None


def parse(text: str) -> Holder | None:
    m = _RECORD.match(text.strip())
    return Holder(int(m["pid"]), m["host"], m["job"]) if m else None


def job_alive(job: str) -> bool | None:
    """Whether SLURM still has the job (queued, running or requeued); None: cannot ask."""
    alive = queued([job])
    return None if alive is None else bool(alive)


def queued(jobs: Sequence[str]) -> list[str] | None:
    """The jobs SLURM still has (queued, running or requeued), by squeue's names (an array's
    <job>_<index>); None: cannot ask."""
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(jobs)],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # "Invalid job id specified": long gone
        return [] if "Invalid job id" in out.stderr else None
    lines = (line.split() for line in out.stdout.splitlines())
    return [f[0] for f in lines if len(f) == 2 and f[1] in LIVE_STATES]


class RunLock:
    # what holds the lock, the rule, and the way out, in its refusals
    kind, rule, fix = "run", "a run dir has one writer at a time", "give this run another dir"

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise RunDirBusy naming the holder. Creates only the lock file."""
        while True:
            try:  # a symlink is never followed: its target is not ucl's to truncate
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except OSError as e:
                raise UclError(
                    f"{self.path} is not a plain file ({e.strerror}); ucl's lock is a file it "
                    f"makes itself. Remove it, or {self.fix}."
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                holder = parse(holder) or f"PID {holder}"
                raise RunDirBusy(
                    f"{self.path.parent} is in use by another {self.kind} ({holder}); "
                    f"{self.rule}. Wait for that {self.kind} to end, stop it, or {self.fix}."
                ) from None
            # the holder before us may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else can see, and must take the new one
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            self._check_left_behind(_read(fd, default=""))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        holder = me()
        record = f"{holder.pid} on {holder.host}" + (f" job {holder.job}" if holder.job else "")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode(), 0)
        except OSError as e:  # a full disk: no lock file is left that names no one
            self.release()
            raise _naming(e, self.path) from e
        return self

    def _check_left_behind(self, text: str) -> None:
        """A free lock whose file names a holder: a run that ended without letting go, or
        one on another host whose lock this host cannot see."""
        if not text:
            return
        holder, now = parse(text), me()
        if holder is None:
            raise RunDirBusy(
                f"{self.path} was not written by ucl (it holds {text[:60]!r}); ucl leaves "
                f"files it did not write alone. {self.fix.capitalize()}."
            )
        if holder.job and holder.job == now.job:
            return  # this job's own earlier start (a requeue), which has ended
        if holder.job and holder.job != now.job:
            alive = job_alive(holder.job)
            if alive is False:
                return
            if alive:
                raise RunDirBusy(
                    f"{self.path.parent} is in use by {holder} (SLURM says it is still "
                    f"queued or running). Wait for it (squeue -j {holder.job}), cancel it "
                    f"(scancel {holder.job}), or {self.fix}."
                )
        if holder.host == now.host:
            return  # the kernel's lock is seen on this host: its holder has ended
        raise RunDirBusy(
            f"{self.path.parent} was locked by {holder}, another host, and ucl cannot tell "
            f"from here whether that {self.kind} has ended (on NFS without locking, BeeGFS or "
            f"Lustre's localflock a lock is seen only on its own node). If it has ended, "
            f"remove {self.path} and run again; else wait for it or {self.fix}."
        )

    def release(self) -> None:
        """Remove the lock file, then let go: no lock file is left behind by a clean exit."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)  # closing the last descriptor frees the lock
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read(fd: int, default: str = "unknown") -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or default
    except OSError:
        return default


# -- phases --------------------------------------------------------------------------------
PHASES = ("data", "train", "eval", "checkpoint", "final")
HOLD_SECONDS = 60.0
TRAIN_STEP = 20  # "train" holds after this many iterations of the job's process

_run_dir: Path | None = None


def at_run(run_dir: Path) -> None:
    """The run whose phases the following calls mark."""
    global _run_dir
    _run_dir = Path(run_dir)


def hold(phase: str) -> None:
    spec = os.environ.get("UCL_HOLD")
    if not spec or _run_dir is None:
        return
    wanted = json.loads(spec)
    if wanted.get(_run_dir.name, wanted.get("*")) != phase:
        return
    marker = Path(os.environ["UCL_HOLD_DIR"]) / f"{_run_dir.name}.{phase}"
    done = marker.with_name(marker.name + ".done")
    if done.exists():
        return
    done.touch()
    marker.write_text(json.dumps({"pid": os.getpid(), "job": slurm_job()}))
    deadline = time.monotonic() + HOLD_SECONDS
    while stopping() is None and marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


# Writing run-dir files so that a crash or a kill at any moment leaves either the old
# file or the new one, never a half-written one, and no temporary file behind.

TMP_MARK = ".tmp"  # temporary files are `.<name>.tmp<pid>_<thread>` beside their target
TEMP_NAME = re.compile(r"^\..+\.tmp\d+(_\d+)?$")  # exactly the names atomic_write uses


def is_temp_name(name: str) -> bool:
    return TEMP_NAME.match(name) is not None


def atomic_write(
    path: Path, data: bytes | str, before_rename: Callable[[], None] | None = None
) -> None:
    """Write to a temporary file beside `path`, fsync, rename over `path`, fsync the folder
    (so that the rename itself survives a power cut). On failure the temporary file goes.
    `before_rename` runs between the two (a test may hold the write there). A write the
    machine refuses (a full disk) names `path`. Threads may write one target at once: the
    last rename wins."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}_{threading.get_ident()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if before_rename is not None:
            before_rename()
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError):
            raise _naming(e, path) from e
        raise
    _fsync_dir(path.parent)


def _naming(e: OSError, path: Path) -> OSError:
    """`e`, naming `path` when it names no file (a write's error names none)."""
    return OSError(e.errno, e.strerror, str(path)) if e.filename is None and e.errno else e


def remove_stale_temps(folder: Path) -> list[Path]:
    """Temporary files a killed writer left in `folder` (call only while holding the run
    dir's lock: then no live writer owns them). Returns what was removed."""
    removed = []
    for tmp in Path(folder).glob(f".*{TMP_MARK}*"):
        if is_temp_name(tmp.name) and tmp.is_file() and not tmp.is_symlink():
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. a platform without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# Torch CPU threads: a run's count is decided here, once (`Threads`). When a launcher runs
# several jobs on one machine at once, jobs x threads must not exceed the cores:
# oversubscribed, every job runs slower than it would alone (threads spin waiting for cores
# the other jobs hold).

JOBLIB = "JoblibLauncher"  # class name ending hydra.launcher._target_ for the joblib launcher
AUTO = "auto"  # threads=auto: chosen per run from its work per step (null means the same)
POLICY = "PASSIVE"
# Multiply-adds per training step (batch size x parameters) per thread: every preset, 1M
# (logreg) to 409M (GAN) per step, runs fastest at one thread (`python scripts/bench.py
# --only threads`; docs/performance.md, "Threads"), so one thread up to 2 x 400M.
WORK_PER_THREAD = 400e6


def available_cores() -> int:
    """Cores this process may run on (a SLURM allocation or taskset narrows it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def concurrent_jobs(n_jobs: int | None, cores: int) -> int:
    """How many jobs joblib runs at once for `n_jobs` (its convention: -1 all cores,
    -2 all but one, ...)."""
    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(1, cores + 1 + n_jobs)
    return n_jobs


def threads_per_job(threads: int | str | None, launcher: Mapping[str, Any] | None, cores: int):
    """`threads` when a number; else what the launcher leaves each job: cores // n_jobs under
    joblib, cpus_per_task under submitit; None for one job at a time (then the run chooses
    from its work per step, `threads_for_work`)."""
    if threads is not None and threads != AUTO:
        return int(threads)
    if not launcher:
        return None
    if str(launcher.get("_target_", "")).endswith(JOBLIB):
        return max(1, cores // concurrent_jobs(launcher.get("n_jobs"), cores))
    if launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])
    return None


def launcher_config() -> dict[str, Any] | None:
    """This job's hydra.launcher node (None outside @hydra.main), only its plain values:
    the interpolations in it (submitit_folder, name) refer to the rest of Hydra's config."""
    try:
        from hydra.core.hydra_config import HydraConfig

        launcher = HydraConfig.get().launcher
    except ValueError:
        return None
    return {k: launcher[k] for k in ("_target_", "n_jobs", "cpus_per_task") if k in launcher}


def threads_for_work(work: float, cores: int) -> tuple[int, str]:
    """The thread count for a CPU run whose training step costs `work` multiply-adds
    (batch size x parameters), and the reason, as metrics.json records it. A rule, not a
    timing: the same config on the same machine always gets the same count."""
    count = max(1, min(cores, int(work // WORK_PER_THREAD)))
    return count, (
        f"threads=auto: {work / 1e6:.0f}M multiply-adds per step (batch x parameters); "
        f"a thread per {WORK_PER_THREAD / 1e6:.0f}M, at most {cores} cores: {count}"
    )


def sleeping_threads() -> str:
    """Idle OpenMP threads sleep unless OMP_WAIT_POLICY is already set; the policy in force."""
    return os.environ.setdefault("OMP_WAIT_POLICY", POLICY)


class Threads:
    """A run's torch thread count and why, as metrics.json records it: `threads=N` given,
    else what the launcher leaves each job (set at once); else, on a CPU, from the work of
    one training step when the loop knows it (`for_step`); else torch's default."""

    def __init__(self, threads: int | str | None, device: Any):
        self.cores = available_cores()
        count = threads_per_job(threads, launcher_config(), self.cores)
        self.pending = count is None and device.type == "cpu"  # for_step decides
        self._reason = ""
        if count:
            self._set(count)
            self._reason = f"threads={count}: given, or left to each job by the launcher"

    def for_step(self, work: float) -> None:
        """threads=auto on a CPU: from `work`, the multiply-adds of one training step."""
        if not self.pending:
            return
        self.pending = False
        count, self._reason = threads_for_work(work, self.cores)
        self._set(count)
        logging.getLogger(__name__).info("%s", self._reason)

    @property
    def reason(self) -> str:
        if self.pending:  # no training loop chose: torch's default stayed
            return "threads=auto: no training loop; torch's default, one per core"
        return self._reason

    @staticmethod
    def _set(count: int) -> None:
        import torch

        torch.set_num_threads(count)
