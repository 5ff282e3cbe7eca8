"""Ctrl-C, SIGTERM, SIGHUP and a scheduler's time-limit warning, from the first moment of a
process to its last. One regime at a time, by phase:

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
hands the signal over to submitit's handler (`hand_over`).

Outside the main thread signals cannot be handled; the handlers are then left as they are.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class RunInterrupted(BaseException):
    """A signal ended the run; it can be resumed from its checkpoint. `signum` is the
    signal, so that the process can exit with 128 + signum. A BaseException, as
    KeyboardInterrupt is: a sweep stops at an interrupted job instead of going on."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)


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


@contextmanager
def _handlers(handler) -> Iterator[None]:
    previous = {}
    try:
        for sig in handled():
            previous[sig] = signal.signal(sig, handler)
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
        for sig, old in previous.items():
            signal.signal(sig, old)
