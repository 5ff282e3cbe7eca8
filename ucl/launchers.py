"""Hydra's submitit launchers (SLURM, and its local twin), waiting for every job of a sweep.

Hydra's own launchers stop at the first job that ends without a result (a `scancel`, an
out-of-memory kill, a node failure): the sweep command dies with submitit's traceback while
the other jobs go on unwatched. These wait for every job, record each one's end in the sweep
dir's `cluster.json` (job id, state, log) for `scripts/summarize.py`, and turn a job that
ended without a result into a failed job whose one-line error names it and its log; the
sweep then ends with status 1, as a failed job of the basic launcher does.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus

from ucl.errors import ConfigError, RunFailed
from ucl.lifecycle import RunInterrupted, atomic_write, describe, queued, trapped

log = logging.getLogger(__name__)
LEDGER = "cluster.json"  # in the sweep dir: each job's scheduler id, state and log
ENDED_EARLY = ("CANCELLED", "FAILED", "OUT_OF_MEMORY", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
               "BOOT_FAIL", "DEADLINE")  # fmt: skip
SUBMITTED = "SUBMITTED"  # a job as submitted, before anyone asked SLURM about it
ENDED = "ENDED"  # a job squeue lists no longer, on a cluster without accounting to say how
POLL_SECONDS = 5.0  # how often SLURM is asked about the jobs waited for
OPEN_STATES = {SUBMITTED, "PENDING", "RUNNING", "REQUEUED", "COMPLETING", "CONFIGURING",
               "SUSPENDED", "RESIZING", "REQUEUE_HOLD", "REQUEUE_FED"}  # fmt: skip


class _Submitted(Exception):
    """Hydra's launcher has submitted the jobs: its own wait is not wanted."""


