"""The "busy" condition of `scripts/bench.py --busy`: one other training run holding a core
while the sections are timed, as when a user benches beside a sweep job. It is a real
`python train.py` run (best_mlp's steps at one thread, long enough to outlast the bench),
started before the first section and stopped after the last."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ucl.config import REPO

# best_mlp's training steps (batch 128) at one thread, with no evaluation or checkpoint:
# a steady load on one core for up to 10,000 epochs
ARGS = (
    "experiment=best_mlp",
    "threads=1",
    "epochs=10000",
    "eval_every=1000000",
    "checkpoint_every=0",
    "progress=false",
)
WARM_UP_SECONDS = 8.0  # the job's start-up (imports, data) before it steps


@dataclass(frozen=True)
class Busy:
    shown: str  # the command as a user would type it, for the bench's tables
    process: subprocess.Popen
    run_dir: Path  # where the job writes (its history.csv shows it training)


@contextmanager
def busy_job(extra: Iterable[str] = (), warm_up: float = WARM_UP_SECONDS) -> Iterator[Busy]:
    """One training run in the background for the duration (`extra`: more overrides),
    given `warm_up` seconds to start before the first timing. An override in `extra`
    replaces the default of the same key."""
    run_dir = Path(tempfile.mkdtemp(prefix="ucl-bench-busy-")) / "run"
    by_key = {arg.partition("=")[0]: arg for arg in [*ARGS, *extra]}
    args = list(by_key.values())
    cmd = [sys.executable, str(REPO / "train.py"), *args, f"hydra.run.dir={run_dir}"]
    job = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: stopped as a whole
    )  # fmt: skip
    try:
        time.sleep(warm_up)
        if job.poll() is not None:
            raise RuntimeError(
                f"the busy job stopped at once (exit {job.returncode}): run "
                f"`{' '.join(cmd)}` to see why, or bench without --busy"
            )
        yield Busy(" ".join(["python train.py", *args]), job, run_dir)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGTERM)
            try:
                job.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
