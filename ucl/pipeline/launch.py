"""How a stage runs: `python train.py [-m] ARGS` from the repo into the stage's fixed dir,
its output appended to <root>/logs/<stage>.log.

Under a launcher (a `hydra/launcher=` override other than basic, e.g. submitit_slurm), a
single-run stage runs as a multirun of one job, so that the launcher runs it too: its job
dir is exactly the stage dir (Hydra joins hydra.sweep.subdir, here absolute, to the sweep
dir), and the sweep's own files (multirun.yaml, .submitit/ with the job's logs,
cluster.json) go to <root>/.cluster/<stage>. Our SLURM launcher waits for its jobs, so the
stage's train.py ends when its SLURM job does, with the job's one-line error if it failed."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO

from ucl.config import REPO
from ucl.keys import launcher
from ucl.pipeline.stages import Planned, shown

LOG_TAIL_LINES = 15  # lines of a failed stage's log shown on the console

Launch = Callable[[Planned, IO[str]], subprocess.Popen]


CLUSTER_DIR = ".cluster"  # <root>/.cluster/<stage>: a single run's sweep files under a launcher


def train_command(planned: Planned) -> list[str]:
    """`python train.py [-m] ARGS` with the stage's dir: a sweep's dir, a single run's dir,
    or under a launcher a single run as a sweep of one job into that dir."""
    train = [sys.executable, str(REPO / "train.py")]
    if planned.stage.sweep:
        return [*train, "-m", *planned.args, f"hydra.sweep.dir={shown(planned.dir)}"]
    if launcher(planned.args) is None:
        return [*train, *planned.args, f"hydra.run.dir={shown(planned.dir)}"]
    sweep_dir, job_dir = shown(cluster_dir(planned)), planned.dir.absolute()
    return [*train, "-m", *planned.args, f"hydra.sweep.dir={sweep_dir}",
            f"hydra.sweep.subdir={job_dir}"]  # fmt: skip


def cluster_dir(planned: Planned) -> Path:
    """Where a single-run stage's sweep files go when a launcher runs it."""
    return planned.dir.parent / CLUSTER_DIR / planned.name


def launch_train(planned: Planned, log: IO[str]) -> subprocess.Popen:
    """`python train.py [-m] ARGS hydra.(run|sweep).dir=DIR`, from the repo, output to log.
    In its own session: Ctrl-C reaches the runner alone, which stops each stage once. On
    Linux the stage is sent SIGTERM if the runner dies without stopping it (kill -9, the
    out-of-memory killer): it writes its checkpoint, and the same command continues it."""
    return subprocess.Popen(
        train_command(planned),
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_ended_with(os.getpid()) if sys.platform.startswith("linux") else None,
    )


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends


def _ended_with(runner: int) -> Callable[[], None]:
    """What the stage's process does before train.py starts: ask for SIGTERM when the
    runner ends (Python's standard library has no prctl; ctypes calls the C library's)."""
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it

    def ask() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != runner:  # the runner ended before the request was made
            os.kill(os.getpid(), signal.SIGTERM)

    return ask


def log_path(root: Path, planned: Planned) -> Path:
    return root / "logs" / f"{planned.name}.log"


def open_log(root: Path, planned: Planned) -> IO[str]:
    """The stage's log, opened to append (an earlier attempt's output stays above), headed
    by the time and the command. The caller closes it when the stage ends."""
    path = log_path(root, planned)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "a")
    log.write(
        f"\n# {datetime.now().isoformat(timespec='seconds')}: {' '.join(train_command(planned))}\n"
    )
    log.flush()
    return log


def last_error(root: Path, planned: Planned) -> str:
    """The one-line error train.py ended the stage's last attempt with ("train.py: ..."),
    without the prefix: under SLURM, the job that failed, its state, SLURM's reason and its
    log; "" when it printed none."""
    path = log_path(root, planned)
    if not path.is_file():
        return ""
    attempt = path.read_text(errors="replace").rpartition("\n# ")[2]
    for line in reversed(attempt.splitlines()):
        if line.startswith("train.py: "):
            return line.removeprefix("train.py: ").removeprefix("run failed: ")
    return ""


def log_tail(root: Path, planned: Planned) -> str:
    """The last lines of the stage's log, indented, for the console."""
    path = log_path(root, planned)
    lines = path.read_text(errors="replace").splitlines()
    shown_lines = "\n".join(f"    | {line}" for line in lines[-LOG_TAIL_LINES:])
    return f"    last lines of {shown(path)}:\n{shown_lines}"
