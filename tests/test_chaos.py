"""The chaos script's short version: an autoencoder and a GAN sweep, each SIGKILLed at a
seeded moment and re-run, end bit-identical to the same sweeps left alone (metrics,
history.csv, model.pt, TensorBoard scalars), with no temporary or lock file behind; a kill
counts as survived only when its sweep completed and matched. (The classifier's sweep is
the third task of the full run; its kill and resume are also tested in test_run_integrity.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from train_process import REPO


@pytest.mark.slow  # two reference sweeps, two kills and the re-runs
def test_an_autoencoder_and_a_gan_killed_end_as_if_left_alone(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "chaos.py"), "--kills", "2", "--jobs", "1",
         "--steps", "60", "--tasks", "autoencoder,gan", "--out", str(tmp_path / "chaos"),
         "--json"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["kills"] == figures["survived"] == 2
    assert figures["kills_per_task"] == {"autoencoder": 1, "gan": 1}
    assert figures["differ"] == [] and figures["leftovers"] == []
    assert figures["failed_reads"] == [] and figures["jobs"] == 2


def test_a_round_that_does_not_match_is_not_survived(tmp_path, monkeypatch):
    """The count comes from the comparison: a job that differs leaves its kills uncounted."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("chaos", REPO / "scripts" / "chaos.py")
    chaos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(chaos)
    monkeypatch.setattr(chaos, "run_until_done", lambda command, log: _fake(command, 0))
    monkeypatch.setattr(chaos, "start", lambda command, log: _Proc(command))
    monkeypatch.setattr(chaos, "kill_tree", lambda proc: None)
    monkeypatch.setattr(chaos, "differing_jobs", lambda ref, sweep: ["seed=0 (model.pt)"])
    args = chaos.argparse.Namespace(kills=2, jobs=1, steps=10, seed=0, tasks=["gan"],
                                    out=str(tmp_path / "out"))  # fmt: skip
    result = chaos.chaos(args)
    assert result["kills"] == 2 and result["survived"] == 0, result
    assert result["differ"][0] == "round 1 (gan): seed=0 (model.pt)"


def _fake(command, code):
    sweep = Path(command[command.index(next(a for a in command if a.startswith("hydra.sweep")))]
                 .partition("=")[2])  # fmt: skip
    (sweep / "seed=0").mkdir(parents=True, exist_ok=True)
    (sweep / "seed=0" / "metrics.json").write_text('{"status": "completed", "metrics": {}}')
    return code


class _Proc:
    """A sweep that is still running whenever it is looked at, and completes when waited on."""

    def __init__(self, command):
        self.command = command

    def poll(self):
        return None

    def wait(self, timeout=None):
        return _fake(self.command, 0)