class Waiting:
    """Mixed into hydra-submitit-launcher's launchers (hydra_plugins/ucl_launchers: Hydra
    takes launcher classes only from the hydra_plugins package). With `detach`, the sweep
    command records the submitted jobs in cluster.json and returns; summarize.py asks SLURM
    for their states later, from the sweep dir alone."""

    detach = False

    def launch(self, job_overrides, initial_job_idx: int):
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        slurm = self._EXECUTOR == "slurm"  # else local processes, which stop with the command
        if slurm:
            self._after_earlier_jobs(sweep_dir)
        # recorded at once: a command stopped while its SLURM jobs run on leaves their ids,
        # for summarize.py and for the same command typed again; a signal waits for the record
        with trapped() as caught:
            try:
                jobs = self._submit(job_overrides, initial_job_idx)
            except ConfigError:  # sbatch ended by the same signal: nothing was submitted
                if caught.signal is None:
                    raise
                jobs = []
            if slurm:
                ledger = _read_ledger(sweep_dir)
                # strict=False: no jobs when the signal ended sbatch
                for offset, (job, overrides) in enumerate(zip(jobs, job_overrides, strict=False)):
                    entry = _entry(initial_job_idx + offset, job, overrides)
                    ledger[str(entry["num"])] = {**entry, "state": SUBMITTED}
                atomic_write(sweep_dir / LEDGER, json.dumps(ledger, indent=2))
        if caught.signal is not None:
            raise RunInterrupted(f"{describe(caught.signal)} while submitting", caught.signal)
        if self.detach:
            return self._detached(jobs, job_overrides, sweep_dir)
        return self._wait(jobs, job_overrides, initial_job_idx)

    def _after_earlier_jobs(self, sweep_dir: Path) -> None:
        """The jobs an earlier command of this sweep left queued or running (it was
        stopped; they run on) write the run dirs this command's jobs would write, and each
        job started beside them would be refused there. A waiting sweep waits for them,
        then goes on (what they completed is skipped); a detached one is refused."""
        earlier = [e["job_id"] for e in _read_ledger(sweep_dir).values()
                   if e.get("state") in OPEN_STATES]  # fmt: skip
        alive = queued(earlier) if earlier else None
        if not alive:
            return
        alive.sort(key=lambda job: (len(job), job))  # 1224_2 before 1224_10
        one = len(alive) == 1
        named = f"SLURM job{'' if one else 's'} {', '.join(alive[:4])}"
        named += ", ..." if len(alive) > 4 else ""
        them = "it" if one else "them"
        arrays = alive if one else list(dict.fromkeys(j.partition("_")[0] for j in alive))
        if self.detach:
            raise ConfigError(
                f"{sweep_dir}: {named} of an earlier command of this sweep "
                f"{'is' if one else 'are'} still queued or running, and write{'s' if one else ''}"
                f" its run dirs; wait for {them} (squeue -j {','.join(arrays)}) or cancel {them} "
                f"(scancel {' '.join(arrays)}), then run again"
            )
        log.warning(
            "waiting for %s, which an earlier command of this sweep left queued or running "
            "(scancel %s stops %s); then the sweep goes on", named, " ".join(arrays), them,
        )  # fmt: skip
        named_stuck: set[str] = set()
        asked = self._asked()
        while alive:
            time.sleep(POLL_SECONDS)
            alive = queued(alive)
            _name_stuck(alive or [], named_stuck, asked)

    def _submit(self, job_overrides, initial_job_idx: int) -> list:
        import submitit
        from submitit.core.utils import FailedJobError

        # Hydra's launch builds the executor and submits, then waits in job order and stops
        # at the first job without a result, keeping no handle on the jobs. Its submission is
        # taken as it is; the jobs it made are caught here and waited for in full below.
        jobs: list[Any] = []
        real_map = submitit.AutoExecutor.map_array

        def map_array(executor, fn, *iterable):
            jobs.extend(real_map(executor, fn, *iterable))
            raise _Submitted

        submitit.AutoExecutor.map_array = map_array
        try:
            super().launch(job_overrides, initial_job_idx)
        except _Submitted:
            pass
        except FailedJobError as e:  # sbatch refused the array: no job was made
            raise ConfigError(
                f"SLURM refused the sweep's jobs: {_sbatch_says(e)} (asked: "
                f"{self._asked()}); change the hydra.launcher.* settings (their comments: "
                f"conf/hydra/launcher/submitit_slurm.yaml)"
            ) from None
        finally:
            submitit.AutoExecutor.map_array = real_map
        return jobs

    def _asked(self) -> str:
        """The launcher settings sbatch is given, as the overrides that set them."""
        keys = ("partition", "account", "qos", "cpus_per_task", "mem_gb", "mem_per_cpu",
                "gpus_per_node", "gres", "constraint", "timeout_min")  # fmt: skip
        launcher = self.config.hydra.launcher
        return ", ".join(
            f"hydra.launcher.{k}={launcher[k]}" for k in keys if launcher.get(k) is not None
        )

    def _detached(self, jobs, job_overrides, sweep_dir: Path) -> list[JobReturn]:
        log.info(
            "submitted %d jobs and returned; `python scripts/summarize.py %s` shows how they "
            "stand (SLURM is asked again each time)",
            len(jobs),
            sweep_dir,
        )
        return [JobReturn(overrides=list(o), status=JobStatus.COMPLETED) for o in job_overrides]

    def _wait(self, jobs, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        from submitit.core.utils import UncompletedJobError

        _until_done(jobs, asked=self._asked())
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        ledger = _read_ledger(sweep_dir)
        returns = []
        for offset, (job, overrides) in enumerate(zip(jobs, job_overrides, strict=True)):
            num = initial_job_idx + offset
            entry = _entry(num, job, overrides)
            state = None  # asked of SLURM only for a job that left no result
            try:
                if not Path(job.paths.result_pickle).exists():
                    state = _state(job)
                    if state.split()[0] in ENDED_EARLY:
                        # killed or cancelled: no result will come (submitit waits 15 s more)
                        raise UncompletedJobError(state)
                ret = job.results()[0]
                entry["state"] = "COMPLETED" if ret.status == JobStatus.COMPLETED else "FAILED"
                if ret.status == JobStatus.FAILED:  # raised in the run: its record says so too
                    entry.update(reason=_first_line(ret._return_value), recorded=True)
            except UncompletedJobError as e:
                state = state or _state(job)
                reason = _scheduler_says(Path(job.paths.stderr)) or _first_line(e)
                entry.update(state=state, reason=reason)
                ret = JobReturn(overrides=list(overrides), status=JobStatus.FAILED)
                ret.return_value = RunFailed(
                    f"SLURM job {job.job_id} ({' '.join(overrides)}) ended {state} without a "
                    f"result ({reason}); its log: {job.paths.stderr}"
                )
                log.error("job #%d: %s", num, ret._return_value)
            if ret.hydra_cfg is not None:  # the job's run dir
                entry["dir"] = str(ret.hydra_cfg.hydra.runtime.output_dir)
            ledger[str(num)] = entry
            atomic_write(sweep_dir / LEDGER, json.dumps(ledger, indent=2))
            returns.append(ret)
        return returns


def _sbatch_says(e: Exception) -> str:
    """sbatch's own error lines, without its prefix, in one line."""
    lines = [ln.strip().removeprefix("sbatch: error: ") for ln in str(e).splitlines()]
    return "; ".join(ln for ln in lines if ln) or type(e).__name__


def _entry(num: int, job, overrides) -> dict:
    return {
        "num": num,
        "job_id": job.job_id,
        "overrides": list(overrides),
        "log": str(job.paths.stdout),
        "err": str(job.paths.stderr),
    }


def refresh(sweep_dir: Path) -> dict[str, dict]:
    """cluster.json with the states of jobs not known to have ended asked from SLURM again
    (a detached sweep's), and written back; SLURM's reason for those that failed."""
    ledger = _read_ledger(Path(sweep_dir))
    open_ = {e["job_id"]: e for e in ledger.values() if e.get("state") in OPEN_STATES}
    if not open_:
        return ledger
    try:
        out = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(open_)],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):  # no accounting (slurmdbd), or no SLURM
        return _left_the_queue(sweep_dir, ledger, open_)
    for line in out.splitlines():
        job_id, _, state = line.partition("|")
        entry = open_.get(job_id)
        if entry is None:
            continue
        entry["state"] = state.strip() or entry["state"]
        if entry["state"] not in OPEN_STATES and entry["state"] != "COMPLETED":
            entry["reason"] = _scheduler_says(Path(entry["err"])) or entry["state"]
    atomic_write(Path(sweep_dir) / LEDGER, json.dumps(ledger, indent=2))
    return ledger


