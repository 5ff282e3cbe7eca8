"""The GAN: its losses against hand computations, the two players' steps, and real runs on
the committed MNIST fixture (files written, NaN stop, exact resume)."""

from __future__ import annotations

import json
import logging
import math
import signal

import pytest
import torch
import torch.nn.functional as F
from noise_baseline import noise_judged

import ucl.models.gan as gan_module
from tests.conftest import compose, train
from ucl.config import run_config
from ucl.earlier_runs import load_model
from ucl.errors import ConfigError
from ucl.loop import NonFiniteLoss
from ucl.models.gan import (
    Discriminator,
    Generator,
    averaged,
    discriminator_loss,
    generator_loss,
    train_discriminator,
    train_generator,
)

# a GAN small enough for a few hundred steps in seconds
SMALL = [
    "experiment=gan",
    "model.latent_dim=16",
    "model.generator_widths=[64]",
    "model.discriminator_widths=[64]",
    "task_settings.num_samples=200",
    "batch_size=64",
    "progress=false",
    "threads=1",
]


# -- the losses ---------------------------------------------------------------------------
def test_d_outputting_one_half_everywhere_gives_log_2():
    zeros = torch.zeros(7)  # logit 0: D = 1/2
    assert discriminator_loss(zeros, zeros).item() == pytest.approx(math.log(2))
    assert generator_loss(zeros).item() == pytest.approx(0.5 * math.log(2))


def test_losses_match_the_problem_sets_formulas():
    real = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    fake = torch.tensor([-3.0, 1.5], dtype=torch.float64)
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected_d = -0.5 * torch.log(d_real).mean() - 0.5 * torch.log(1 - d_fake).mean()
    expected_g = -0.5 * torch.log(d_fake).mean()
    assert discriminator_loss(real, fake).item() == pytest.approx(expected_d.item(), rel=1e-12)
    assert generator_loss(fake).item() == pytest.approx(expected_g.item(), rel=1e-12)


def test_losses_are_finite_with_finite_gradients_at_extreme_logits():
    big = torch.tensor([1e4, -1e4, 200.0, -200.0], requires_grad=True)  # float32
    loss_d = discriminator_loss(big, big)
    loss_g = generator_loss(big)
    (loss_d + loss_g).backward()
    assert math.isfinite(loss_d.item()) and math.isfinite(loss_g.item())
    assert torch.isfinite(big.grad).all()
    # softplus(-a) ~ -a for a real logit a << 0 (and softplus(a) ~ a for a fake one >> 0):
    # the reals -1e4 and -200 cost 1/2 * (1e4 + 200) / 4, the fakes 1e4 and 200 as much
    assert loss_d.item() == pytest.approx(0.5 * (1e4 + 200) / 4 * 2, rel=1e-6)


def test_a_perfect_discriminator_has_zero_loss_and_a_fooled_one_a_large_loss():
    pos, neg = torch.full((4,), 50.0), torch.full((4,), -50.0)
    assert discriminator_loss(pos, neg).item() == pytest.approx(0.0, abs=1e-12)
    assert discriminator_loss(neg, pos).item() == pytest.approx(50.0, rel=1e-6)
    assert generator_loss(pos).item() == pytest.approx(0.0, abs=1e-12)


# -- the networks and their steps ------------------------------------------------------
def test_shapes_and_ranges():
    torch.manual_seed(0)
    G, D = Generator(16, [32, 64], 784), Discriminator(784, [64, 32], dropout=0.3)
    z = torch.randn(5, 16)
    x = G(z)
    assert x.shape == (5, 784) and x.min() >= 0 and x.max() <= 1
    assert D(x).shape == (5,)
    assert D(x.view(5, 1, 28, 28)).shape == (5,)  # images are flattened
    assert G.sample(3, torch.Generator().manual_seed(1)).shape == (3, 784)


def test_sampling_is_reproducible_from_a_generator():
    G = Generator(8, [16], 784)
    a = G.sample(4, torch.Generator().manual_seed(3))
    b = G.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_bad_sizes_say_what_was_given():
    with pytest.raises(ValueError, match=r"widths=\[0\]"):
        Generator(8, [0])
    with pytest.raises(ValueError, match="dropout=1.5"):
        Discriminator(784, [8], dropout=1.5)


