"""Importing ucl before torch makes idle OpenMP threads sleep rather than spin, unless the
user chose a policy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SHOW = "import ucl, os, torch; print(os.environ['OMP_WAIT_POLICY'])"


def _policy(env: dict) -> str:
    out = subprocess.run(
        [sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.mark.slow  # starts python processes
def test_omp_threads_sleep_by_default_and_a_users_policy_wins():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy(env) == "PASSIVE"
    assert _policy({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
