"""Checkpoints and resume: a run stopped (SIGTERM, Ctrl-C, a crash) and resumed ends with
exactly the metrics and history of the same run left alone; corrupt checkpoints and
metrics.json stop a run with an error naming the file, touching nothing."""

from __future__ import annotations

import io
import signal

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn
from train_process import REPO, data_args, metrics, output, snapshot, start, train, wait_for

from ucl import loop
from ucl.data import Batcher
from ucl.errors import CorruptFileError
from ucl.loop import Loop, NonFiniteLoss, RunInterrupted, read_checkpoint
from ucl.plots.training import Tracker

# -- the Loop itself, in this process: stop at chosen iterations, resume, compare ----------
N, BATCH, STEPS = 100, 16, 40  # 7 batches per epoch: epochs end at iterations 7, 14, ...
EVAL_EVERY = 5


class Toy:
    """A tiny classifier with every kind of state a checkpoint must carry: dropout (the
    global RNG), momentum buffers, a cosine schedule, a task generator (input noise)."""

    def __init__(self, run_dir, checkpoint_every=0, hidden=8, stop_at=None, crash_at=None):
        torch.manual_seed(0)
        data = torch.Generator().manual_seed(1)
        self.x = torch.randn(N, 6, generator=data)
        self.y = torch.randint(0, 3, (N,), generator=data)
        self.model = nn.Sequential(
            nn.Linear(6, hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, 3)
        )
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.2, momentum=0.9)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, STEPS)
        self.noise = torch.Generator().manual_seed(2)
        cfg = OmegaConf.create(
            {"task": "toy", "eval_every": EVAL_EVERY, "checkpoint_every": checkpoint_every,
             "progress": False}
        )  # fmt: skip
        self.tracker = Tracker(run_dir)
        self.loop = Loop(
            cfg, self.tracker, Batcher(self.x, self.y, BATCH, seed=3), STEPS,
            modules={"model": self.model}, optimizers={"opt": self.opt},
            schedulers={"lr": sched}, generators={"noise": self.noise},
        )  # fmt: skip
        self.stop_at, self.crash_at = stop_at, crash_at
        self.epochs_ended = []

    def train_step(self, x, y):
        if self.loop.step + 1 == self.stop_at:  # as if SIGTERM came during this iteration
            signal.raise_signal(signal.SIGTERM)
        if self.loop.step + 1 == self.crash_at:
            raise OSError("the machine went away")
        x = x + 0.1 * torch.randn(x.shape, generator=self.noise)
        loss = F.cross_entropy(self.model(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"train/loss": loss.detach()}

    def evaluate(self, step):
        return {"eval/loss": F.cross_entropy(self.model(self.x), self.y).item()}

    def run(self):
        self.loop.run(self.train_step, self.evaluate, lambda e, s: self.epochs_ended.append((e, s)))
        return self

    def params(self):
        return {k: v.clone() for k, v in self.model.state_dict().items()}


@pytest.fixture(scope="module")
def toy_reference(tmp_path_factory):
    return Toy(tmp_path_factory.mktemp("toy") / "run").run()


def assert_same_run(resumed: Toy, reference: Toy, before: Toy | None = None):
    assert resumed.tracker.history == reference.tracker.history
    csv = (resumed.tracker.run_dir / "history.csv").read_text()
    assert csv == (reference.tracker.run_dir / "history.csv").read_text()
    for name, value in reference.params().items():
        assert torch.equal(resumed.params()[name], value), name
    if before is not None:
        assert before.epochs_ended + resumed.epochs_ended == reference.epochs_ended


@pytest.mark.parametrize("stop_at", [1, 5, 7, 13, 14, 39, 40])  # evals at 5k, epochs end at 7k
def test_stopped_and_resumed_equals_uninterrupted(tmp_path, toy_reference, stop_at):
    first = Toy(tmp_path / "run", stop_at=stop_at)
    with pytest.raises(RunInterrupted, match=f"SIGTERM at iteration {stop_at};") as stopped:
        first.run()
    assert stopped.value.signum == signal.SIGTERM
    assert read_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == stop_at
    resumed = Toy(tmp_path / "run", hidden=8)
    assert resumed.loop.resume_if_possible() and resumed.loop.step == stop_at
    assert_same_run(resumed.run(), toy_reference, first)


def test_periodic_checkpoint_survives_a_crash(tmp_path, toy_reference):
    crashed = Toy(tmp_path / "run", checkpoint_every=10, crash_at=27)
    with pytest.raises(OSError, match="went away"):
        crashed.run()
    assert read_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 20
    assert crashed.tracker.history[-1]["step"] > 20  # rows the resumed run must drop
    crashed.tracker.close()  # the worst case: its events past the checkpoint are on disk
    resumed = Toy(tmp_path / "run", checkpoint_every=10)
    assert resumed.loop.resume_if_possible() and resumed.loop.step == 20
    assert_same_run(resumed.run(), toy_reference)
    # TensorBoard hides what the crashed run logged after iteration 20, keeps 20 itself
    resumed.tracker.close()
    toy_reference.tracker.close()
    assert tensorboard_steps(tmp_path / "run", "eval/loss") == [
        row["step"] for row in toy_reference.tracker.history
    ]


def test_checkpoint_holds_the_whole_state(tmp_path):
    toy = Toy(tmp_path / "run", stop_at=9)
    with pytest.raises(RunInterrupted):
        toy.run()
    state = loop.load_pt(tmp_path / "run" / "checkpoint.pt")  # weights_only=True
    assert state["step"] == 9 and [row["step"] for row in state["history"]] == [5]
    assert set(state["modules"]) == {"model"} and state["optimizers"]["opt"]["state"]
    assert state["torch_rng"].dtype == torch.uint8 and "noise" in state["generators"]
    assert state["batcher"]["position"] == 2 and state["batcher"]["epoch"] == 1
    assert state["seconds"]["train"] > 0


def test_checkpoint_of_another_model_is_refused(tmp_path):
    with pytest.raises(RunInterrupted):
        Toy(tmp_path / "run", stop_at=3).run()
    wider = Toy(tmp_path / "run", hidden=9)
    with pytest.raises(loop.CheckpointMismatch, match="checkpoint.pt does not fit"):
        wider.loop.resume_if_possible()


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    loop.save_pt(path, {"step": 1})

    def power_cut(src, dst):
        raise OSError("power cut between write and rename")

    monkeypatch.setattr("ucl.lifecycle.os.replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        loop.save_pt(path, {"step": 2})
    assert loop.load_pt(path) == {"step": 1}  # the old checkpoint, whole


def test_nonfinite_loss_names_the_iteration(tmp_path):
    toy = Toy(tmp_path / "run")
    toy.train_step = lambda x, y: {"train/loss": torch.tensor(float("nan"))}
    with pytest.raises(NonFiniteLoss, match="train/loss became nan at iteration 1; stopped"):
        toy.run()


# -- corrupt, truncated or foreign files: an error naming the file -------------------------
def good_checkpoint_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"w": torch.arange(5000.0), "history": [{"step": 1}]}, buffer)
    return buffer.getvalue()


