"""Pipelines written as config, through `python scripts/pipeline.py` as a user types it:
README's own pipeline on the committed MNIST subset, a changed need re-running what is
downstream (and --list saying why), and bad pipelines refused in one line before anything
runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from train_process import ctrl_c_default

from ucl.rundir import run_identity

REPO = Path(__file__).resolve().parents[1]

# README's pipeline at smoke settings: each stage's `smoke:` list (the subset holds 2000
# training and 500 test digits)
SMOKE = {
    "width": ["steps=10", "eval_every=10", "threads=1", "dataset.validation=300", "hidden=16,32"],
    "classifier": ["steps=20", "eval_every=10", "threads=1", "dataset.validation=300"],
    "gan": ["steps=20", "eval_every=10", "threads=1"],
    "divergence": ["divergence.n=50,100", "divergence.repeats=2", "divergence.permutations=50",
                   "threads=1"],
}  # fmt: skip


def readme_pipeline() -> dict:
    """The YAML README shows as the user's my_study.yaml."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"`my_study\.yaml`:\n\n```yaml\n(.*?)```", text, flags=re.S)
    assert block, "README's pipeline example"
    return yaml.safe_load(block[1])


def pipeline(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "pipeline.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "UCL_MNIST_DIR": ""},
        timeout=timeout,
    )


