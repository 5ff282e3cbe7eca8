"""The code version a run records: the commit, whether the checkout has uncommitted changes
and a hash of them, "not a git checkout" elsewhere, the packages' versions; the report's
environment section showing them; the reproduction warning when it runs on changed code."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from importlib import metadata

import pytest

from problem_set.report.doc import Table, Text
from problem_set.report.environment import environment
from problem_set.report.sources import Source
from ucl import rundir
from ucl.config import REPO
from ucl.pipeline import command

REPRODUCE = REPO / "scripts" / "reproduce.py"


def git(repo, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo)]
    return subprocess.run([*command, *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path):
    repo = tmp_path / "checkout"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "train.py").write_text("print('hello')\n")
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def test_a_clean_checkout_records_its_commit(checkout):
    state = rundir.git_state(checkout)
    assert state == {"commit": git(checkout, "rev-parse", "HEAD").strip(), "dirty": False}


def test_uncommitted_changes_flip_the_flag_and_the_hash_follows_the_diff(checkout):
    (checkout / "train.py").write_text("print('changed')\n")
    first = rundir.git_state(checkout)
    assert first["dirty"] is True and len(first["diff"]) == 12
    assert first["commit"] == git(checkout, "rev-parse", "HEAD").strip()
    assert rundir.git_state(checkout) == first  # the same diff, the same hash
    (checkout / "train.py").write_text("print('changed again')\n")
    second = rundir.git_state(checkout)
    assert second["dirty"] is True and second["diff"] != first["diff"]
    (checkout / "train.py").write_text("print('hello')\n")  # back to the commit
    assert rundir.git_state(checkout)["dirty"] is False


def test_a_staged_change_counts_too(checkout):
    (checkout / "new.py").write_text("x = 1\n")
    git(checkout, "add", "new.py")
    assert rundir.git_state(checkout)["dirty"] is True


def test_an_untracked_file_counts_and_its_content_enters_the_hash(checkout):
    (checkout / "module.py").write_text("x = 1\n")
    first = rundir.git_state(checkout)
    assert first["dirty"] is True
    (checkout / "module.py").write_text("x = 2\n")
    assert rundir.git_state(checkout)["diff"] != first["diff"]
    (checkout / ".gitignore").write_text("module.py\n.gitignore\n")  # ignored: not a change
    assert rundir.git_state(checkout)["dirty"] is False


def test_outside_a_checkout_it_says_so(tmp_path):
    assert rundir.git_state(tmp_path) == {"git": "not a git checkout"}


def test_no_git_binary_or_a_timeout_is_a_plain_value(checkout, monkeypatch):
    def missing(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(rundir.subprocess, "run", missing)
    assert rundir.git_state(checkout) == {"git": "git is not installed"}

    def slow(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs.get("timeout"))

    monkeypatch.setattr(rundir.subprocess, "run", slow)
    assert rundir.git_state(checkout)["git"].startswith("git did not answer within")


def test_code_version_is_cached_and_names_the_packages():
    first = rundir.code_version()
    assert rundir.code_version() is first  # computed once per process
    assert first["packages"]["torch"] == metadata.version("torch")
    assert first["packages"]["numpy"] == metadata.version("numpy")
    assert set(first["packages"]) <= set(rundir.PACKAGES)


def test_this_checkout_is_the_repo_the_code_lives_in():
    assert rundir.REPO == REPO


# -- the report -----------------------------------------------------------------------------
def write_run(path, code):
    path.mkdir(parents=True)
    record = {"status": "completed", "env": {"torch": "2"}, "code": code, "metrics": {}}
    (path / "metrics.json").write_text(json.dumps(record))


def test_the_report_shows_the_code_versions_and_the_packages(tmp_path):
    packages = {"torch": "9.9.9", "numpy": "1.0"}
    write_run(tmp_path / "a", {"commit": "a" * 40, "dirty": False, "packages": packages})
    write_run(tmp_path / "b" / "0", {"commit": "a" * 40, "dirty": False, "packages": packages})
    dirty = {"commit": "b" * 40, "dirty": True, "diff": "3f2a9c1b2d4e", "packages": packages}
    write_run(tmp_path / "b" / "1", dirty)
    write_run(tmp_path / "c", {"git": "not a git checkout", "packages": packages})
    blocks = environment(Source(tmp_path))
    code = next(b for b in blocks if isinstance(b, Table) and b.header[0] == "commit")
    assert sorted(code.rows) == sorted(
        [["aaaaaaaaaaaa", "none", 2], ["bbbbbbbbbbbb", "diff 3f2a9c1b2d4e", 1],
         ["not a git checkout", "", 1]]
    )  # fmt: skip
    text = " ".join(b.text for b in blocks if isinstance(b, Text))
    assert "3 code versions" in text
    pins = next(b for b in blocks if isinstance(b, Table) and b.header[0] == "package")
    assert ["torch", "9.9.9"] in [[row[0], row[-1]] for row in pins.rows]


def test_the_report_without_code_records_says_so(tmp_path):
    write_run(tmp_path / "a", None)
    text = " ".join(b.text for b in environment(Source(tmp_path)) if isinstance(b, Text))
    assert "no code version" in text


# -- the reproduction -----------------------------------------------------------------------
def reproduce(tmp_path, monkeypatch, capsys, code) -> str:
    """scripts/reproduce.py's output up to its runner (a stand-in that runs nothing)."""
    spec = importlib.util.spec_from_file_location("reproduce_script", REPRODUCE)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    class NoRunner:
        def __init__(self, *args, **kwargs):
            pass

        def run(self):
            return True

    monkeypatch.setattr(command, "Runner", NoRunner)
    monkeypatch.setattr(rundir, "code_version", lambda: code)
    args = ["--only", "best_mlp", "--no-report", "--jobs", "1", "--root", str(tmp_path)]
    assert script.run(args) == 0
    return capsys.readouterr().out


def test_the_reproduction_warns_when_the_checkout_has_uncommitted_changes(
    tmp_path, monkeypatch, capsys
):
    code = {"commit": "a" * 40, "dirty": True, "diff": "3f2a9c1b2d4e", "packages": {}}
    out = reproduce(tmp_path, monkeypatch, capsys, code)
    assert out.startswith("reproduce: warning: the checkout has uncommitted changes")
    assert "3f2a9c1b2d4e" in out.splitlines()[0]


def test_the_reproduction_is_quiet_on_a_clean_checkout(tmp_path, monkeypatch, capsys):
    code = {"commit": "a" * 40, "dirty": False, "packages": {}}
    assert "uncommitted" not in reproduce(tmp_path, monkeypatch, capsys, code)