def test_the_average_moves_parameters_and_running_statistics_by_one_minus_decay():
    torch.manual_seed(0)
    model = Generator(4, [8], 16, batchnorm=True)
    average = averaged(model, decay=0.75)
    model(torch.randn(5, 4))  # one batch: running statistics move
    average.update_parameters(model)  # the first update takes the generator as it is
    for name, value in average.module.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, model.state_dict()[name])
    before = {k: v.clone() for k, v in average.module.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model(torch.randn(5, 4))
    average.update_parameters(model)
    for name, value in average.module.state_dict().items():
        if value.is_floating_point():
            target = model.state_dict()[name]
            torch.testing.assert_close(value, 0.75 * before[name] + 0.25 * target)
    assert not any(p.requires_grad for p in average.parameters())


@pytest.mark.slow  # trains on the fixture
def test_an_averaged_generator_is_what_the_run_saves(tmp_path, monkeypatch, fixture_overrides):
    run_dir = tmp_path / "avg"
    overrides = [
        "steps=40", "classifier=null", "model.average_decay=0.9", "task_settings.num_samples=4"
    ]  # fmt: skip
    _run_in_process(monkeypatch, run_dir, [*fixture_overrides, *overrides])
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)["modules"]
    saved = torch.load(run_dir / "model.pt", weights_only=True)["state_dict"]
    average = {k.removeprefix("module."): v for k, v in state["generator_average"].items()}
    assert average.pop("n_averaged") == 40  # updated after every step
    for name, value in average.items():
        assert torch.equal(saved[f"generator.{name}"], value)
    trained = state["generator"]["net.0.weight"]
    assert not torch.equal(trained, average["net.0.weight"])


@pytest.mark.slow  # trains on the fixture
@pytest.mark.parametrize("loader", ["tensor", "dataloader"])
def test_a_single_example_left_over_by_the_batches_is_skipped_by_batch_norm(
    tmp_path, monkeypatch, fixture_overrides, loader
):
    """65 training digits in batches of 64 leave one: batch norm cannot train on it."""
    run_dir = tmp_path / loader
    overrides = ["dataset.train_subset=65", "epochs=2", "classifier=null",
                 "task_settings.num_samples=100", f"dataset.loader={loader}"]  # fmt: skip
    _run_in_process(monkeypatch, run_dir, [*fixture_overrides, *overrides])
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed"
    assert record["metrics"]["steps"] == 2  # one batch of 64 per epoch


def test_batch_norm_with_batches_of_one_is_refused(monkeypatch, tmp_path, fixture_overrides):
    with pytest.raises(ConfigError, match=r"batch_size=1: .*batch norm .* e\.g\. batch_size=64"):
        _run_in_process(monkeypatch, tmp_path / "one", [*fixture_overrides, "batch_size=1"])
    _run_in_process(monkeypatch, tmp_path / "off", [*fixture_overrides, "batch_size=1", "steps=2",
                    "model.generator_batchnorm=false", "classifier=null"])  # fmt: skip


def test_a_decay_outside_zero_to_one_is_a_config_error(monkeypatch, tmp_path, fixture_overrides):
    with pytest.raises(ConfigError, match="average_decay=1.5"):
        _run_in_process(
            monkeypatch, tmp_path / "bad", [*fixture_overrides, "model.average_decay=1.5"]
        )


def test_a_batchnorm_generator_keeps_shapes_and_range():
    G = Generator(8, [16, 32], 784, batchnorm=True)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in G.modules()) == 2
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 784) and 0 <= x.min() and x.max() <= 1


def _players():
    torch.manual_seed(0)
    G, D = Generator(8, [16], 784), Discriminator(784, [16])
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-2)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-2)
    return G, D, opt_g, opt_d


def _copy(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module):
    return [not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True)]


def test_train_discriminator_moves_d_only_and_reports_its_outputs():
    G, D, _, opt_d = _players()
    real = torch.rand(6, 784)
    fake = G(torch.randn(4, 8))
    g_before, d_before = _copy(G), _copy(D)
    with torch.no_grad():  # what D says before its step (no dropout here)
        d_real, d_fake = D(real), D(fake)
    out = train_discriminator(D, opt_d, real, fake.detach())
    assert all(_changed(d_before, D)) and not any(_changed(g_before, G))
    assert set(out) == {"loss", "D(x)", "D(G(z))"}
    assert out["D(x)"].item() == pytest.approx(torch.sigmoid(d_real).mean().item(), rel=1e-6)
    assert out["D(G(z))"].item() == pytest.approx(torch.sigmoid(d_fake).mean().item(), rel=1e-6)
    assert out["loss"].item() == pytest.approx(discriminator_loss(d_real, d_fake).item(), 1e-6)
    assert not out["loss"].requires_grad


