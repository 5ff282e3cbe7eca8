"""A run dir holds exactly the experiment it claims: the run's own config record, identity
by the resolved config, one writer at a time, signals honoured to the last write, only
finite checkpoints, atomic files, and `resume=` only on a run dir. Through train.py in a
subprocess wherever Hydra's own writes matter."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from omegaconf import OmegaConf
from train_process import REPO, data_args, metrics, output, snapshot, start, train, wait_for

from ucl import loop, rundir
from ucl.errors import CorruptFileError, RunDirBusy, UnreadableFileError
from ucl.lifecycle import RunLock, atomic_write, remove_stale_temps
from ucl.loop import NonFiniteLoss, RunInterrupted

MLP = ["model=mlp", "hidden=8", "threads=1", "eval_every=10", "checkpoint_every=10"]


def run_args(tmp, run_dir, *extra):
    return [*MLP, *data_args(tmp), f"hydra.run.dir={run_dir}", *extra]


# -- the run's own config record ----------------------------------------------------------
@pytest.mark.slow  # three train.py processes
def test_a_refused_job_rewrites_nothing_and_resume_keeps_the_run_config(tmp_path):
    run_dir = tmp_path / "run"
    first = train(run_args(tmp_path, run_dir, "lr=1e30", "steps=20"))
    assert first.returncode == 1 and "became nan" in first.stderr, output(first)
    assert "Traceback" not in first.stderr and len(first.stderr.strip().splitlines()) == 1
    before = snapshot(run_dir)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["lr"] == 1e30

    other = train(run_args(tmp_path, run_dir, "lr=0.1", "steps=20"))
    assert other.returncode == 2, output(other)
    assert "holds a run of another experiment (lr: 1e+30 there, 0.1 now" in other.stderr
    assert "Traceback" not in other.stderr and len(other.stderr.strip().splitlines()) == 1
    assert snapshot(run_dir) == before  # Hydra wrote nothing there either

    # resume goes on with the run's own config: lr=1e30 again, so NaN again
    resumed = train([f"resume={run_dir}", "threads=1", *data_args(tmp_path)])
    assert resumed.returncode == 1 and "became nan" in resumed.stderr, output(resumed)
    assert metrics(run_dir)["identity"] == rundir.identity_hash(
        yaml.safe_load((run_dir / "config.yaml").read_text())
    )


@pytest.mark.slow
def test_a_changed_default_in_conf_refuses_the_old_job_dir(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    run_dir = tmp_path / "run"
    args = ["--config-path", str(conf), *run_args(tmp_path, run_dir, "steps=10")]
    done = train(args)
    assert done.returncode == 0, output(done)
    before = snapshot(run_dir)
    text = (conf / "config.yaml").read_text().replace("batch_size: 128", "batch_size: 64")
    (conf / "config.yaml").write_text(text)

    again = train(args)
    assert again.returncode == 2, output(again)
    assert "batch_size: 128 there, 64 now" in again.stderr
    assert "already completed" not in again.stdout
    assert snapshot(run_dir) == before


def test_identity_ignores_the_runtime_knobs():
    base = {"lr": 0.1, "device": "cpu", "threads": 1, "dataset": {"name": "mnist", "root": "a"}}
    moved = {**base, "device": "cuda", "threads": 8, "dataset": {"name": "mnist", "root": "b"}}
    assert rundir.identity_hash(base) == rundir.identity_hash(moved)
    assert rundir.identity_hash(base) != rundir.identity_hash({**base, "lr": 0.2})
    assert rundir.differences(rundir.identity(base), rundir.identity({**base, "lr": 0.2})) == [
        ("lr", 0.1, 0.2)
    ]


def test_the_config_record_is_written_once(tmp_path):
    assert rundir.write_config_record(tmp_path, OmegaConf.create({"lr": 0.1}))
    assert not rundir.write_config_record(tmp_path, OmegaConf.create({"lr": 0.2}))
    assert rundir.read_config_record(tmp_path) == {"lr": 0.1}


# -- one writer per run dir ----------------------------------------------------------------
@pytest.mark.slow
def test_a_second_process_on_a_live_run_dir_stops_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    assert train(run_args(tmp_path, run_dir, "steps=10")).returncode == 0
    before = snapshot(run_dir)
    with RunLock(run_dir):  # as a live run would hold it
        busy = train(run_args(tmp_path, run_dir, "steps=10", "skip_completed=false"))
        assert busy.returncode == 2, output(busy)
        assert f"{run_dir} is in use by another run (PID {os.getpid()} on " in busy.stderr
        assert snapshot(run_dir) == {**before, ".lock": snapshot(run_dir)[".lock"]}
    assert snapshot(run_dir) == before  # and no lock file is left


def test_the_lock_frees_itself_when_its_holder_dies(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from ucl.lifecycle import RunLock; "
         f"RunLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(RunDirBusy, match=f"PID {holder.pid} on "):
        RunLock(tmp_path).acquire()
    holder.kill()  # SIGKILL: no clean-up, yet the kernel frees the lock
    holder.wait()
    with RunLock(tmp_path) as lock:
        assert lock.held


@pytest.mark.slow
def test_a_killed_run_says_running_and_is_resumed_to_the_same_result(tmp_path):
    args = ["model=mlp", "hidden=16", "threads=1", "eval_every=20", "checkpoint_every=20",
            "steps=400", "optimizer=momentum", "model.dropout=0.2",
            *data_args(tmp_path)]  # fmt: skip
    reference = train([*args, f"hydra.run.dir={tmp_path / 'reference'}"])
    assert reference.returncode == 0, output(reference)
    run_dir, log = tmp_path / "killed", tmp_path / "killed.log"
    proc = start([*args, f"hydra.run.dir={run_dir}"], log)
    wait_for(run_dir / "checkpoint.pt", proc, log)
    proc.kill()
    proc.wait()
    assert metrics(run_dir)["status"] == "running"  # killed during training, not after
    stopped_at = loop.read_checkpoint(run_dir / "checkpoint.pt")["step"]
    assert 20 <= stopped_at < 400, stopped_at
    again = train([*args, f"hydra.run.dir={run_dir}"])
    assert again.returncode == 0, output(again)
    # it went on from the checkpoint: a run started again from 0 ends with the same numbers
    said = again.stdout + again.stderr
    assert f"resumed from {run_dir / 'checkpoint.pt'} at iteration {stopped_at}" in said, said
    assert metrics(run_dir)["metrics"] == metrics(tmp_path / "reference")["metrics"]
    history = (run_dir / "history.csv").read_text()
    assert history == (tmp_path / "reference" / "history.csv").read_text()
    assert not [p.name for p in run_dir.rglob(".*") if p.is_file()]  # no temp or lock file


# -- resume= takes only a run dir ------------------------------------------------------------
def test_resume_of_a_folder_that_is_not_a_run_dir_is_refused(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "todo.txt").write_text("keep me")
    proc = train(["resume=" + str(folder), "threads=1"])
    assert proc.returncode == 2, output(proc)
    assert "is not a ucl run dir" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["todo.txt"]


def test_resume_of_a_sweep_dir_lists_its_jobs(tmp_path):
    for job in ("hidden=8", "hidden=16"):
        (tmp_path / "sweep" / job).mkdir(parents=True)
        (tmp_path / "sweep" / job / "metrics.json").write_text(json.dumps({"status": "failed"}))
    with pytest.raises(rundir.ConfigError, match="is a sweep dir.*hidden=16, hidden=8"):
        rundir.check_resume_dir(str(tmp_path / "sweep"))


def test_resume_of_a_file_names_the_run_dir_that_holds_it(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text(json.dumps({"status": "interrupted"}))
    (run_dir / "checkpoint.pt").write_bytes(b"weights")
    given = str(run_dir / "checkpoint.pt")
    with pytest.raises(rundir.ConfigError) as refused:
        rundir.check_resume_dir(given)
    assert str(refused.value).startswith(f"resume={given!r} is a file, not a run dir; ")
    assert f"resume={run_dir}, the run dir that holds it" in str(refused.value)
    (tmp_path / "notes.txt").write_text("keep me")  # a file in no run dir: the usual example
    with pytest.raises(rundir.ConfigError, match="is a file, not a run dir; give the dir of a"):
        rundir.check_resume_dir(str(tmp_path / "notes.txt"))


# -- bad input: one line, exit 2, no run dir left behind -----------------------------------
# (lr=0, the same range check as hidden=-3, runs as README's example: tests/test_readme_errors.py)
@pytest.mark.parametrize(
    "bad, says",
    [
        ("hidden=-3", "hidden=-3 must be an integer >= 1 (e.g. hidden=128)"),
        ("eval_every=sometimes", "eval_every='sometimes' must be an integer >= 1 (e.g. "),
        ("optimizer.schedule=linear", "optimizer.schedule='linear' is unknown; use one of "),
        (
            "optimizer.name=adamw",
            "optimizer.name: Unknown optimizer 'adamw'. Did you mean 'adam'? Valid optimizer",
        ),
    ],
)
def test_a_bad_value_is_one_line_and_leaves_no_run_dir(tmp_path, bad, says):
    proc = train(run_args(tmp_path, tmp_path / "runs" / "day" / "run", bad))
    assert proc.returncode == 2, output(proc)
    assert proc.stderr.strip() == f"train.py: {says}" or says in proc.stderr, output(proc)
    assert len(proc.stderr.strip().splitlines()) == 1, output(proc)
    assert not (tmp_path / "runs" / "day" / "run").exists()


@pytest.mark.parametrize(
    "args, says",
    [
        (["activation=elu"], "activation=elu: model=logreg does not read the activation group; "),
        (["model=gan", "activation.output=sigmoid"], "activation.output=sigmoid: model=gan does"),
        (["experiment=divergence_simple", "activation=elu"], "activation=elu: task divergence (no"),
        (["experiment=divergence_mnist", "steps=100"], "steps=100: task divergence trains nothing"),
        (["experiment=divergence_simple", "optimizer=adam"], "optimizer=adam: task divergence"),
    ],
)
def test_a_knob_the_run_does_not_read_is_refused_not_ignored(tmp_path, args, says):
    """logreg has no hidden layer, the GAN its own non-linearities, and a divergence study
    trains nothing: a run that took such a knob would run as if it were not given, under
    another identity."""
    run_dir = tmp_path / "runs" / "day" / "run"
    proc = train([*args, "progress=false", f"hydra.run.dir={run_dir}"])  # refused before data
    assert proc.returncode == 2, output(proc)
    assert proc.stderr.startswith(f"train.py: {says}"), output(proc)
    assert len(proc.stderr.strip().splitlines()) == 1, output(proc)
    assert "; drop it" in proc.stderr and not run_dir.exists()


def test_the_models_said_to_read_the_activation_group_are_those_whose_layers_change():
    from conftest import compose

    from ucl.data import Splits
    from ucl.keys import MODELS
    from ucl.schema import ACTIVATION_READERS, load_all

    load_all()
    x, y = torch.zeros(4, 784), torch.arange(4)
    data = Splits(x, y, x, y, [str(c) for c in range(10)], "mnist", image_shape=(1, 28, 28))
    readers = set()
    for name in MODELS.names():
        built = [
            str(MODELS.create(name, cfg, data))
            for cfg in (compose([f"model={name}", f"activation={a}"]) for a in ("relu", "tanh"))
        ]
        if built[0] != built[1]:
            readers.add(name)
    assert readers == set(ACTIVATION_READERS)


@pytest.mark.parametrize(
    "mine",
    [
        {"multirun.yaml": "my own list of runs\n", "notes.txt": "keep me\n"},
        {"notes.txt": "keep me\n"},  # hydra.sweep.dir=. in a folder of one's own
    ],
    ids=["a file named multirun.yaml", "a folder of ones own"],
)
def test_a_sweep_into_a_folder_of_the_users_is_refused_and_writes_over_nothing(tmp_path, mine):
    folder = tmp_path / "thesis"
    folder.mkdir()
    for name, text in mine.items():
        (folder / name).write_text(text)
    proc = train(["-m", *MLP, *data_args(tmp_path), f"hydra.sweep.dir={folder}", "seed=0,1"])
    assert proc.returncode == 2, output(proc)
    said = f"hydra.sweep.dir={folder}: {folder} holds files ucl did not write ("
    assert proc.stderr.startswith(f"train.py: {said}"), output(proc)
    assert len(proc.stderr.strip().splitlines()) == 1, output(proc)
    assert {p.name: p.read_text() for p in folder.iterdir()} == mine  # as it was, and no more


def test_the_files_that_mark_a_sweep_dir_as_ucls_are_the_ones_ucl_writes():
    from ucl import launchers, outdir

    assert {launchers.LEDGER, outdir.MARKER} <= set(rundir.SWEEP_FILES)


def test_debug_shows_the_traceback(tmp_path):
    proc = train(["--debug", *run_args(tmp_path, tmp_path / "run", "lr=0")])
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "lr=0.0 must be" in proc.stderr


def test_missing_data_names_the_files_and_no_build_path(tmp_path):
    proc = train(["threads=1", f"dataset.root={tmp_path}", f"dataset.idx_dir={tmp_path / 'no'}",
                  "dataset.download=false", f"hydra.run.dir={tmp_path / 'run'}"])  # fmt: skip
    assert proc.returncode == 2, output(proc)
    assert "train-images-idx3-ubyte" in proc.stderr and "dataset.idx_dir=" in proc.stderr
    assert "shared" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


# -- signals are honoured to the end ---------------------------------------------------------
def test_a_signal_during_the_final_evaluation_interrupts_with_a_final_checkpoint(tmp_path):
    from test_resume import STEPS, Toy

    toy = Toy(tmp_path / "run")
    evaluate = toy.evaluate

    def late_evaluate(step):
        if step == STEPS:
            signal.raise_signal(signal.SIGTERM)
        return evaluate(step)

    toy.evaluate = late_evaluate
    with pytest.raises(RunInterrupted, match=f"SIGTERM at iteration {STEPS}"):
        toy.run()
    assert loop.read_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == STEPS


def test_a_signal_in_the_last_epoch_end_hook_is_not_dropped(tmp_path):
    from test_resume import Toy

    toy = Toy(tmp_path / "run", checkpoint_every=0)
    steps = toy.loop.total_steps = 35  # 5 epochs of 7 batches: the last step ends an epoch

    def hook(epoch, step):
        if step == steps:
            signal.raise_signal(signal.SIGTERM)

    with pytest.raises(RunInterrupted, match=f"SIGTERM at iteration {steps}"):
        toy.loop.run(toy.train_step, toy.evaluate, hook)
    assert loop.read_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == steps


def test_a_signal_while_the_final_record_is_written_waits_for_it(tmp_path, monkeypatch):
    from ucl.config import compose
    from ucl.plots.training import Tracker

    cfg = compose([*MLP, *data_args(tmp_path), "steps=5", "progress=false"])
    hparams = Tracker.hparams

    def signalled(self, *args):
        signal.raise_signal(signal.SIGTERM)
        return hparams(self, *args)

    monkeypatch.setattr(Tracker, "hparams", signalled)
    from ucl.run import run

    with pytest.raises(SystemExit) as ended:
        run(cfg, tmp_path / "run")
    assert ended.value.code == 128 + signal.SIGTERM
    assert metrics(tmp_path / "run")["status"] == "completed"


# -- only finite checkpoints ------------------------------------------------------------------
def test_non_finite_weights_are_never_checkpointed(tmp_path):
    from test_resume import Toy

    toy = Toy(tmp_path / "run", checkpoint_every=10)
    step = toy.train_step

    def poisoning(x, y):
        out = step(x, y)
        if toy.loop.step + 1 == 20:  # after its loss: the loss stays finite, the weights not
            with torch.no_grad():
                toy.model[0].weight[0, 0] = float("inf")
        return out

    toy.train_step = poisoning
    with pytest.raises(NonFiniteLoss, match="model.0.weight became non-finite at iteration 20"):
        toy.run()
    kept = loop.read_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert kept["step"] == 10 and loop.non_finite(kept["modules"]) is None


# -- atomic files ---------------------------------------------------------------------------
def test_a_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    atomic_write(tmp_path / "metrics.json", "old")

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ucl.lifecycle.os.replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        atomic_write(tmp_path / "metrics.json", "new")
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
    assert (tmp_path / "metrics.json").read_text() == "old"


def test_temp_files_of_a_killed_writer_are_removed(tmp_path):
    (tmp_path / ".metrics.json.tmp4242").write_text("half")
    (tmp_path / "metrics.json").write_text("{}")
    assert [p.name for p in remove_stale_temps(tmp_path)] == [".metrics.json.tmp4242"]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_unreadable_is_not_called_corrupt(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    loop.save_pt(path, {"step": 1})

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("ucl.loop.zipfile.ZipFile", denied)
    with pytest.raises(UnreadableFileError, match="permission denied.*may be fine"):
        loop.load_pt(path)

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("ucl.loop.zipfile.ZipFile", no_memory)
    with pytest.raises(MemoryError, match="out of memory"):
        loop.load_pt(path)
    monkeypatch.undo()
    path.write_bytes(b"garbage")
    with pytest.raises(CorruptFileError, match="truncated, corrupt"):
        loop.load_pt(path)


@pytest.mark.parametrize(
    "link,said",
    [
        (
            "classifier={tmp}/nowhere",
            "classifier={tmp}/nowhere: run dir {tmp}/nowhere does not exist",
        ),
        ("classifier={tmp}", "classifier={tmp}: {tmp}/model.pt does not exist"),
    ],
)
def test_a_link_to_a_run_that_is_not_there_is_refused_before_anything_is_written(
    tmp_path, link, said
):
    """classifier= naming a missing dir, or a dir with no saved model: one line, exit 2, and
    no run dir (the GAN would otherwise train for half an hour before judging)."""
    run_dir = tmp_path / "gan"
    link, said = link.format(tmp=tmp_path), said.format(tmp=tmp_path)
    args = ["experiment=gan", "steps=5", "threads=1", *data_args(tmp_path), link]
    proc = train([*args, f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 2, output(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], proc.stderr
    assert not run_dir.exists()


def test_a_link_to_a_file_says_it_is_a_file(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"weights")  # the model file itself, not its run dir
    with pytest.raises(rundir.MissingFileError) as refused:
        rundir.saved_model(tmp_path / "model.pt")
    said = str(refused.value)
    assert said == f"{tmp_path / 'model.pt'} is a file, not a run dir; give the dir that holds it"