def write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.slow
@pytest.mark.long  # about a minute: started first (conftest.py)
def test_the_readme_pipeline_runs_and_a_changed_need_reruns_what_is_downstream(tmp_path):
    spec = readme_pipeline()
    assert list(spec["stages"]) == ["width", "classifier", "gan", "divergence"]
    for name, smoke in SMOKE.items():
        spec["stages"][name]["smoke"] = smoke
    mine, root = write(tmp_path / "my_study.yaml", spec), tmp_path / "runs"
    args = (f"pipeline={mine}", "--smoke", "--root", str(root))

    first = pipeline(*args)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    record = json.loads((root / "stages.json").read_text())
    assert {n: e["status"] for n, e in record["stages"].items()} == dict.fromkeys(
        ["width", "classifier", "gan", "divergence"], "completed"
    )
    # the classifier took the table's best width, and says where it came from
    (choice,) = record["stages"]["classifier"]["choices"]
    assert choice["key"] == "hidden" and choice["value"] in ("16", "32")
    assert choice["from"] == "width" and choice["metric"] == "val/accuracy"
    classifier = json.loads((root / "classifier" / "metrics.json").read_text())
    assert f"hidden={choice['value']}" in classifier["overrides"]
    assert classifier["consumed"]["hidden"]["identity"] == choice["identity"]
    assert (
        f"classifier: takes hidden={choice['value']}: the best of 2 cells of width" in first.stdout
    )
    # each run records the identity of what it read
    gan = json.loads((root / "gan" / "metrics.json").read_text())
    assert gan["consumed"]["classifier"]["identity"] == run_identity(root / "classifier")
    for job in (root / "divergence").glob("divergence.n=*"):
        read = json.loads((job / "metrics.json").read_text())["consumed"]["generator"]
        assert read["identity"] == run_identity(root / "gan")

    # nothing changed, and the root moved elsewhere holds the same runs: all reused
    moved = root.rename(tmp_path / "moved")
    listed = pipeline(f"pipeline={mine}", "--smoke", "--root", str(moved), "--list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("reused: already completed") == 4, listed.stdout
    assert "0 of 4 stages to run" in listed.stdout
    moved.rename(root)

    # the classifier trains longer: it runs again, and so does every stage downstream
    spec["stages"]["classifier"]["smoke"] = [*SMOKE["classifier"], "steps=30"]
    write(mine, spec)
    listed = pipeline(*args, "--list")
    lines = dict(re.findall(r"^(\w+) .*\n    (.*)$", listed.stdout, flags=re.M))
    assert lines["width"].startswith("reused"), listed.stdout
    assert lines["classifier"].startswith("runs again: what it ran with changed"), lines
    assert "steps: '20' there, '30' now" in lines["classifier"]
    assert lines["gan"] == "runs: needs classifier, which runs first"
    assert lines["divergence"] == "runs: needs gan, which runs first"
    assert "3 of 4 stages to run" in listed.stdout

    second = pipeline(*args)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
    assert "width: already completed" in second.stdout
    assert "gan: what it read from a stage it needs changed since it ran" in second.stdout
    assert "divergence: 2 stale job(s)" in second.stdout, second.stdout
    gan_after = json.loads((root / "gan" / "metrics.json").read_text())
    assert gan_after["consumed"]["classifier"]["identity"] == run_identity(root / "classifier")
    assert (
        gan_after["consumed"]["classifier"]["identity"] != gan["consumed"]["classifier"]["identity"]
    )
    for stage in ("classifier", "gan", "divergence"):  # the old runs are kept aside
        (kept,) = root.glob(f"{stage}.replaced-*")
        assert list(kept.rglob("metrics.json")), kept


def stage(overrides, **more) -> dict:
    return {"overrides": overrides, **more}


TABLE = stage(["model=mlp", "hidden=16,32", "steps=10"], sweep=True)
REFUSED = [
    (
        {"a": stage(["seed={b}"]), "b": stage(["seed=0"], needs=["a"])},
        "stages a -> b -> a form a cycle",
    ),
    (
        {"gan": stage(["experiment=gan", "classifier={clasifier}"])},
        "needs clasifier, which is no stage",
    ),
    (
        {"one": stage(["model=mlp"]), "two": stage(["model=mlp", "hidden={one.hidden}"])},
        "takes {one.hidden}, but one is not a sweep",
    ),
    (
        {"table": TABLE, "two": stage(["model=mlp", "activation={table.activation}"])},
        "but table's sweep does not vary activation (it sweeps hidden)",
    ),
    ({"table": TABLE, "two": stage(["classifier={table}"])}, "a sweep's dir of many jobs"),
    ({"one": stage(["model=mlp"], minutes_=1)}, "unknown key 'minutes_'"),
]


@pytest.mark.parametrize("stages,message", REFUSED, ids=[m for _, m in REFUSED])
def test_a_bad_pipeline_is_refused_in_one_line_before_anything_runs(tmp_path, stages, message):
    mine = write(tmp_path / "bad.yaml", {"root": str(tmp_path / "runs"), "stages": stages})
    proc = pipeline(f"pipeline={mine}", timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()  # nothing ran, nothing was written


WRITTEN_WRONG = [
    ("stages:\n  a: [\n", "bad.yaml: not YAML: expected the node content, but found '<stream "
     "end>' (line 4, column 1)"),
    ("stages:\n  a:\n    overrides: [model=mlp]\n    minutes: soon\n",
     "stage a: minutes='soon' must be a number of minutes, e.g. minutes: 5"),
    ("stages:\n  a:\n    overrides: [model=mlp]\n    sweep: yes please\n",
     "stage a: sweep='yes please' must be true or false"),
    ("stages:\n  a:\n    overrides: [model=mlp, hiden=3]\n",
     "stage a: hiden=3: Key 'hiden' not in 'UclConfig'"),
    ("stages:\n  a:\n    overrides: [model=mlpx]\n",
     "stage a: model=mlpx: In 'config': Could not find 'model/mlpx'; the options: autoencoder, "),
    ("stages:\n  a:\n    overrides: [model=mlp, 'hidden=8,16']\n",
     "stage a: hidden=8,16 lists several values, but a is not a sweep; add sweep: true to the "
     "stage, or give one value"),
    ("stages:\n  a:\n    sweep: true\n    overrides: [model=mlp, 'hidden=16,abc', 'seed=0,1,2']\n",
     "stage a: hidden=abc: Value 'abc' of type 'str' could not be converted to Integer"),
    ("stages:\n  a:\n    sweep: true\n    overrides: [model=mlp, 'activation=relu,tanhh']\n",
     "stage a: activation=tanhh: In 'config': Could not find 'activation/tanhh'; the options: "),
    ("stages:\n  a:\n    sweep: true\n    overrides: [model=mlp, 'activation=relu,../config']\n",
     "stage a: activation=../config: In 'activation/../config': Could not find"),
    ("stages:\n  a:\n    overrides: [model=mlp, 'hidden={w.hidden']\n",
     "stage a: hidden={w.hidden: no viable alternative at input '{w.hidden'"),
    ("stages:\n  a:\n    overrides: [model=mlp, hydra.run.dir=/tmp/elsewhere]\n",
     "stage a: hydra.run.dir=/tmp/elsewhere: the pipeline gives each stage its dir (root/a); "
     "drop it"),
]  # fmt: skip


@pytest.mark.parametrize("text,message", WRITTEN_WRONG, ids=[m[:40] for _, m in WRITTEN_WRONG])
def test_a_pipeline_written_wrong_is_refused_in_one_line_naming_the_stage(
    tmp_path, capsys, text, message
):
    from ucl.pipeline.command import main

    mine = tmp_path / "bad.yaml"
    mine.write_text(f"root: {tmp_path / 'runs'}\n{text}")
    assert main([f"pipeline={mine}", "--list"], prog="pipeline.py", doc="pipeline") == 2
    said = capsys.readouterr().err
    assert message in said, said
    assert len(said.strip().splitlines()) == 1 and "Traceback" not in said
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "given,said",
    [
        (["--estimate", "a=-5"], "--estimate 'a=-5': give STAGE=MINUTES, minutes above 0, e.g."),
        (["--estimate", "a=nan"], "--estimate 'a=nan': give STAGE=MINUTES, minutes above 0"),
        (["stages.a.minutes=3"], "stage a: stages.a.minutes=3: Key 'stages' not in 'UclConfig'"),
        (["~optimizer"], "stage a: ~optimizer: the command line can choose another optimizer"),
        (["model=null"], "stage a: model=null: the command line can choose another model, not"),
        (["task=gan"], "stage a: task=gan: the model chooses the task; model=gan runs it"),
    ],
)
def test_a_command_line_a_pipeline_cannot_take_is_refused(tmp_path, capsys, given, said):
    from ucl.pipeline.command import main

    mine = write(tmp_path / "p.yaml", {"root": str(tmp_path / "runs"), "stages": {"a": stage([])}})
    assert main([f"pipeline={mine}", "--list", *given], prog="pipeline.py", doc="pipeline") == 2
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("below", ["", "study"])
def test_a_root_that_is_or_lies_in_a_file_is_refused_before_anything_runs(tmp_path, capsys, below):
    from ucl.pipeline.command import main

    (tmp_path / "notes.txt").write_text("keep me")
    root = tmp_path / "notes.txt" / below if below else tmp_path / "notes.txt"
    mine = write(tmp_path / "p.yaml", {"stages": {"a": stage(["model=logreg"])}})
    assert main([f"pipeline={mine}", "--root", str(root)], prog="pipeline.py", doc="p") == 2
    said = capsys.readouterr().err
    assert f"--root {root}: {tmp_path / 'notes.txt'} is a file, not a folder" in said, said
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_a_root_holding_the_users_files_is_refused_and_left_as_it_was(tmp_path, capsys):
    from ucl.pipeline.command import main

    root = tmp_path / "thesis"
    root.mkdir()
    (root / "draft.tex").write_text("keep me")
    mine = write(tmp_path / "p.yaml", {"stages": {"a": stage(["model=logreg"])}})
    assert main([f"pipeline={mine}", "--root", str(root)], prog="pipeline.py", doc="p") == 2
    said = capsys.readouterr().err
    assert f"--root {root}: holds files the pipeline did not write (draft.tex)" in said, said
    assert [p.name for p in root.iterdir()] == ["draft.tex"]
    (root / "draft.tex").rename(root / "stages.json")  # a file by the record's name alone
    assert main([f"pipeline={mine}", "--root", str(root)], prog="pipeline.py", doc="p") == 2
    said = capsys.readouterr().err
    assert f"{root / 'stages.json'} is not a pipeline's record (stages.json)" in said, said
    assert [p.name for p in root.iterdir()] == ["stages.json"]
    assert (root / "stages.json").read_text() == "keep me"


def test_a_search_space_in_a_sweep_stage_is_left_to_its_sweeper(tmp_path, capsys):
    from ucl.pipeline.command import main

    mine = tmp_path / "search.yaml"
    search = ["model=mlp", "hidden=16,32", "lr=tag(log,interval(0.001,1))", "seed=range(0,2)"]
    write(mine, {"root": str(tmp_path / "runs"), "stages": {"s": stage(search, sweep=True)}})
    assert main([f"pipeline={mine}", "--list"], prog="pipeline.py", doc="pipeline") == 0
    assert "1 of 1 stages to run" in capsys.readouterr().out


def test_a_pipeline_is_named_or_refused(tmp_path):
    proc = pipeline("pipeline=no_such_pipeline", timeout=120)
    assert proc.returncode == 2
    assert "no conf/pipeline/no_such_pipeline.yaml; the pipelines are: problem_set" in proc.stderr
    assert pipeline(timeout=120).stderr.strip().endswith("or pipeline=path/to/file.yaml")
    bare = pipeline("my_study.yaml", timeout=120)  # the pipeline given without pipeline=
    assert bare.returncode == 2
    assert bare.stderr.strip() == (
        "pipeline: my_study.yaml is not key=value: name the pipeline as "
        "pipeline=my_study.yaml; the other arguments are train.py overrides (e.g. seed=1)"
    )


def start_held(tmp_path, steps: int, **popen) -> tuple[subprocess.Popen, Path, Path, Path]:
    """A pipeline command of one logreg stage, `one`, started in the background; returns
    once the stage waits in training (until its marker is removed or a signal comes):
    (the command, the pipeline file, its root, the folder of the marker)."""
    root, hold = tmp_path / "runs", tmp_path / "hold"
    hold.mkdir()
    data = ["dataset.idx_dir=tests/fixtures/mnist", f"dataset.root={tmp_path / 'data'}"]
    one = stage(["model=logreg", f"steps={steps}", f"eval_every={steps // 2}", "threads=1", *data])
    mine = write(tmp_path / "mine.yaml", {"stages": {"one": one}})
    args = [sys.executable, str(REPO / "scripts" / "pipeline.py"), f"pipeline={mine}",
            "--root", str(root)]  # fmt: skip
    env = {**os.environ, "UCL_HOLD": json.dumps({"one": "train"}), "UCL_HOLD_DIR": str(hold)}
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **popen)  # fmt: skip
    while not (hold / "one.train").exists() and proc.poll() is None:
        time.sleep(0.05)
    return proc, mine, root, hold


