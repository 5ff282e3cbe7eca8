"""Run the planned stages, each as `python train.py ...` into its fixed dir, up to `jobs` at
a time, a stage only once the stages it needs completed.

A stage whose runs all completed is skipped, so an interrupted reproduction continues where
it stopped (inside a sweep, train.py skips the finished jobs and resumes the interrupted
one). A failed stage is reported, the stages that need it are skipped with the reason, and
the others go on. With several jobs, the stage heading the longest chain of estimates
starts first (the GAN's chain decides the total). Progress: a line when a stage starts or
ends, for every finished sweep job, and a heartbeat, each with the elapsed time and an
estimate of the time left. <root>/stages.json records every stage's status and wall time;
<root>/logs/<stage>.log holds train.py's output.

Beside it: launch.py starts a stage's train.py, record.py writes stages.json, progress.py
words the time and the estimate of the time left, schedule.py orders the stages.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from ucl.keys import on_slurm
from ucl.lifecycle import SIGNALS, catch, duration, restore
from ucl.pipeline.choices import Choice, ChoiceError, resolve
from ucl.pipeline.launch import Launch, last_error, launch_train, log_tail, open_log
from ucl.pipeline.progress import Progress
from ucl.pipeline.record import Outcome, StagesRecord
from ucl.pipeline.schedule import start_order
from ucl.pipeline.stages import Plan, Planned, shown
from ucl.pipeline.state import set_aside, stage_state

POLL_SECONDS = 2.0  # how often running stages' progress is looked at (their job dirs)
END_SECONDS = 0.2  # how soon a stage's ending process is noticed (a process poll, no file)
HEARTBEAT_SECONDS = 60.0  # a "still running" line per stage at least this often
STOP_GRACE_SECONDS = 60.0  # after Ctrl-C, time for train.py to write its checkpoint


@dataclass
class Running:
    planned: Planned
    proc: subprocess.Popen
    log: IO[str]
    started: float
    seen: int  # completed runs at the last progress line
    last_line: float


class Runner:
    """Runs one plan once, `jobs` stages at a time; `launch` starts a stage's process (a
    stand-in for train.py in tests), `out` receives the progress lines. The clock starts
    when the runner is made."""

    def __init__(
        self,
        plan: Plan,
        jobs: int = 1,
        launch: Launch = launch_train,
        out: IO[str] | None = None,
    ):
        self.plan, self.jobs, self.launch = plan, jobs, launch
        self.progress = Progress(plan, jobs, sys.stdout if out is None else out)
        self.record = StagesRecord(plan, jobs)
        self.done_at_start = done_stages(plan)
        self.choices: dict[str, list[Choice]] = {}  # stage -> the values it took from tables
        self.outcomes: dict[str, Outcome] = {}  # the stages finished (or skipped) now
        self.running: dict[str, Running] = {}
        self.stopping = False  # a signal arrived: the stages are being stopped

    def run(self) -> bool:
        """Every stage; True when all completed. Ctrl-C, SIGTERM or a hang-up stops the
        running stages (they checkpoint), records them as interrupted and raises
        KeyboardInterrupt."""
        total = len(self.plan.stages)
        stages = f"{total} stage{'s' if total != 1 else ''}"
        self.say(
            f"reproducing {stages} into {shown(self.plan.root)}, {self.jobs} at a time"
            f"{' (smoke: tiny settings)' if self.plan.smoke else ''}: "
            f"{len(self.done_at_start)} already completed; {self._left()}"
        )
        previous = catch(SIGNALS, self._signalled)
        try:
            self._loop()
        except KeyboardInterrupt:
            self._interrupt()
            raise
        finally:
            restore(previous)
        done = sum(o.status == "completed" for o in self.outcomes.values())
        problems = "".join(
            f"\n  {n}: {o.status}: {o.reason}"
            for n, o in self.outcomes.items()
            if o.status != "completed"
        )
        elapsed = duration(self.progress.elapsed())
        self.say(f"{done}/{total} stages completed in {elapsed}{problems}")
        return done == total

    def _loop(self) -> None:
        pending = start_order(self.plan, self.jobs)
        while pending or self.running:
            for planned in list(pending):
                needs = [self.outcomes.get(n) for n in planned.stage.needs]
                if any(o is None for o in needs):
                    continue  # a stage it needs has not finished yet
                # a stage to skip (done before, or blocked) takes no slot
                skip = planned.name in self.done_at_start or any(
                    o.status != "completed" for o in needs
                )
                if len(self.running) >= self.jobs and not skip:
                    continue
                pending.remove(planned)
                self._start(planned)
            if not self._poll() and self.running:
                self._until_one_ends(POLL_SECONDS)
            if pending and not self.running and not self._startable(pending):
                raise RuntimeError(f"stages wait for stages never run: {pending}")

    def _until_one_ends(self, seconds: float) -> None:
        """Wait `seconds`, or less: until a running stage's process ends, so that the stages
        that need it start at once."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if any(r.proc.poll() is not None for r in self.running.values()):
                return
            time.sleep(min(END_SECONDS, left))

    def _startable(self, pending: list[Planned]) -> bool:
        return any(all(n in self.outcomes for n in p.stage.needs) for p in pending)

    # -- one stage ----------------------------------------------------------------------
    def _start(self, planned: Planned) -> None:
        tag = self.progress.tag(planned)
        failed = [n for n in planned.stage.needs if self.outcomes[n].status != "completed"]
        if failed:
            reason = "; ".join(f"needs {n}, which {self.outcomes[n].status}" for n in failed)
            self.say(f"{tag}: skipped: {reason}")
            return self._finish(planned, Outcome("blocked", reason=reason))
        try:
            planned, self.choices[planned.name] = resolve(planned, self.plan)
        except ChoiceError as e:
            self.say(f"{tag}: cannot start: {e}")
            return self._finish(planned, Outcome("failed", reason=str(e)))
        for choice in self.choices[planned.name]:
            self.say(f"{tag}: takes {choice.describe()}")
        state = stage_state(planned)
        if state.changed:  # a default, a preset or a need changed since: not this stage's runs
            kept = planned.dir.with_name(
                f"{planned.dir.name}.replaced-{datetime.now():%Y%m%d-%H%M%S}"
            )
            planned.dir.rename(kept)
            what = (
                "what it read from a stage it needs"
                if "changed since it ran" in state.changed[0]
                else "its resolved config"
            )
            self.say(
                f"{tag}: {what} changed since it ran ({state.changed[0]}); "
                f"running it again (the old runs are kept in {shown(kept)})"
            )
            state = stage_state(planned)
        if state.aside:  # a sweep's jobs of other values or configs: never this stage's
            kept = set_aside(planned.dir, state)
            self.say(f"{tag}: {state.describe_aside()}; moved aside to {shown(kept)}")
            state = stage_state(planned)
            if state.missing:
                self.say(f"{tag}: {len(state.missing)} job(s) to run: {', '.join(state.missing)}")
        if state.done:
            seconds = self.record.seconds(planned)
            self.say(f"{tag}: already completed ({state.describe()}, took {duration(seconds)})")
            return self._finish(planned, Outcome("completed", seconds, reused=True))
        log = open_log(self.plan.root, planned)  # closed when the stage ends (_poll, _interrupt)
        now = time.perf_counter()
        self.record.ran(planned)
        self.running[planned.name] = Running(
            planned, self.launch(planned, log), log, now, state.completed, now
        )
        self.say(
            f"{tag}: started ({planned.stage.title}; est. "
            f"{duration(planned.minutes * 60)}); {self._left()}"
        )

    def _poll(self) -> bool:
        """Look at every running stage once; True when one ended."""
        ended = False
        for name, r in list(self.running.items()):
            code = r.proc.poll()
            now = time.perf_counter()
            if code is not None:
                del self.running[name]
                r.log.close()
                self._ended(r, code, now - r.started)
                ended = True
                continue
            if r.planned.stage.sweep:
                state = stage_state(r.planned)
                if state.completed != r.seen:
                    r.seen, r.last_line = state.completed, now
                    tag = self.progress.tag(r.planned)
                    after = duration(now - r.started)
                    self.say(f"{tag}: {state.describe()} after {after}; {self._left()}")
                    continue
            if now - r.last_line >= HEARTBEAT_SECONDS:
                r.last_line = now
                tag = self.progress.tag(r.planned)
                self.say(
                    f"{tag}: running for {duration(now - r.started)} (est. "
                    f"{duration(r.planned.minutes * 60)}); {self._left()}"
                )
        return ended

    def _ended(self, r: Running, code: int, seconds: float) -> None:
        planned, tag = r.planned, self.progress.tag(r.planned)
        self.progress.finished(planned, seconds)
        state = stage_state(planned)
        uncounted = state.expected is None and state.completed and not state.problems
        if code == 0 and (state.done or uncounted):
            self._finish(planned, Outcome("completed", seconds))
            self.say(f"{tag}: done in {duration(seconds)} ({state.describe()}); {self._left()}")
            return
        # train.py's own line first when no run's record says it (a SLURM job cancelled or
        # killed, a refused override), then the runs' records
        said = last_error(self.plan.root, planned) if code else ""
        said = [said] if said and not any(said in p for p in state.problems) else []
        reason = "; ".join([*said, *state.problems]) or f"train.py exited with code {code}"
        self._finish(planned, Outcome("failed", seconds, reason=reason))
        self.say(
            f"{tag}: FAILED after {duration(seconds)} ({state.describe()}): {reason}; "
            f"{self._left()}\n{log_tail(self.plan.root, planned)}"
        )

    def _finish(self, planned: Planned, outcome: Outcome) -> None:
        self.outcomes[planned.name] = outcome
        choices = [c.record() for c in self.choices.get(planned.name, [])]
        self.record.write(planned, outcome, self.progress.elapsed(), choices)

    def _signalled(self, signum, frame) -> None:
        """The first Ctrl-C, SIGTERM or hang-up stops the stages (_interrupt); another one
        meanwhile kills them at once: each continues from its last checkpoint."""
        if not self.stopping:
            self.stopping = True
            raise KeyboardInterrupt
        for r in list(self.running.values()):
            r.proc.kill()

    def _interrupt(self) -> None:
        """Stop the running stages: SIGTERM lets train.py checkpoint and record itself. They
        have ended when this returns."""
        self.stopping = True
        running = [r for r in self.running.values() if r.proc.poll() is None]
        for r in running:
            r.proc.send_signal(signal.SIGTERM)
        # a stage under SLURM only waits for its jobs: train.py ends, and the jobs run on
        slurm = [r.planned.name for r in running if on_slurm(r.planned.args)]
        here = [r.planned.name for r in running if r.planned.name not in slurm]
        if here:
            names = ", ".join(here)
            self.say(f"stopping {names}: each writes its checkpoint (Ctrl-C again: stop at once)")
        if slurm:
            names = ", ".join(slurm)
            self.say(
                f"stopping {names}: their SLURM jobs run on (squeue lists them, scancel stops them)"
            )
        for r in list(self.running.values()):
            try:
                r.proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
            r.log.close()
            seconds = time.perf_counter() - r.started
            self.say(f"{self.progress.tag(r.planned)}: interrupted after {duration(seconds)}")
            self._finish(r.planned, Outcome("interrupted", seconds, "interrupted by the user"))
        self.running.clear()
        self.say(
            "interrupted: run the same command again to continue from the checkpoints"
            + ("; it first waits for the SLURM jobs still queued or running" if slurm else "")
        )

    # -- progress -----------------------------------------------------------------------
    def say(self, line: str) -> None:
        self.progress.say(line)

    def _left(self) -> str:
        started = {name: r.started for name, r in self.running.items()}
        return self.progress.left(self.outcomes.keys() | self.done_at_start, started)


def done_stages(plan: Plan) -> set[str]:
    """The stages already complete with what their needs hold now: a stage whose need
    will run is not, as its runs would then have read something else."""
    done: set[str] = set()
    for planned in plan.stages:  # needs first
        if not all(n in done for n in planned.stage.needs):
            continue
        try:
            planned, _ = resolve(planned, plan)
        except ChoiceError:
            continue
        if stage_state(planned).done:
            done.add(planned.name)
    return done
