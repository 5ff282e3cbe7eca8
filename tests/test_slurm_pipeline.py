"""The problem set's smoke pipeline on the SLURM cluster (.ci/slurm-cluster; skipped without
one, failed without one when UCL_REQUIRE_SLURM=1, as tests/test_slurm.py): the pipeline
command with the launcher override sends every stage's jobs to SLURM, sweeps and single runs
alike, in dependency order, and every run and the report equal the same pipeline run here."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import SMOKE_GROUP, SMOKE_TIMEOUT_S
from test_slurm import cluster, cluster_chaos  # noqa: F401  (cluster: the skip-or-fail check)
from train_process import REPO

from ucl.pipeline.stages import load_pipeline

pytestmark = pytest.mark.slurm

# what legitimately differs between the two reports: wall times (table columns, durations in
# the text), the roots' paths, and run identities (a model.pt holds its config's data root)
TIME_COLUMN = re.compile(r"(^|\s)s$|\bs per call\b|\bseconds?\b|\btime\b|\bwall\b", re.I)
DURATION = re.compile(r"\d ?(m?s|min)\b|\d+m\d+s\b")
TIMING_METRIC = ("time/", "separation_per_second/")  # a divergence's seconds, and per second


def pipeline_on_the_cluster(root: Path, log: Path) -> subprocess.Popen:
    """The command as a user types it, with the size and time limit the cluster tests ask,
    started in the background: its stdout and stderr go to log.out and log.err."""
    command = [sys.executable, "scripts/pipeline.py", "pipeline=problem_set_smoke", "--root",
               str(root), "--no-pdf", "--jobs", "4", *cluster_chaos.slurm_args()]  # fmt: skip
    env = {**os.environ, "UCL_MNIST_DIR": ""}  # the smoke run takes the committed fixture
    # files, not pipes: nothing reads the output until the local run is made
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        return subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err, text=True, env=env)


def finished(proc: subprocess.Popen, log: Path, deadline: float) -> subprocess.CompletedProcess:
    """The command once it ended (killed at the deadline, as subprocess.run's timeout does)."""
    try:
        proc.wait(timeout=max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    out, err = (log.with_suffix(s).read_text() for s in (".out", ".err"))
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def runs(root: Path) -> dict[str, dict]:
    """Every stage's runs (a sweep's jobs), by path below the root: their metrics.json."""
    stages = [s.name for s in load_pipeline("problem_set_smoke").stages]
    found = [p for s in stages for p in sorted((root / s).glob("**/metrics.json"))]
    return {str(p.parent.relative_to(root)): json.loads(p.read_text()) for p in found}


def same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and
                      math.isnan(b))  # fmt: skip


def report_fragments(root: Path) -> Counter:
    """report.md up to its Environment section (code versions, wall times), in fragments
    (table rows, and the text cut at , ; : and .) with the wall times, the root's path, run
    identities and the order of a run's overrides taken out."""
    text = (root / "report" / "report.md").read_text().replace(str(root), "<root>")
    text = text.split("\n## Environment")[0]
    text = re.sub(r"run identity [0-9a-f]{16}", "run identity <id>", text)
    text = re.sub(r"`([^`\n]*=[^`\n]*)`", lambda m: f"`{' '.join(sorted(m[1].split()))}`", text)
    out: Counter = Counter()
    timing: set[int] | None = None  # the time columns of the table being read
    for line in text.splitlines():
        if not line.startswith("|"):
            timing = None
            out.update(f for f in re.split(r"(?<=[.;:,])\s+", line) if not DURATION.search(f))
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if timing is None:  # the table's header
            timing = {i for i, c in enumerate(cells) if TIME_COLUMN.search(c)}
        out["|".join(c for i, c in enumerate(cells) if i not in timing)] += 1
    return out


@pytest.mark.slow
@pytest.mark.long  # minutes: started first (conftest.py)
@SMOKE_GROUP  # the local run is tests/test_reproduce.py's
def test_the_smoke_pipeline_on_the_cluster_equals_the_local_run(tmp_path, request):
    root, log = tmp_path / "slurm", tmp_path / "pipeline"
    deadline = time.monotonic() + SMOKE_TIMEOUT_S
    # started first, so that SLURM runs the jobs while the local run is made (conftest.py
    # starts this test before tests/test_reproduce.py, which reads the same local run)
    cluster_run = pipeline_on_the_cluster(root, log)
    try:
        # asked for here, after the module's cluster check: with no cluster, nothing runs
        local, here = request.getfixturevalue("smoke_reproduction")
        assert here.returncode == 0, here.stdout[-3000:] + here.stderr[-3000:]
        proc = finished(cluster_run, log, deadline)
    finally:
        if cluster_run.poll() is None:  # the local run failed: the cluster run is not needed
            cluster_run.kill()
            cluster_run.wait()
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    stages = json.loads((root / "stages.json").read_text())["stages"]
    pipeline = load_pipeline("problem_set_smoke").stages
    assert {n: e["status"] for n, e in stages.items()} == {s.name: "completed" for s in pipeline}

    slurm, basic = runs(root), runs(local)
    assert sorted(slurm) == sorted(basic) and len(slurm) == 20
    for name, record in slurm.items():  # every run was a SLURM job, in its stage's own dir
        assert record["status"] == "completed", name
        assert record["slurm"]["job_id"].isdigit() and record["slurm"]["node"], name
        assert "slurm" not in basic[name], name
        a, b = record["metrics"], basic[name]["metrics"]
        keys = [k for k in a.keys() | b.keys() if not k.startswith(TIMING_METRIC)]
        differing = [k for k in keys if not same(a.get(k), b.get(k))]
        assert not differing, (name, {k: (a.get(k), b.get(k)) for k in differing})
    for stage in (s for s in pipeline if not s.sweep):  # a multirun of one job, in its own dir
        ledger = json.loads((root / ".cluster" / stage.name / "cluster.json").read_text())
        assert [(e["state"], e["dir"]) for e in ledger.values()] == [
            ("COMPLETED", str(root / stage.name))
        ]
        command = stages[stage.name]["command"]
        assert command[2] == "-m" and command[-1] == f"hydra.sweep.subdir={root / stage.name}"

    a, b = report_fragments(root), report_fragments(local)
    assert a == b, {"only on the cluster": a - b, "only here": b - a}
