"""The chaos script's short version: a sweep SIGKILLed at seeded moments and re-run ends
bit-identical to the same sweep left alone, with no temporary or lock file behind."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from train_process import REPO


@pytest.mark.slow  # a reference sweep, three kills and the re-runs
def test_a_sweep_killed_three_times_ends_as_if_left_alone(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "chaos.py"), "--kills", "3", "--jobs", "2",
         "--steps", "60", "--out", str(tmp_path / "chaos"), "--json"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["kills"] == figures["survived"] == 3
    assert figures["differ"] == [] and figures["leftovers"] == []
    assert figures["failed_reads"] == [] and figures["jobs"] == 2
