"""Writing run-dir files so that a crash or a kill at any moment leaves either the old
file or the new one, never a half-written one, and no temporary file behind."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TMP_MARK = ".tmp"  # temporary files are `.<name>.tmp<pid>` beside their target


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary file beside `path`, fsync, rename over `path`, fsync the folder
    (so that the rename itself survives a power cut). On failure the temporary file goes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def remove_stale_temps(folder: Path) -> list[Path]:
    """Temporary files a killed writer left in `folder` (call only while holding the run
    dir's lock: then no live writer owns them). Returns what was removed."""
    removed = []
    for tmp in Path(folder).glob(f".*{TMP_MARK}*"):
        if tmp.is_file():
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
