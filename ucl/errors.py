"""Errors a user can fix. train.py prints each as one line and exits with status 2; the
message names the key or file, the value given, what is allowed and how to fix it."""

from __future__ import annotations

import errno


class UclError(Exception):
    """Bad input: a config value, a file, a run dir. Not a bug in ucl."""


class ConfigError(UclError, ValueError):
    """A config value that cannot work."""


class CorruptFileError(UclError, ValueError):
    """A run-dir file (metrics.json, a checkpoint, the config record) that cannot be read."""


class RunDirBusy(UclError):
    """Another live process holds the run dir's lock."""


class MissingFileError(UclError, FileNotFoundError):
    """A file or run dir that was named but is not there."""


class UnreadableFileError(UclError, OSError):
    """A file that exists but cannot be read (permissions, I/O): the file may be fine."""


# a file operation the machine refused: a full disk, a quota, a file-size limit, a read-only
# or failing filesystem, a permission. Neither a bug in ucl nor a bad config
MACHINE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM}
)


def machine_refused(e: BaseException) -> str | None:
    """One line for a file operation the machine refused, naming the file; None otherwise."""
    if not isinstance(e, OSError) or isinstance(e, UclError) or e.errno not in MACHINE_ERRNOS:
        return None
    where = f": {e.filename}" if e.filename else ""
    return (
        f"{e.strerror}{where}; the machine refused it, not ucl: make room (or fix the "
        f"permission) and run the same command again (what was written before is kept)"
    )


class RunFailed(Exception):
    """A run that started and could not finish (its record says why): exit status 1."""


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept: exit status 1."""


def message(e: BaseException) -> str:
    """An error's message for a one-line refusal: a KeyError's str() quotes its message (a
    message holding a quote comes out in the other kind of quotes); its argument does not."""
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
