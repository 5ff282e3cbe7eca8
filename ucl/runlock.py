"""One writer per run dir: an OS file lock held for the life of the run.

The kernel frees the lock when its holder dies (even by SIGKILL), so a dir whose lock is
free but whose metrics.json says "running" holds a crashed run, which may be resumed; a
held lock means a live run, and a second process stops at once without writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path

from ucl.errors import RunDirBusy

LOCK = ".lock"  # in the run dir; holds "<pid> <host>" of the process that holds it


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise RunDirBusy naming the holder. Creates only the lock file."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise RunDirBusy(
                    f"{self.path.parent} is in use by another run (PID {holder}); a run dir "
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} on {socket.gethostname()}".encode(), 0)
        self._fd = fd
        return self

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


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
    except OSError:
        return "unknown"
