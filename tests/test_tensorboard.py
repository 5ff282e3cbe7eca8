"""What a user sees in TensorBoard, read through TensorBoard itself: a real `tensorboard`
server over a two-job sweep and a stopped-and-resumed run serves every evaluation point of
every curve (the final one included), and its HParams tab lists every run with its final
metrics. Reading the event files directly would miss what TensorBoard hides (a step that
goes backwards under a tag makes it drop the later points)."""

from __future__ import annotations

import csv
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from train_process import data_args, metrics, output, start, train, wait_for

SHORT = ["model=mlp", "steps=200", "eval_every=50", "checkpoint_every=20", "threads=1"]
CURVES = ["train/loss", "train/error", "test/loss", "test/error", "test/accuracy"]
FINAL = ["test/accuracy", "test/error", "test/loss", "train/error", "train/loss"]
TIMEOUT = 180  # seconds for TensorBoard to load the runs; the CPU is shared


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """A two-job sweep and a run stopped by SIGTERM and resumed, side by side."""
    tmp = tmp_path_factory.mktemp("tensorboard")
    proc = train(["-m", *SHORT, "hidden=8,16", *data_args(tmp), f"hydra.sweep.dir={tmp}/sweep"])
    assert proc.returncode == 0, output(proc)

    run_dir, log = tmp / "resumed", tmp / "resumed.log"
    proc = start([*SHORT, "hidden=8", *data_args(tmp), f"hydra.run.dir={run_dir}"], log)
    wait_for(run_dir / "checkpoint.pt", proc, log)  # the first periodic checkpoint
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=600) == 128 + signal.SIGTERM, log.read_text()
    assert metrics(run_dir)["status"] == "interrupted", "the run ended before the signal"
    proc = train([f"resume={run_dir}", *data_args(tmp), f"hydra.run.dir={tmp / 'resume-log'}"])
    assert proc.returncode == 0, output(proc)
    return tmp


@pytest.fixture(scope="module")
def server(logdir):
    """`tensorboard --logdir` on a free local port, as a user starts it; its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(logdir / "tensorboard.log", "w")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def runs(logdir) -> list[str]:
    """The run dirs TensorBoard names (relative to --logdir): the sweep's jobs, the resumed."""
    return sorted(
        str(p.parent.relative_to(logdir)) for p in logdir.rglob("metrics.json")
    )  # fmt: skip


def get(server, path: str, body: dict | None = None):
    url, proc = server
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data)
    if data is not None:  # TensorBoard refuses a POST without these
        request.add_header("Content-Type", "application/json")
        request.add_header("X-XSRF-Protected", "1")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_until_loaded(server, logdir, wanted: list[str]) -> None:
    """Poll TensorBoard until every run and its curves are loaded."""
    url, proc = server
    deadline = time.monotonic() + TIMEOUT
    while True:
        assert proc.poll() is None, (logdir / "tensorboard.log").read_text()
        try:
            tags = get(server, "/data/plugin/scalars/tags")
            if all(set(CURVES) <= set(tags.get(run, {})) for run in wanted):
                return
        except (urllib.error.URLError, ConnectionError):
            pass  # not serving yet
        assert time.monotonic() < deadline, f"TensorBoard did not load {wanted} in {TIMEOUT} s"
        time.sleep(1)


def history(run_dir) -> list[dict[str, str]]:
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # three train.py processes and a TensorBoard server
def test_tensorboard_serves_every_curve_point_and_the_hparams(server, logdir):
    wanted = runs(logdir)
    assert len(wanted) == 3, wanted  # two jobs and the resumed run
    wait_until_loaded(server, logdir, wanted)
    assert set(wanted) <= set(get(server, "/data/runs"))

    for run in wanted:
        rows = history(logdir / run)
        final = metrics(logdir / run)
        assert final["status"] == "completed"
        assert int(rows[-1]["step"]) == final["metrics"]["steps"] == 200
        for tag in CURVES:
            query = urllib.parse.urlencode({"run": run, "tag": tag})
            points = get(server, f"/data/plugin/scalars/scalars?{query}")
            # [wall time, step, value]: every evaluation of history.csv, once, in order
            assert [p[1] for p in points] == [int(r["step"]) for r in rows], (run, tag)
            assert [p[2] for p in points] == pytest.approx([float(r[tag]) for r in rows])
            assert points[-1][2] == pytest.approx(final["metrics"][tag])

    # the HParams tab: one session per run, with its swept value and its final metrics
    experiment = get(server, "/data/plugin/hparams/experiment", {"experimentName": ""})
    shown = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert {f"hparams/{m}" for m in FINAL} <= shown, shown
    assert not shown & set(CURVES), "hparams metrics under the curves' tags hide the curves"
    groups = get(
        server,
        "/data/plugin/hparams/session_groups",
        {"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS"],
         "colParams": [], "startIndex": 0, "sliceSize": 100},
    )["sessionGroups"]  # fmt: skip
    sessions = {s["name"]: s for g in groups for s in g["sessions"]}
    assert sorted(sessions) == wanted
    for run, session in sessions.items():
        final = metrics(logdir / run)["metrics"]
        values = {v["name"]["tag"]: v["value"] for v in session["metricValues"]}
        for m in FINAL:
            assert values[f"hparams/{m}"] == pytest.approx(final[m]), (run, m)
    hidden = {
        name: next(g["hparams"]["hidden"] for g in groups if g["sessions"][0]["name"] == name)
        for name in sessions
    }
    assert sorted(hidden.values()) == [8, 8, 16], hidden