def test_train_generator_moves_g_only_and_leaves_d_trainable():
    G, D, opt_g, _ = _players()
    fake = G(torch.randn(4, 8))
    g_before, d_before = _copy(G), _copy(D)
    out = train_generator(D, opt_g, fake)
    assert all(_changed(g_before, G)) and not any(_changed(d_before, D))
    assert all(p.grad is None for p in D.parameters())  # no gradient computed for D
    assert all(p.requires_grad for p in D.parameters())  # unfrozen afterwards
    # the fakes were drawn before G's step and D did not move: the same loss again
    expected = 0.5 * F.softplus(-D(fake.detach())).mean()
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_the_generator_step_raises_d_of_g_z():
    G, D, opt_g, _ = _players()
    z = torch.randn(64, 8)
    before = torch.sigmoid(D(G(z))).mean().item()
    for _ in range(5):
        train_generator(D, opt_g, G(z))
    after = torch.sigmoid(D(G(z))).mean().item()
    assert after > before


# -- runs on the fixture ---------------------------------------------------------------
@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    """A quick logistic regression on the fixture to judge samples with."""
    from tests.conftest import FIXTURE_MNIST

    root = tmp_path_factory.mktemp("clf")
    data = [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={root / 'data'}"]
    run_config(
        ["experiment=logreg", "steps=60", "progress=false", "threads=1", *data], root / "run"
    )
    return root / "run"


@pytest.mark.slow  # trains on the fixture
def test_a_short_run_writes_every_file(tmp_path, fixture_overrides, classifier_dir):
    run_dir = tmp_path / "gan"
    steps = "steps=192"  # 6 epochs of 32 batches: the run ends on an epoch's last step
    record = run_config(
        [*SMALL, *fixture_overrides, steps, f"classifier={classifier_dir}"], run_dir
    )
    assert record["status"] == "completed" and record["task"] == "gan"
    m = record["metrics"]
    assert m["steps"] == 192
    for prefix in ("samples", "real"):
        assert len(m[f"{prefix}/class_counts"]) == 10
        for key in ("chi2", "chi2_p", "confidence", "score", "frechet", "min_class_share"):
            assert math.isfinite(m[f"{prefix}/{key}"])
    assert sum(m["samples/class_counts"]) == 200 and sum(m["real/class_counts"]) == 250
    # the judge tells digits from noise: real digits spread over the classes, confidently;
    # uniform noise lands in one or two classes (score near 1). 192 steps of a tiny GAN
    # are still far from real digits on this score too
    noise = noise_judged(classifier_dir)
    assert m["real/score"] > 2 * noise["score"], (m["real/score"], noise)
    assert m["real/confidence"] > noise["confidence"], (m["real/confidence"], noise)
    assert m["samples/score"] < m["real/score"]
    # 192 steps of a tiny GAN are far from real digits; real digits are close to real digits
    assert m["real/frechet"] < m["samples/frechet"]
    assert record["judge"]["features"] == "logits"  # logreg has no hidden layer

    figures = {p.name for p in (run_dir / "figures").iterdir()}
    grids = sorted(f for f in figures if f.startswith("samples_epoch_"))
    assert grids == [f"samples_epoch_{e:03d}.png" for e in range(1, 7)]  # the last one too
    assert {"samples.png", "class_histogram.png", "loss_curves.png"} <= figures
    assert {"discriminator_curves.png"} <= figures

    saved = torch.load(run_dir / "samples.pt", weights_only=True)
    assert saved["samples"].shape == (200, 784) and saved["image_shape"] == [1, 28, 28]
    assert 0 <= saved["samples"].min() and saved["samples"].max() <= 1
    model, _ = load_model(run_dir)
    assert model.generator.latent_dim == 16

    header = (run_dir / "history.csv").read_text().splitlines()[0].split(",")
    for tag in ("gan/loss_D", "gan/loss_G", "gan/D(x)", "gan/D(G(z))", "test/D(x)"):
        assert tag in header
    assert list(run_dir.glob("events.out.tfevents.*"))


@pytest.mark.slow  # trains on the fixture
def test_a_missing_classifier_fails_before_training(tmp_path, fixture_overrides):
    run_dir = tmp_path / "gan"
    proc = train(
        [*SMALL, *fixture_overrides, f"classifier={tmp_path / 'nope'}", f"hydra.run.dir={run_dir}"],
        check=False,
    )
    assert proc.returncode != 0
    assert "classifier=" in proc.stderr and "does not exist" in proc.stderr
    assert not (run_dir / "checkpoint.pt").exists()


def _run_in_process(monkeypatch, run_dir, overrides):
    from ucl.run import run

    return run(compose([*SMALL, *overrides]), run_dir)  # outside Hydra: the dir is given


def test_a_loss_turning_nan_stops_the_run_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch, fixture_overrides
):
    calls = {"n": 0}
    real_loss = gan_module.discriminator_loss

    def nan_at_25(real_logits, fake_logits):
        calls["n"] += 1
        loss = real_loss(real_logits, fake_logits)
        return loss * float("nan") if calls["n"] == 25 else loss

    monkeypatch.setattr(gan_module, "discriminator_loss", nan_at_25)
    run_dir = tmp_path / "nan"
    with pytest.raises(NonFiniteLoss, match="gan/loss_D became nan at iteration 25"):
        _run_in_process(
            monkeypatch,
            run_dir,
            [*fixture_overrides, "steps=100", "checkpoint_every=10", "classifier=null"],
        )
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and "NonFiniteLoss" in record["reason"]
    assert "checkpoint" in record["reason"]
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["step"] == 20  # the last one before the NaN
    for module in state["modules"].values():
        assert all(torch.isfinite(t).all() for t in module.values())
    assert not (run_dir / "model.pt").exists() and not (run_dir / "samples.pt").exists()


