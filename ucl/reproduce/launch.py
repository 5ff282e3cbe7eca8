"""How a stage runs: `python train.py [-m] ARGS` from the repo into the stage's fixed dir,
its output appended to <root>/logs/<stage>.log."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO

from ucl.config import REPO
from ucl.reproduce.stages import Planned, shown

LOG_TAIL_LINES = 15  # lines of a failed stage's log shown on the console

Launch = Callable[[Planned, IO[str]], subprocess.Popen]


def train_command(planned: Planned) -> list[str]:
    where = "hydra.sweep.dir" if planned.stage.sweep else "hydra.run.dir"
    multirun = ["-m"] if planned.stage.sweep else []
    return [
        sys.executable,
        str(REPO / "train.py"),
        *multirun,
        *planned.args,
        f"{where}={shown(planned.dir)}",
    ]


def launch_train(planned: Planned, log: IO[str]) -> subprocess.Popen:
    """`python train.py [-m] ARGS hydra.(run|sweep).dir=DIR`, from the repo, output to log.
    In its own session: Ctrl-C reaches the runner alone, which stops each stage once."""
    return subprocess.Popen(
        train_command(planned),
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


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


def log_tail(root: Path, planned: Planned) -> str:
    """The last lines of the stage's log, indented, for the console."""
    path = log_path(root, planned)
    lines = path.read_text(errors="replace").splitlines()
    shown_lines = "\n".join(f"    | {line}" for line in lines[-LOG_TAIL_LINES:])
    return f"    last lines of {shown(path)}:\n{shown_lines}"