def _left_the_queue(sweep_dir: Path, ledger: dict, open_: dict[str, dict]) -> dict:
    """Without accounting squeue still lists the jobs SLURM has: one it lists no longer has
    ENDED, and its run's own record says how (with slurmstepd's line from its log when SLURM
    ended it). The states stay as they were when SLURM does not answer at all."""
    alive = queued(list(open_))
    if alive is None:
        return ledger
    for job_id, entry in open_.items():
        if job_id not in alive:
            entry["state"] = ENDED
            if reason := _scheduler_says(Path(entry["err"])):
                entry["reason"] = reason
    atomic_write(Path(sweep_dir) / LEDGER, json.dumps(ledger, indent=2))
    return ledger


def _until_done(jobs, poll_s: float = POLL_SECONDS, look_s: float = 0.5, asked: str = "") -> None:
    """Wait for every job. A job's result file is looked for every `look_s` seconds (a file
    on disk: nothing is asked of the scheduler), so the sweep ends as soon as its last job
    does; SLURM is asked about the jobs that may have died without a result, one sacct call
    for the whole sweep every `poll_s` seconds (submitit alone asks less and less often as a
    job ages, up to every 10 minutes, and would notice such a job minutes late). A job that
    waits for a change of its request or of the cluster's limits is named once (`asked`:
    the launcher settings it was given)."""
    watcher = getattr(type(jobs[0]), "watcher", None) if jobs else None
    last = time.monotonic()
    named: set[str] = set()
    while not all(job.done() for job in jobs):
        time.sleep(look_s)
        if watcher is not None and time.monotonic() - last >= poll_s:
            last = time.monotonic()
            try:
                watcher.update()
            except NotImplementedError:  # local jobs: done() asks the process itself
                watcher = None
                continue
            _name_stuck([j.job_id for j in jobs if not j.done()], named, asked)


# squeue's reasons for a pending job that only a smaller request or other limits will start
NEVER_AS_ASKED = re.compile(
    r"^(PartitionConfig|PartitionNodeLimit|PartitionTimeLimit|BadConstraints|"
    r"(QOS|Assoc)Max\w*PerJob\w*)$"
)


def _name_stuck(jobs: list[str], named: set[str], asked: str) -> None:
    """Log, once per job, a pending job SLURM will not start as asked (`jobs`: those not
    done)."""
    pending = [job for job in jobs if job not in named]
    if not pending:
        return
    try:
        out = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i|%r", "-j", ",".join(pending)],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return  # SLURM does not answer from here: nothing to name
    for line in out.splitlines():
        job_id, _, reason = line.partition("|")
        if job_id in pending and NEVER_AS_ASKED.match(reason.strip()):
            named.add(job_id)
            log.warning(
                "SLURM job %s cannot start as asked: it waits for %s, a limit of the "
                "partition, QOS or account that the request exceeds (asked: %s); scancel it "
                "and ask less, or another partition",
                job_id, reason.strip(), asked,
            )  # fmt: skip


def _state(job) -> str:
    try:
        return str(job.state) or "UNKNOWN"
    except Exception:  # noqa: BLE001 - the scheduler's answer is information, not required
        return "UNKNOWN"


def _scheduler_says(log: Path) -> str | None:
    """Why SLURM ended a job, from its own lines in the job's log (slurmstepd's errors: a
    memory limit, a time limit, a cancellation)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    said = [
        ln.split("error:", 1)[1].strip(" *")
        for ln in lines
        if "slurmstepd" in ln and "error:" in ln
    ]
    memory = [ln for ln in said if "memory" in ln]
    if memory:  # slurmstepd says it three ways; the one with the figures
        return max(memory, key=len)
    return said[-1] if said else None


def _first_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def _read_ledger(sweep_dir: Path) -> dict:
    try:
        data = json.loads((sweep_dir / LEDGER).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
