"""Errors a user can fix. train.py prints each as one line and exits with status 2; the
message names the key or file, the value given, what is allowed and how to fix it."""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import Callable


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


# the signals that stop a command and its runs: a terminal's Ctrl-C and, on closing, its
# hang-up; kill's SIGTERM
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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

    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s, handler in previous.items():
        if handler in (signal.SIG_DFL, signal.default_int_handler):  # not ignored
            signal.signal(s, stop)
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
        for s, handler in previous.items():
            if signal.getsignal(s) is stop:
                signal.signal(s, handler)
    if code is None or (seen and code not in (0, 130)):  # 130: main said it was interrupted
        print(f"{prog}: interrupted; what was written before is kept", file=sys.stderr)
        return 128 + (seen[0] if seen else signal.SIGINT)
    return code


class RunFailed(Exception):
    """A run that started and could not finish (its record says why): exit status 1."""


class NonFiniteLoss(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept: exit status 1."""


def message(e: BaseException) -> str:
    """An error's message for a one-line refusal: a KeyError's str() quotes its message (a
    message holding a quote comes out in the other kind of quotes); its argument does not."""
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
