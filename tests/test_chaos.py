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


def _script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "script,given",
    [("chaos", ["--kills", "-1"]), ("chaos", ["--jobs", "0"]), ("chaos", ["--steps", "0"]),
     ("cluster_chaos", ["--signals", "-1"]), ("cluster_chaos", ["--jobs", "0"]),
     ("cluster_chaos", ["--steps", "0"]), ("cluster_chaos", ["--limit-steps", "0"])],
)  # fmt: skip
def test_a_count_below_one_is_refused_naming_it_before_anything_runs(tmp_path, capsys, script,
                                                                     given):  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        _script(script).main([*given, "--out", str(tmp_path / "out")])
    assert stop.value.code == 2
    assert f"{given[0]} {given[1]}: give 1 or more" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("given", [["--time-limit"], ["--retypes", "2"]])
def test_cluster_chaos_needs_no_signal_round_when_another_case_is_asked(tmp_path, monkeypatch,
                                                                        given):  # fmt: skip
    """`--signals 0` with the time-limit or the retype case (docs/performance.md's commands)
    is taken: the reference sweep starts (here it fails at once, and nothing else runs)."""
    cluster_chaos = _script("cluster_chaos")
    monkeypatch.setattr(cluster_chaos, "sweep", lambda *args, **kwargs: None)
    monkeypatch.setattr(cluster_chaos, "wait", lambda proc, deadline_s=0: 1)
    with pytest.raises(SystemExit, match="the reference sweep failed"):
        cluster_chaos.main(["--signals", "0", *given, "--out", str(tmp_path / "out")])


def test_cluster_chaos_refuses_an_out_that_is_a_file_or_holds_the_users_files(tmp_path, capsys):
    cluster_chaos = _script("cluster_chaos")
    (tmp_path / "afile").write_text("mine\n")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine\n")
    for out, said in [("afile", "is a file, not a folder"), ("mine", "holds files")]:
        assert cluster_chaos.main(["--out", str(tmp_path / out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"cluster_chaos: --out {tmp_path / out}: ") and said in err, err
        assert "\n" not in err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine\n"


def test_cluster_chaos_clears_only_what_it_wrote(tmp_path, monkeypatch):
    cluster_chaos = _script("cluster_chaos")
    out = tmp_path / "out"
    monkeypatch.setattr(cluster_chaos, "sweep", lambda args, sweep_dir, env=None: sweep_dir)
    monkeypatch.setattr(cluster_chaos, "wait", lambda proc, deadline_s=0: 1)  # reference fails
    args = cluster_chaos.argparse.Namespace(out=str(out), seed=0, jobs=1, steps=10, signals=1,
                                            time_limit=False)  # fmt: skip
    with pytest.raises(SystemExit, match="the reference sweep failed"):
        cluster_chaos.chaos(args)
    (out / "reference").mkdir()  # as the sweep makes it
    (out / "notes.txt").write_text("added after the run\n")
    with pytest.raises(SystemExit, match="the reference sweep failed"):
        cluster_chaos.chaos(args)
    assert (out / "notes.txt").read_text() == "added after the run\n"
    assert not (out / "reference").exists()  # the last run's: cleared
