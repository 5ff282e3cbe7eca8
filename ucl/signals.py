"""Ctrl-C and SIGTERM during a run. Three regimes, one per phase of a run:

- `interrupting`: around the whole run, a signal raises at once (loading data, the task's
  last figures): the run records "interrupted" and its last checkpoint continues it;
- `trapped`: inside the training loop, a signal sets a flag the loop checks after each
  step, so that it stops on a step boundary with a checkpoint (a second Ctrl-C: at once);
- `deferred`: while the final record is written, a signal waits until it is on disk.

Outside the main thread signals cannot be handled; the handlers are then left as they are.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM: the run can be resumed from its checkpoint. `signum` is the
    signal, so that the process can exit with 128 + signum."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)


@dataclass
class Caught:
    signal: int | None = None  # the signal number once one arrived

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""


@contextmanager
def interrupting() -> Iterator[None]:
    def handler(signum, frame):
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise RunInterrupted(f"{signal.Signals(signum).name} outside the training loop", signum)

    with _handlers(handler):
        yield


@contextmanager
def trapped() -> Iterator[Caught]:
    caught = Caught()

    def handler(signum, frame):
        if caught.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        caught.signal = signum

    with _handlers(handler):
        yield caught


@contextmanager
def deferred() -> Iterator[Caught]:
    caught = Caught()

    def handler(signum, frame):
        caught.signal = caught.signal or signum

    with _handlers(handler):
        yield caught


@contextmanager
def _handlers(handler) -> Iterator[None]:
    previous = {}
    try:
        for sig in SIGNALS:
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (e.g. a thread-based launcher)
        pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