class _RunsCode:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').touch()",))


def _pickled_code() -> bytes:
    buffer = io.BytesIO()
    torch.save({"w": _RunsCode()}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: b"",
        lambda raw: raw[: len(raw) // 2],
        lambda raw: raw[:-10],
        lambda raw: raw[:2000] + bytes(3000) + raw[5000:],  # zeroed inside the weights
        lambda raw: b"not a checkpoint at all",
        lambda raw: _pickled_code(),  # weights_only=True must refuse to run it
    ],
    ids=["empty", "half", "tail", "zeroed", "text", "code"],
)
def test_damaged_checkpoint_is_an_error_naming_it(tmp_path, monkeypatch, damage):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(damage(good_checkpoint_bytes()))
    with pytest.raises(CorruptFileError, match=f"{path} cannot be read"):
        loop.load_pt(path)
    assert not (tmp_path / "PWNED").exists()


def test_model_file_is_not_a_training_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    loop.save_pt(path, {"state_dict": {}})
    with pytest.raises(CorruptFileError, match="model.pt is not a training checkpoint"):
        read_checkpoint(path)


def compose(overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from ucl.schema import register_schema

    register_schema()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


@pytest.fixture
def failed_run(tmp_path, monkeypatch):
    """A run dir as a NaN leaves it: status failed, a checkpoint from iteration 1."""
    from ucl.run import run

    run_dir = tmp_path / "run"
    args = [*data_args(tmp_path), "model=mlp", "hidden=8", "lr=1e30", "steps=20",
            "checkpoint_every=1"]  # fmt: skip
    with pytest.raises(NonFiniteLoss, match="at iteration 2"):
        run(compose(args), run_dir)
    assert metrics(run_dir)["status"] == "failed"
    return run_dir, [*args, f"resume={run_dir}"]


@pytest.mark.parametrize("name", ["checkpoint.pt", "metrics.json"])
def test_resume_with_a_corrupt_file_touches_nothing(failed_run, name):
    from ucl.run import run

    run_dir, args = failed_run
    path = run_dir / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    before = snapshot(run_dir)
    with pytest.raises(CorruptFileError, match=str(path)):
        run(compose(args))
    assert snapshot(run_dir) == before


# -- the real thing: kill train.py mid-training, resume it, compare --------------------------
# a one-hidden-layer net with dropout (the RNG state matters) and momentum (optimizer state)
REAL = ["model=mlp", "hidden=16", "model.dropout=0.2", "optimizer=momentum", "lr=0.05",
        "steps=800", "eval_every=50", "checkpoint_every=20", "batch_size=32",
        "threads=1"]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    proc = train([*REAL, *data_args(tmp), f"hydra.run.dir={tmp / 'run'}"])
    assert proc.returncode == 0, output(proc)
    return tmp / "run"


@pytest.mark.slow  # two train.py processes
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_killed_and_resumed_run_ends_like_uninterrupted(tmp_path, uninterrupted, sig):
    run_dir, log = tmp_path / "run", tmp_path / "train.log"
    proc = start([*REAL, *data_args(tmp_path), f"hydra.run.dir={run_dir}"], log)
    wait_for(run_dir / "checkpoint.pt", proc, log)  # the first periodic checkpoint
    proc.send_signal(sig)
    assert proc.wait(timeout=600) == 128 + sig, log.read_text()

    record = metrics(run_dir)
    assert record["status"] == "interrupted", log.read_text()
    assert f"{sig.name} at iteration" in record["reason"] and "resume=" in record["reason"]
    stopped_at = read_checkpoint(run_dir / "checkpoint.pt")["step"]
    assert 20 <= stopped_at < 800, "the run ended before the signal: make it longer"

    proc = train([f"resume={run_dir}", *data_args(tmp_path), f"hydra.run.dir={tmp_path / 'log'}"])
    assert proc.returncode == 0, output(proc)
    assert f"at iteration {stopped_at}" in proc.stdout + proc.stderr
    resumed, reference = metrics(run_dir), metrics(uninterrupted)
    assert resumed["status"] == "completed" and resumed["metrics"] == reference["metrics"]
    assert "model.dropout=0.2" in resumed["overrides"]  # the run's own, not resume=...
    assert not any(o.startswith("resume=") for o in resumed["overrides"])
    history = (run_dir / "history.csv").read_text()
    assert history == (uninterrupted / "history.csv").read_text()
    # TensorBoard: what the stopped run logged past its checkpoint is hidden, none twice,
    # and every curve holds the uninterrupted run's values
    curves = tensorboard_curves(uninterrupted)
    assert {"train/loss", "test/error"} <= set(curves)
    assert tensorboard_curves(run_dir) == curves


def tensorboard_events(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return events


def tensorboard_steps(run_dir, tag="test/error"):
    return [e.step for e in tensorboard_events(run_dir).Scalars(tag)]


def tensorboard_curves(run_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar curve TensorBoard reads in run_dir: tag -> [(step, value)]."""
    events = tensorboard_events(run_dir)
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


@pytest.mark.slow  # needs the train.py run of `uninterrupted`
def test_resume_takes_the_runs_own_config(uninterrupted):
    from ucl import rundir
    from ucl.errors import ConfigError

    previous = metrics(uninterrupted)
    given = [f"resume={uninterrupted}", "threads=2", "dataset.root=/elsewhere", "hidden=16"]
    cfg = compose([*given[1:], "model=mlp", f"resume={uninterrupted}"])  # defaults otherwise
    resumed = rundir.resumed_config(cfg, uninterrupted, given, previous)
    assert resumed.lr == 0.05 and resumed.steps == 800 and resumed.model.dropout == 0.2
    assert resumed.optimizer.momentum == 0.9  # optimizer=momentum, not the default sgd
    assert resumed.threads == 2 and resumed.dataset.root == "/elsewhere"  # runtime knobs
    assert resumed.resume == str(uninterrupted)
    for clash, said in [("lr=0.3", "lr=0.05"), ("optimizer=adam", "optimizer='momentum'")]:
        with pytest.raises(ConfigError, match=f"'{clash}' differs from the run's own {said}"):
            rundir.resumed_config(compose([clash]), uninterrupted, [clash], previous)


@pytest.mark.slow  # needs the train.py run of `uninterrupted`
def test_resume_of_a_completed_run_skips_it(uninterrupted):
    from ucl.run import run

    before = snapshot(uninterrupted)
    accuracy = run(compose([f"resume={uninterrupted}"]))
    assert accuracy == metrics(uninterrupted)["metrics"]["test/accuracy"]
    assert snapshot(uninterrupted) == before
