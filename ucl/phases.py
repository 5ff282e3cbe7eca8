"""Named moments of a run where the cluster tests and `scripts/cluster_chaos.py` hold a job
so that a signal lands exactly there: a race is tested at each of its phases, not at
whatever moment a timer happens to hit.

UCL_HOLD is a JSON object from a job's run-dir name (or "*") to a phase; UCL_HOLD_DIR is a
folder outside the run. On reaching its phase the job writes `<UCL_HOLD_DIR>/<name>.<phase>`
(holding its PID and SLURM job) and waits there until a signal starts to end it, the
marker is removed, or HOLD_SECONDS have passed. A job holds there once (a `.done` file
beside the marker says it did), so a requeued job runs straight through. Without UCL_HOLD
each call is one environment look-up.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

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
    from ucl.runlock import slurm_job
    from ucl.signals import stopping

    marker.write_text(json.dumps({"pid": os.getpid(), "job": slurm_job()}))
    deadline = time.monotonic() + HOLD_SECONDS
    while stopping() is None and marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
