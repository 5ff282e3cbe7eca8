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
from pathlib import Path

import pytest
from train_process import data_args, metrics, output, start, train, wait_for

from ucl.loop import read_checkpoint

SHORT = ["model=mlp", "steps=200", "eval_every=50", "checkpoint_every=20", "threads=1"]
CURVES = ["train/loss", "train/error", "test/loss", "test/error", "test/accuracy"]
FINAL = ["test/accuracy", "test/error", "test/loss", "train/error", "train/loss"]
TIMEOUT = 180  # seconds for TensorBoard to load the runs; the CPU is shared
LONGER = ["steps=1000", "eval_every=250"]  # the stopped and resumed run
STEPS = {"sweep": 200, "resumed": 1000}  # each run's iterations


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """A two-job sweep and a run stopped by SIGTERM and resumed, side by side."""
    tmp = tmp_path_factory.mktemp("tensorboard")
    proc = train(["-m", *SHORT, "hidden=8,16", *data_args(tmp), f"hydra.sweep.dir={tmp}/sweep"])
    assert proc.returncode == 0, output(proc)

    # the run to stop is longer: the signal, sent once its first checkpoint is written,
    # lands with most of its 1000 steps still to go
    run_dir, log = tmp / "resumed", tmp / "resumed.log"
    args = [*SHORT, *LONGER, "hidden=8", *data_args(tmp), f"hydra.run.dir={run_dir}"]
    proc = start(args, log)
    wait_for(run_dir / "checkpoint.pt", proc, log)  # the first periodic checkpoint
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=600) == 128 + signal.SIGTERM, log.read_text()
    assert metrics(run_dir)["status"] == "interrupted", "the run ended before the signal"
    stopped_at = read_checkpoint(run_dir / "checkpoint.pt")["step"]
    assert 20 <= stopped_at < STEPS["resumed"], stopped_at
    proc = train([f"resume={run_dir}", *data_args(tmp), f"hydra.run.dir={tmp / 'resume-log'}"])
    assert proc.returncode == 0, output(proc)
    assert f"at iteration {stopped_at}" in proc.stdout + proc.stderr, output(proc)
    return tmp


@pytest.fixture
def serve(logdir):
    """`serve(dir)`: `tensorboard --logdir dir` on a free local port, as a user starts it."""
    started = []

    def serve(path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = open(logdir / f"tensorboard-{port}.log", "w")  # noqa: SIM115  (closed below)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(path),
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append((proc, log))
        return f"http://127.0.0.1:{port}", proc, Path(log.name)

    yield serve
    for proc, log in started:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def get(server, path: str, body: dict | None = None):
    url, _, _ = server
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data)
    if data is not None:  # TensorBoard refuses a POST without these
        request.add_header("Content-Type", "application/json")
        request.add_header("X-XSRF-Protected", "1")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_until_loaded(server, wanted: list[str]) -> None:
    """Poll TensorBoard until every run and its curves are loaded."""
    _, proc, log = server
    deadline = time.monotonic() + TIMEOUT
    while True:
        assert proc.poll() is None, log.read_text()
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


def check_curves(server, logdir, wanted: list[str]) -> None:
    """Every curve of every run in `wanted`, as TensorBoard serves it, against history.csv."""
    wait_until_loaded(server, wanted)
    assert set(wanted) <= set(get(server, "/data/runs"))
    for run in wanted:
        rows = history(logdir / run)
        final = metrics(logdir / run)
        assert final["status"] == "completed"
        assert int(rows[-1]["step"]) == final["metrics"]["steps"] == STEPS[logdir.name]
        for tag in CURVES:
            query = urllib.parse.urlencode({"run": run, "tag": tag})
            points = get(server, f"/data/plugin/scalars/scalars?{query}")
            # [wall time, step, value]: every evaluation of history.csv, once, in order
            assert [p[1] for p in points] == [int(r["step"]) for r in rows], (run, tag)
            assert [p[2] for p in points] == pytest.approx([float(r[tag]) for r in rows])
            assert points[-1][2] == pytest.approx(final["metrics"][tag])


def hparams_sessions(server, logdir, wanted: list[str]) -> tuple[dict, dict]:
    """The HParams tab's experiment and its sessions; each run's final metrics checked."""
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
    sessions = {s["name"]: {**s, "hparams": g["hparams"]} for g in groups for s in g["sessions"]}
    assert sorted(sessions) == sorted(wanted)
    for run, session in sessions.items():
        final = metrics(logdir / run)["metrics"]
        values = {v["name"]["tag"]: v["value"] for v in session["metricValues"]}
        for m in FINAL:
            assert values[f"hparams/{m}"] == pytest.approx(final[m]), (run, m)
    return experiment, sessions


@pytest.mark.slow  # two train.py processes and a TensorBoard server
def test_tensorboard_shows_each_sweep_job_whole(serve, logdir):
    server = serve(logdir / "sweep")
    wanted = ["hidden=16", "hidden=8"]
    check_curves(server, logdir / "sweep", wanted)
    experiment, sessions = hparams_sessions(server, logdir / "sweep", wanted)
    assert {run: s["hparams"]["hidden"] for run, s in sessions.items()} == {
        "hidden=8": 8, "hidden=16": 16
    }  # fmt: skip
    # the swept hparam first: the tab shows the first five at the start
    assert experiment["hparamInfos"][0]["name"] == "hidden", experiment["hparamInfos"]
    assert experiment["hparamInfos"][0]["differs"] is True


@pytest.mark.slow  # two train.py processes and a TensorBoard server
def test_tensorboard_shows_a_resumed_run_whole(serve, logdir):
    server = serve(logdir / "resumed")
    check_curves(server, logdir / "resumed", ["."])
    hparams_sessions(server, logdir / "resumed", ["."])


def fetch(server, path: str) -> bytes:
    url, _, _ = server
    with urllib.request.urlopen(url + path, timeout=30) as response:
        return response.read()


@pytest.mark.slow  # two train.py processes and a TensorBoard server
def test_tensorboard_shows_each_figure_as_its_png(serve, logdir):
    """The Images tab serves every figure of a run byte for byte as figures/<name>.png:
    one drawing of each figure, not a second one at another size."""
    server = serve(logdir / "sweep")
    wait_until_loaded(server, ["hidden=8"])
    figures = {"error_curves", "loss_curves", "confusion_matrix"}
    deadline = time.monotonic() + TIMEOUT
    # the scalars can be loaded before the images of the same run: wait for those too
    while not figures <= set(tags := get(server, "/data/plugin/images/tags").get("hidden=8", {})):
        assert time.monotonic() < deadline, f"TensorBoard shows only {sorted(tags)}"
        time.sleep(1)
    pngs = {p.stem: p.read_bytes() for p in (logdir / "sweep" / "hidden=8" / "figures").glob("*")}
    assert figures <= set(tags) <= set(pngs)
    for tag in ("error_curves", "loss_curves", "confusion_matrix"):
        query = urllib.parse.urlencode({"run": "hidden=8", "tag": tag, "sample": 0})
        entries = get(server, f"/data/plugin/images/images?{query}")
        served = fetch(server, f"/data/plugin/images/individualImage?{entries[-1]['query']}")
        assert served == pngs[tag], tag
