"""scripts/bench.py --busy: the one job it times beside runs for the whole bench, then stops."""

from __future__ import annotations

import os

import pytest
from conftest import FIXTURE_MNIST

from ucl.benchmarks.busy import busy_job


def test_the_busy_job_trains_while_the_bench_runs_and_stops_after(tmp_path):
    extra = [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp_path / 'data'}"]
    with busy_job(extra, warm_up=2.0) as busy:
        assert busy.process.poll() is None  # started, not refused
        assert busy.shown.startswith("python train.py experiment=best_mlp threads=1")
        pid = busy.process.pid
    assert busy.process.poll() is not None
    with pytest.raises(ProcessLookupError):  # the whole process group is gone
        os.killpg(pid, 0)
