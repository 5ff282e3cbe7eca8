"""The GAN step bench: its count of the step's product work is torch's own count of the
matrix products one real step runs, and its rows compare the step with that work."""

from __future__ import annotations

import importlib.util
import re

import pytest
import torch
from conftest import FIXTURE_MNIST, REPO
from torch.utils.flop_counter import FlopCounterMode

from problem_set.benchmarks import floors
from ucl.models.gan import Discriminator, Generator, train_discriminator, train_generator


def test_the_counted_work_is_what_a_step_multiplies():
    g_sizes, d_sizes, batch = [16, 32, 48, 784], [784, 24, 8, 1], 20
    G = Generator(16, g_sizes[1:-1], 784, 0.2, True)
    D = Discriminator(784, d_sizes[1:-1], 0.2, 0.3)
    opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    with FlopCounterMode(display=False) as counter:
        fake = G(torch.randn(batch, 16))
        train_discriminator(D, opt_d, torch.rand(batch, 784), fake.detach())
        train_generator(D, opt_g, fake)
    assert set(counter.get_flop_counts()["Global"]) <= {torch.ops.aten.mm, torch.ops.aten.addmm}
    assert floors.step_flops(g_sizes, d_sizes, batch) == counter.get_total_flops()


def test_rows_put_the_step_beside_its_products():
    share, minutes = floors.gan_rows(repeats=1)
    assert 0 < share["value"] < 1.5, share  # the products are most, not all, of a step
    floor = float(re.search(r"floor ([\d.]+) min", minutes["note"]).group(1))
    assert 0 < floor < minutes["value"]


def test_a_table_runs_step_is_put_beside_a_bare_loops(tmp_path, fixture_overrides):
    extra = (*fixture_overrides, "dataset.validation=300")  # the subset has 2000 digits
    (row,) = floors.table_rows(1, tmp_path, extra)
    ours, bare = map(float, re.findall(r"([\d.]+) (?:vs|ms)", row["note"])[:2])
    assert row["value"] == pytest.approx(ours / bare, rel=0.01)  # the note's rounding
    assert 0 < row["value"] < 10  # the same network and batch: a like-for-like pair
    assert (tmp_path / "table0" / "metrics.json").exists()  # through ucl's own run


def test_bad_input_met_in_a_section_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    """MNIST with fewer training digits than a preset holds out (here the fixture's 2000
    against best_mlp's 5000): the bench stops with the refusal's line and status 2."""
    spec = importlib.util.spec_from_file_location("bench", REPO / "scripts" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setenv("UCL_MNIST_DIR", str(FIXTURE_MNIST))
    monkeypatch.setenv("UCL_DATA_ROOT", str(tmp_path / "data"))
    code = bench.main(["--only", "classify", "--repeats", "1", "--out", str(tmp_path / "out")])
    said = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and said[-1].startswith("bench: dataset.validation=5000 must be"), said
