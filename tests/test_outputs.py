"""report.py, chaos.py and bench.py write only into a folder they made (or an empty one) and
remove only what they wrote; a non-empty folder of someone else's is refused in one line."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time

import pytest
from test_sweep_accounting import LRS, SEEDS, job, sweep_dir
from train_process import REPO, ctrl_c_default, run_script, snapshot

from ucl import outdir
from ucl.lifecycle import TEMP_NAME


def script(name, *args, file_size_limit=None):
    return run_script(f"scripts/{name}", list(args), file_size_limit)


def foreign(tmp_path, *subdirs):
    folder = tmp_path / "mine"
    for sub in ("", *subdirs):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / sub / "notes.txt").write_text("the user's own\n")
    (folder / ".env.tmpl").write_text("KEY=\n")
    return folder


def refused(proc, folder, before):
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text and str(folder) in text, text
    assert len(proc.stderr.strip().splitlines()) == 1, text
    assert snapshot(folder) == before


def test_report_refuses_a_foreign_out(tmp_path):
    folder = foreign(tmp_path, "figures")
    before = snapshot(folder)
    refused(script("report.py", "--runs", str(tmp_path / "none"), "--out", str(folder),
                   "--no-pdf"), folder, before)  # fmt: skip


def test_a_mistyped_runs_folder_makes_no_folder_there(tmp_path):
    typo = tmp_path / "runs" / "reproduc"  # the report would go into <runs>/report
    proc = script("report.py", "--runs", str(typo), "--no-pdf")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in text, text
    assert len(proc.stderr.strip().splitlines()) == 1 and f"--runs {typo}" in text, text
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # two report builds
def test_a_report_rebuilt_keeps_what_it_did_not_write(tmp_path):
    out = tmp_path / "report"
    first = script("report.py", "--runs", str(tmp_path / "none"), "--out", str(out), "--no-pdf")
    assert first.returncode == 0, first.stderr
    (out / "figures" / "mine.png").write_bytes(b"the user's figure")
    (out / "figures" / "gone.png").write_bytes(b"a figure of the first build's")
    outdir.record(out, ["figures/gone.png"])  # one this build no longer draws
    again = script("report.py", "--runs", str(tmp_path / "none"), "--out", str(out), "--no-pdf")
    assert again.returncode == 0, again.stderr
    assert (out / "figures" / "mine.png").read_bytes() == b"the user's figure"
    assert not (out / "figures" / "gone.png").exists()


def test_chaos_refuses_a_foreign_out(tmp_path):
    folder = foreign(tmp_path, "reference")
    before = snapshot(folder)
    refused(script("chaos.py", "--out", str(folder), "--kills", "1"), folder, before)


@pytest.mark.slow  # imports torch for nothing but the refusal
def test_bench_refuses_a_foreign_out(tmp_path):
    folder = foreign(tmp_path, "classify")
    before = snapshot(folder)
    refused(script("bench.py", "--out", str(folder), "--only", "classify"), folder, before)


@pytest.mark.slow  # the reproduction's plan is built before the refusal
def test_reproduce_refuses_a_foreign_report_dir_before_any_stage(tmp_path):
    folder = foreign(tmp_path)
    before = snapshot(folder)
    proc = script("reproduce.py", "--smoke", "--root", str(tmp_path / "runs"),
                  "--report-dir", str(folder))  # fmt: skip
    refused(proc, folder, before)
    assert not (tmp_path / "runs").exists()


# a folder of the user's that holds only names a script writes (no marker: the script did
# not make it), given as the script's output folder: the script would delete or write over it
OWN_NAMES = [
    ("report.py", ["--runs", "{tmp}/none", "--no-pdf", "--out"], "figures"),
    ("chaos.py", ["--kills", "1", "--out"], "data"),
    ("bench.py", ["--only", "classify", "--out"], "classify"),
    ("pipeline.py", ["pipeline=problem_set_smoke", "--only", "logreg", "--root"], "logs"),
]


@pytest.mark.parametrize("name,args,entry", OWN_NAMES, ids=[s for s, _, _ in OWN_NAMES])
def test_a_folder_holding_only_names_a_script_writes_is_refused_untouched(
    tmp_path, name, args, entry
):
    folder = tmp_path / "mine"
    (folder / entry).mkdir(parents=True)
    (folder / entry / "notes.png").write_text("the user's own\n")
    before = snapshot(folder)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = script(name, *args, str(folder))
    refused(proc, folder, before)
    assert "did not write" in proc.stderr, proc.stderr


@pytest.mark.slow  # a report build
def test_a_folder_another_script_made_is_refused_untouched(tmp_path):
    report = tmp_path / "report"
    built = script("report.py", "--runs", str(tmp_path / "none"), "--out", str(report),
                   "--no-pdf")  # fmt: skip
    assert built.returncode == 0, built.stderr
    before = snapshot(report)
    proc = script("chaos.py", "--kills", "1", "--out", str(report))
    refused(proc, report, before)
    assert "the report" in proc.stderr, proc.stderr


# a pipeline of one run and one sweep, with a report (a user's file: quick to plan)
SMALL = """
report: report
stages:
  one: {overrides: [model=logreg, steps=10]}
  table: {overrides: [model=mlp, "hidden=8,16", steps=10], sweep: true}
