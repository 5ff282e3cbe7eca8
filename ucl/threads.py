"""Torch CPU threads: a run's count is decided here, once (`Threads`). When a launcher runs
several jobs on one machine at once, jobs x threads must not exceed the cores:
oversubscribed, every job runs slower than it would alone (threads spin waiting for cores
the other jobs hold).

How idle OpenMP threads wait is set by ucl's entry points (train.py, scripts/bench.py)
before torch loads its OpenMP runtime, never by `import ucl`: a library that changed the
process's OpenMP behaviour on import would surprise a notebook that imports it. Sleeping
threads (PASSIVE) are what keep a run with one thread per core from becoming 10-60x slower
whenever anything else holds a core; docs/performance.md ("Threads") has the figures and the
price on an idle machine. A policy of the user's own wins. This module imports no torch at
import time, so that train.py can set the policy first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

JOBLIB = "JoblibLauncher"  # class name ending hydra.launcher._target_ for the joblib launcher
AUTO = "auto"  # threads=auto: chosen per run from its work per step (null means the same)
POLICY = "PASSIVE"
# Multiply-adds per training step (batch size x parameters) per thread: every preset, 1M
# (logreg) to 409M (GAN) per step, runs fastest at one thread (`python scripts/bench.py
# --only threads`; docs/performance.md, "Threads"), so one thread up to 2 x 400M.
WORK_PER_THREAD = 400e6


def available_cores() -> int:
    """Cores this process may run on (a SLURM allocation or taskset narrows it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def concurrent_jobs(n_jobs: int | None, cores: int) -> int:
    """How many jobs joblib runs at once for `n_jobs` (its convention: -1 all cores,
    -2 all but one, ...)."""
    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(1, cores + 1 + n_jobs)
    return n_jobs


def threads_per_job(threads: int | str | None, launcher: Mapping[str, Any] | None, cores: int):
    """`threads` when a number; else what the launcher leaves each job: cores // n_jobs under
    joblib, cpus_per_task under submitit; None for one job at a time (then the run chooses
    from its work per step, `threads_for_work`)."""
    if threads is not None and threads != AUTO:
        return int(threads)
    if not launcher:
        return None
    if str(launcher.get("_target_", "")).endswith(JOBLIB):
        return max(1, cores // concurrent_jobs(launcher.get("n_jobs"), cores))
    if launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])
    return None


def launcher_config() -> dict[str, Any] | None:
    """This job's hydra.launcher node (None outside @hydra.main), only its plain values:
    the interpolations in it (submitit_folder, name) refer to the rest of Hydra's config."""
    try:
        from hydra.core.hydra_config import HydraConfig

        launcher = HydraConfig.get().launcher
    except ValueError:
        return None
    return {k: launcher[k] for k in ("_target_", "n_jobs", "cpus_per_task") if k in launcher}


def threads_for_work(work: float, cores: int) -> tuple[int, str]:
    """The thread count for a CPU run whose training step costs `work` multiply-adds
    (batch size x parameters), and the reason, as metrics.json records it. A rule, not a
    timing: the same config on the same machine always gets the same count."""
    count = max(1, min(cores, int(work // WORK_PER_THREAD)))
    return count, (
        f"threads=auto: {work / 1e6:.0f}M multiply-adds per step (batch x parameters); "
        f"a thread per {WORK_PER_THREAD / 1e6:.0f}M, at most {cores} cores: {count}"
    )


def sleeping_threads() -> str:
    """Idle OpenMP threads sleep unless OMP_WAIT_POLICY is already set; the policy in force."""
    return os.environ.setdefault("OMP_WAIT_POLICY", POLICY)


class Threads:
    """A run's torch thread count and why, as metrics.json records it: `threads=N` given,
    else what the launcher leaves each job (set at once); else, on a CPU, from the work of
    one training step when the loop knows it (`for_step`); else torch's default."""

    def __init__(self, threads: int | str | None, device: Any):
        self.cores = available_cores()
        count = threads_per_job(threads, launcher_config(), self.cores)
        self.pending = count is None and device.type == "cpu"  # for_step decides
        self._reason = ""
        if count:
            self._set(count)
            self._reason = f"threads={count}: given, or left to each job by the launcher"

    def for_step(self, work: float) -> None:
        """threads=auto on a CPU: from `work`, the multiply-adds of one training step."""
        if not self.pending:
            return
        self.pending = False
        count, self._reason = threads_for_work(work, self.cores)
        self._set(count)
        logging.getLogger(__name__).info("%s", self._reason)

    @property
    def reason(self) -> str:
        if self.pending:  # no training loop chose: torch's default stayed
            return "threads=auto: no training loop; torch's default, one per core"
        return self._reason

    @staticmethod
    def _set(count: int) -> None:
        import torch

        torch.set_num_threads(count)
