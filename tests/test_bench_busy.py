"""scripts/bench.py --busy: the one job it times beside trains for the whole bench (its
history grows while the bench runs), then stops with its whole process group."""

from __future__ import annotations

import csv
import os
import time

import pytest
from conftest import FIXTURE_MNIST

from problem_set.benchmarks.busy import busy_job

TIMEOUT = 300  # seconds for the job to reach an evaluation; the CPU is shared


def history_rows(busy) -> int:
    """Evaluations the busy job has logged so far; fails as soon as the job has stopped."""
    path = busy.run_dir / "history.csv"
    if busy.process.poll() is not None:
        raise AssertionError(f"the busy job stopped (exit {busy.process.returncode})")
    if not path.exists():
        return 0
    with open(path) as f:
        return len(list(csv.DictReader(f)))


def wait_for_more_rows(busy, than: int) -> int:
    deadline = time.monotonic() + TIMEOUT
    while (rows := history_rows(busy)) <= than:
        assert time.monotonic() < deadline, f"no evaluation past {than} in {TIMEOUT} s"
        time.sleep(0.05)
    return rows


@pytest.mark.slow  # a real train.py run beside the test
def test_the_busy_job_trains_while_the_bench_runs_and_stops_after(tmp_path):
    # the fixture has 2000 training digits: best_mlp's 5000 held out would be refused; an
    # evaluation every 5 steps makes its progress visible; 32 units keep the test quick
    extra = [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={tmp_path / 'data'}",
             "dataset.validation=300", "eval_every=5", "hidden=32"]  # fmt: skip
    with busy_job(extra, warm_up=0.5) as busy:
        assert busy.shown.startswith("python train.py experiment=best_mlp threads=1")
        assert "eval_every=1000000" not in busy.shown  # a later override replaces the default
        first = wait_for_more_rows(busy, 0)
        wait_for_more_rows(busy, first)  # still training, not stopped after one evaluation
        pid = busy.process.pid
    assert busy.process.poll() is not None
    with pytest.raises(ProcessLookupError):  # the whole process group is gone
        os.killpg(pid, 0)
