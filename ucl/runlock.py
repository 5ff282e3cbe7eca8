"""One writer per run dir: an OS file lock held for the life of the run.

The kernel frees the lock when its holder dies (even by SIGKILL), so a dir whose lock is
free but whose metrics.json says "running" holds a crashed run, which may be resumed; a
held lock means a live run, and a second process stops at once without writing.

On many cluster filesystems a lock is visible only on the node that took it (NFS mounted
`nolock` or `local_lock`, BeeGFS by default, Lustre with `localflock`). So the lock file
also names its holder (PID, host, SLURM job), and a free lock left by a process on another
host is taken over only when its SLURM job is known to have ended.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ucl.errors import RunDirBusy, UclError

LOCK = ".lock"  # in the run dir; holds "<pid> on <host>[ job <SLURM job>]" of its holder
_RECORD = re.compile(r"^(?P<pid>\d+) on (?P<host>\S+)(?: job (?P<job>\S+))?$")
LIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING",
               "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT"}


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
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:  # "Invalid job id specified": long gone
        return False if "Invalid job id" in out.stderr else None
    return any(state.strip() in LIVE_STATES for state in out.stdout.split())


class RunLock:
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
                    f"makes itself. Remove it, or give this run another dir."
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                holder = parse(holder) or f"PID {holder}"
                raise RunDirBusy(
                    f"{self.path.parent} is in use by another run ({holder}); a run dir "
                    f"has one writer at a time. Wait for that run to end, stop it, or give "
                    f"this run another dir."
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
        os.ftruncate(fd, 0)
        holder = me()
        record = f"{holder.pid} on {holder.host}" + (f" job {holder.job}" if holder.job else "")
        os.pwrite(fd, record.encode(), 0)
        self._fd = fd
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
                f"files it did not write alone. Give this run another dir."
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
                    f"(scancel {holder.job}), or give this run another dir."
                )
        if holder.host == now.host:
            return  # the kernel's lock is seen on this host: its holder has ended
        raise RunDirBusy(
            f"{self.path.parent} was locked by {holder}, another host, and ucl cannot tell "
            f"from here whether that run has ended (on NFS without locking, BeeGFS or "
            f"Lustre's localflock a lock is seen only on its own node). If it has ended, "
            f"remove {self.path} and run again; else wait for it or give this run another dir."
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
