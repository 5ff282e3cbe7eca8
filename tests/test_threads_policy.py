"""Idle OpenMP threads sleep rather than spin in a run (train.py sets the policy before
torch loads), unless the user chose a policy; importing ucl changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from train_process import REPO, data_args

SHOW = "import ucl, ucl.run, os, torch; print(os.environ.get('OMP_WAIT_POLICY', 'unset'))"


@pytest.mark.slow  # starts a python process
def test_importing_ucl_leaves_the_openmp_policy_alone():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "unset"


def _recorded_policy(tmp_path, env: dict) -> str:
    run_dir = tmp_path / "run"
    subprocess.run(
        [sys.executable, str(REPO / "train.py"), "steps=2", "threads=1",
         *data_args(tmp_path), f"hydra.run.dir={run_dir}"],
        env={**env, "UCL_MNIST_DIR": ""}, capture_output=True, text=True, check=True,
        cwd=REPO, timeout=600,
    )  # fmt: skip
    return json.loads((run_dir / "metrics.json").read_text())["env"]["omp_wait_policy"]


@pytest.mark.slow  # starts train.py twice
def test_a_run_sleeps_its_idle_threads_and_a_users_policy_wins(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _recorded_policy(tmp_path / "default", env) == "PASSIVE"
    assert _recorded_policy(tmp_path / "own", {**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