@pytest.mark.slow  # two pipeline commands, one stage trained
def test_a_second_pipeline_on_a_root_in_use_is_refused_and_the_first_keeps_its_record(tmp_path):
    first, mine, root, hold = start_held(tmp_path, steps=20)
    try:
        second = pipeline(f"pipeline={mine}", "--root", str(root))
        (hold / "one.train").unlink(missing_ok=True)
        out, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert second.returncode == 2, second.stdout + second.stderr
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert f"--root {root} is in use by another pipeline command (PID {first.pid} on " in (
        second.stderr
    )
    assert first.returncode == 0, out + err
    record = json.loads((root / "stages.json").read_text())
    assert record["stages"]["one"]["status"] == "completed"
    assert len(record["invocations"]) == 1
    assert "in use" not in (root / "logs" / "one.log").read_text()


@pytest.mark.slow  # one pipeline stopped in training, then continued
def test_a_stopped_pipeline_ends_its_stages_records_them_and_the_same_command_continues(tmp_path):
    # a terminal signals the command's process group (each stage runs in a session of its own)
    first, mine, root, hold = start_held(
        tmp_path, steps=40, start_new_session=True, preexec_fn=ctrl_c_default
    )
    try:
        os.killpg(first.pid, signal.SIGINT)  # Ctrl-C; the stage writes its checkpoint
        time.sleep(0.05)
        os.killpg(first.pid, signal.SIGHUP)  # meanwhile the terminal is closed
        out, err = first.communicate(timeout=120)
    finally:
        first.kill()
    trainer = json.loads((hold / "one.train").read_text())["pid"]
    assert not Path(f"/proc/{trainer}").exists(), "train.py outlived the pipeline command"
    assert first.returncode == 130, out + err
    assert "Traceback" not in out + err, out + err
    assert out.strip().endswith(
        "interrupted: run the same command again to continue from the checkpoints"
    ), out
    record = json.loads((root / "stages.json").read_text())
    assert record["stages"]["one"]["status"] == "interrupted", record
    again = pipeline(f"pipeline={mine}", "--root", str(root))
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads((root / "one" / "metrics.json").read_text())["metrics"]["steps"] == 40


@pytest.mark.slow  # one pipeline killed in training, then continued
def test_a_pipeline_killed_outright_leaves_no_stage_running_and_the_same_command_continues(
    tmp_path,
):
    # kill -9, or the kernel's out-of-memory killer: the command cannot stop its stages
    first, mine, root, hold = start_held(tmp_path, steps=20)
    trainer = json.loads((hold / "one.train").read_text())["pid"]
    first.kill()
    first.communicate(timeout=60)
    try:
        deadline = time.monotonic() + 30
        while Path(f"/proc/{trainer}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not Path(f"/proc/{trainer}").exists(), "train.py outlived the killed command"
    finally:
        (hold / "one.train").unlink(missing_ok=True)  # a held stage would wait for ever
    record = json.loads((root / "one" / "metrics.json").read_text())
    assert record["status"] == "interrupted" and "SIGTERM" in record["reason"], record
    again = pipeline(f"pipeline={mine}", "--root", str(root))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Traceback" not in again.stdout + again.stderr
    assert json.loads((root / "one" / "metrics.json").read_text())["metrics"]["steps"] == 20