@pytest.mark.slow  # trains on the fixture
def test_an_absurd_learning_rate_stops_with_a_clear_message(tmp_path, fixture_overrides):
    run_dir = tmp_path / "absurd"
    proc = train(
        [*SMALL, *fixture_overrides, "lr=1e30", "steps=50", f"hydra.run.dir={run_dir}"],
        check=False,
    )
    assert proc.returncode != 0
    assert "became nan at iteration 1" in proc.stderr and "lower learning rate" in proc.stderr
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and "NonFiniteLoss" in record["reason"]
    assert not (run_dir / "model.pt").exists()


@pytest.mark.slow  # trains on the fixture
@pytest.mark.parametrize("average", ["null", "0.9"])
def test_resume_is_exact(tmp_path, monkeypatch, caplog, fixture_overrides, average):
    common = [
        *fixture_overrides,
        "checkpoint_every=0",
        "classifier=null",
        "task_settings.num_samples=8",
        f"model.average_decay={average}",
    ]
    straight, split = tmp_path / "straight", tmp_path / "split"
    _run_in_process(monkeypatch, straight, [*common, "steps=50"])
    with monkeypatch.context() as stop:  # SIGTERM at iteration 20, mid-epoch 1
        from ucl.loop import Loop

        accumulate = Loop._accumulate

        def sigterm_at_20(self, out):
            accumulate(self, out)
            if self.step == 20:
                signal.raise_signal(signal.SIGTERM)

        stop.setattr(Loop, "_accumulate", sigterm_at_20)
        with pytest.raises(SystemExit):
            _run_in_process(monkeypatch, split, [*common, "steps=50"])
    # the resumed run goes on with the config it was started with (its config.yaml), from
    # the checkpoint's iteration: it says so, and takes the 30 steps left, not 50
    steps = []
    with monkeypatch.context() as count, caplog.at_level(logging.INFO, logger="ucl.context"):
        from ucl.loop import Loop

        accumulate = Loop._accumulate

        def counted(self, out):
            steps.append(self.step)
            accumulate(self, out)

        count.setattr(Loop, "_accumulate", counted)
        _run_in_process(monkeypatch, split, [*common, "steps=50", f"resume={split}"])
    assert f"resumed from {split / 'checkpoint.pt'} at iteration 20" in caplog.text
    assert steps == list(range(21, 51))
    a = torch.load(straight / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(split / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa = torch.load(straight / "samples.pt", weights_only=True)["samples"]
    sb = torch.load(split / "samples.pt", weights_only=True)["samples"]
    assert torch.equal(sa, sb)


def test_a_classifier_of_the_wrong_kind_is_a_config_error(tmp_path, monkeypatch, fixture_overrides):
    gan_dir = tmp_path / "gan"
    _run_in_process(monkeypatch, gan_dir, [*fixture_overrides, "steps=5", "classifier=null"])
    with pytest.raises(ConfigError, match="is a 'gan' run"):
        _run_in_process(
            monkeypatch,
            tmp_path / "judged",
            [*fixture_overrides, "steps=5", f"classifier={gan_dir}"],
        )


def test_benchmark_rows_compare_with_the_issues_targets():
    from problem_set.benchmarks.gan import rows

    record = {
        "seconds": {"train": 300.0},
        "metrics": {"samples/min_class_share": 0.05, "samples/score": 8.0, "real/score": 9.6},
        "judge": {"classifier": "runs/best"},
        "env": {"threads": 2},
    }
    time, share, score = rows(record, epochs=50)
    assert time["value"] == pytest.approx(600.0) and time["target"] == 900 and time["unit"] == "s"
    assert time["sense"] == "<=" and time["met"] and share["unit"] == score["unit"] == ""
    assert share["value"] == 0.05 and share["sense"] == ">=" and share["met"]
    assert score["value"] == 8.0 and score["target"] == 8.5 and not score["met"]
    assert "runs/best" in score["note"] and "9.60" in score["note"]
