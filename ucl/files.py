"""Writing run-dir files so that a crash or a kill at any moment leaves either the old
file or the new one, never a half-written one, and no temporary file behind."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

TMP_MARK = ".tmp"  # temporary files are `.<name>.tmp<pid>` beside their target
TEMP_NAME = re.compile(r"^\..+\.tmp\d+$")  # exactly the names atomic_write uses


def is_temp_name(name: str) -> bool:
    return TEMP_NAME.match(name) is not None


def atomic_write(
    path: Path, data: bytes | str, before_rename: Callable[[], None] | None = None
) -> None:
    """Write to a temporary file beside `path`, fsync, rename over `path`, fsync the folder
    (so that the rename itself survives a power cut). On failure the temporary file goes.
    `before_rename` runs between the two (a test may hold the write there)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if before_rename is not None:
            before_rename()
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