"""


@pytest.mark.parametrize("report_dir", ["", "one", "table/report"])
def test_a_report_dir_that_is_the_root_or_in_a_stage_dir_is_refused_making_nothing(
    tmp_path, report_dir
):
    root, mine = tmp_path / "runs", tmp_path / "small.yaml"
    mine.write_text(SMALL)
    proc = script("pipeline.py", f"pipeline={mine}", "--root", str(root),
                  "--report-dir", str(root / report_dir))  # fmt: skip
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in text, text
    assert len(proc.stderr.strip().splitlines()) == 1 and "--report-dir" in text, text
    assert not root.exists()


@pytest.mark.parametrize("below", ["", "report"])
def test_an_out_that_is_or_lies_in_a_file_is_refused_untouched(tmp_path, below):
    from ucl import outdir

    (tmp_path / "notes.txt").write_text("keep me")
    out = tmp_path / "notes.txt" / below if below else tmp_path / "notes.txt"
    with pytest.raises(outdir.OutputDirError) as refused:
        outdir.claim(out, "report.py", "--out")
    assert str(refused.value).startswith(f"--out {out}: {tmp_path / 'notes.txt'} is a file, ")
    assert (tmp_path / "notes.txt").read_text() == "keep me"


WRITING = [
    ("report.py", "the report", ["--runs", "none", "--no-pdf", "--out"]),
    ("chaos.py", "chaos.py", ["--kills", "1", "--out"]),
]


@pytest.mark.parametrize("name,by,args", WRITING, ids=[w[0] for w in WRITING])
def test_a_folder_another_command_is_writing_is_refused_untouched(tmp_path, name, by, args):
    from ucl import outdir

    folder = tmp_path / "out"
    outdir.claim(folder, by, "--out")  # this process writes it now, as another command would
    before = snapshot(folder)
    proc = script(name, *args, str(folder))
    refused(proc, folder, before)
    kind = by.removeprefix("the ")
    assert f"is in use by another {kind} command (PID {os.getpid()} on " in proc.stderr


@pytest.mark.parametrize("name", ["report.py", "summarize.py"])
def test_a_rebuild_on_a_full_disk_keeps_the_last_build_and_says_so_in_one_line(tmp_path, name):
    out = tmp_path / "out"
    if name == "report.py":
        args = ["--runs", str(tmp_path / "none"), "--out", str(out), "--no-pdf"]
    else:
        args = [str(fake_sweep(tmp_path)), "--out", str(out)]
    assert script(name, *args).returncode == 0
    before = snapshot(out)
    full = script(name, *args, file_size_limit=200)  # each output is larger
    assert full.returncode == 1, full.stderr
    said = full.stderr.strip().splitlines()[-1]
    assert said.startswith(f"{name.split('.')[0]}: File too large: {out}"), full.stderr
    assert "Traceback" not in full.stderr
    assert snapshot(out) == before


INTERRUPTED = [
    ("report.py", lambda tmp: ["--runs", str(tmp / "none"), "--no-pdf", "--out", str(tmp / "o")]),
    ("summarize.py", lambda tmp: [str(fake_sweep(tmp)), "--out", str(tmp / "o")]),
    ("pipeline.py", lambda tmp: ["pipeline=problem_set_smoke", "--root", str(tmp / "o"), "--list"]),
]


def fake_sweep(tmp_path):
    sweep = sweep_dir(tmp_path)
    for lr, seed in itertools.product(LRS, SEEDS):  # every planned job, completed
        job(sweep, f"lr={lr},seed={seed}", "completed", float(lr))
    return sweep


@pytest.mark.parametrize("name,args", INTERRUPTED, ids=[n for n, _ in INTERRUPTED])
def test_ctrl_c_at_any_moment_ends_a_script_without_a_traceback_or_a_temporary_file(
    tmp_path, name, args
):
    command = [sys.executable, str(REPO / "scripts" / name), *args(tmp_path)]
    began = time.monotonic()
    assert subprocess.run(command, cwd=REPO, capture_output=True).returncode == 0
    took = time.monotonic() - began
    for part in (0.2, 0.55, 0.9):  # the imports, the work, the writes
        proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=ctrl_c_default)  # fmt: skip
        time.sleep(part * took)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 130, -signal.SIGINT), (part, out, err)
        assert "Traceback" not in err, (part, err)
        if proc.returncode == 130:
            assert err.strip().endswith("interrupted; what was written before is kept"), err
        assert not [p for p in (tmp_path / "o").rglob("*") if TEMP_NAME.match(p.name)]


def test_a_ctrl_c_a_library_swallowed_still_ends_the_command_as_interrupted(capsys):
    """A Ctrl-C inside Hydra's composition once came back as a refusal of the config it had
    cut short (exit 2): the command says it was interrupted, last, with 130."""
    from ucl.lifecycle import as_command

    def main() -> int:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, its KeyboardInterrupt swallowed
            time.sleep(1)
        except BaseException:  # noqa: BLE001 - as the library did
            pass
        print("pipeline: stage a: 'NoneType' object has no attribute ...", file=sys.stderr)
        return 2

    before = signal.getsignal(signal.SIGINT)
    assert as_command("pipeline", main) == 130
    assert signal.getsignal(signal.SIGINT) == before
    said = capsys.readouterr().err.strip().splitlines()
    assert said[-1] == "pipeline: interrupted; what was written before is kept", said


# a script writing its output when a signal comes: between the temporary file's write and
# its rename over the last build (what summarize.py and report.py do with each file)
WRITE_STOPPED = """
import os, signal, sys, time
from pathlib import Path
from ucl.lifecycle import as_command, atomic_write

def stopped():
    os.kill(os.getpid(), signal.Signals[sys.argv[2]])
    time.sleep(1)  # a handled signal ends it at once; an ignored one lets the write go on

def main():
    atomic_write(Path(sys.argv[1]), "the new build", before_rename=stopped)
    return 0

sys.exit(as_command("summarize", main))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_script_stopped_by_sigterm_or_a_hang_up_keeps_the_last_build_and_no_temporary_file(
    tmp_path, sig
):
    out = tmp_path / "summary.md"
    out.write_text("the last build")
    command = [sys.executable, "-c", WRITE_STOPPED, str(out), sig.name]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 128 + sig, (proc.returncode, proc.stderr)
    assert proc.stderr.strip().splitlines() == [
        "summarize: interrupted; what was written before is kept"
    ]
    assert out.read_text() == "the last build"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.md"]
    if sig == signal.SIGHUP:  # under nohup a hang-up stays ignored: the build completes
        ignored = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60,
                                 preexec_fn=lambda: signal.signal(sig, signal.SIG_IGN))  # fmt: skip
        assert ignored.returncode == 0, ignored.stderr
        assert out.read_text() == "the new build"
