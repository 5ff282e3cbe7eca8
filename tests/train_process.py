"""train.py in a subprocess, for the tests of interruption, resume, sweeps and launchers:
run it, start it and signal it once it has written a checkpoint, snapshot a run dir."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE_MNIST = REPO / "tests" / "fixtures" / "mnist"
TIMEOUT = 600  # seconds; generous: the CPU is shared with other work


def data_args(tmp: Path) -> list[str]:
    """The committed 2000/500-digit MNIST subset, imported under tmp."""
    return [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp / 'data'}", "progress=false"]


def _env() -> dict[str, str]:
    return {**os.environ, "UCL_MNIST_DIR": "", "HYDRA_FULL_ERROR": "0"}


def train(args: list[str], file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """`python train.py ARGS` run to its end (whatever its exit code)."""
    return run_script("train.py", args, file_size_limit)


def run_script(path: str, args: list[str], file_size_limit: int | None = None):
    """`python PATH ARGS` (PATH in the repo) run to its end; `file_size_limit` (bytes, as
    `ulimit -f`) fails a larger write as a full disk or a quota does."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [sys.executable, str(REPO / path), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=TIMEOUT,
        preexec_fn=None if file_size_limit is None else limit,
    )


def ctrl_c_default() -> None:
    """Ctrl-C as a terminal's foreground command has it: not ignored, as it is when pytest
    itself runs in the background (a child inherits an ignored signal)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(
    args: list[str],
    log: Path,
    env: dict | None = None,
    ignoring: tuple[int, ...] = (),
    terminal: bool = False,
) -> subprocess.Popen:
    """`python train.py ARGS` in the background, output to `log` (`env`: added variables),
    with the signals `ignoring` ignored from its start, as `nohup` ignores SIGHUP.
    `terminal`: in a process group of its own, as a terminal's foreground command, with
    Ctrl-C not ignored (as it is when pytest runs in the background); `os.killpg` then
    reaches it and the processes it starts, as a terminal's Ctrl-C does."""

    def ignore() -> None:
        if terminal:
            ctrl_c_default()
        for signum in ignoring:
            signal.signal(signum, signal.SIG_IGN)

    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, str(REPO / "train.py"), *args],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**_env(), **(env or {})},
            preexec_fn=ignore if ignoring or terminal else None,
            start_new_session=terminal,
        )


def wait_for(path: Path, proc: subprocess.Popen, log: Path) -> None:
    """Poll until `path` exists; fail if the process ends first."""
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"train.py ended before writing {path}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {path} after {TIMEOUT} s:\n{log.read_text()}")
        time.sleep(0.02)


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def snapshot(run_dir: Path) -> dict[str, tuple[int, str]]:
    """Every file below run_dir -> (mtime in ns, sha256): equal snapshots, untouched files."""
    files = sorted(p for p in Path(run_dir).rglob("*") if p.is_file())
    return {
        str(p.relative_to(run_dir)): (
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in files
    }


def output(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
