"""The in-memory batcher: every sample once per epoch, reproducible, resumable mid-epoch."""

from __future__ import annotations

import pytest
import torch

from ucl.data import Batcher


def make(n=1000, batch_size=128, seed=0):
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    return Batcher(x, torch.arange(n), batch_size, seed=seed)


def test_every_sample_exactly_once_per_epoch():
    b = make()
    assert len(b) == 8  # 1000 / 128 rounded up
    for _ in range(3):
        seen = torch.cat([y for _, y in b.epoch_batches()])
        assert sorted(seen.tolist()) == list(range(1000))


def test_x_and_y_stay_paired_and_epochs_differ():
    b = make()
    first = [y.clone() for x, y in b.epoch_batches() if torch.equal(x[:, 0].long(), y)]
    assert len(first) == 8
    second = torch.cat([y for _, y in b.epoch_batches()])
    assert not torch.equal(torch.cat(first), second)


def test_same_seed_same_order_other_seed_other_order():
    a = torch.cat([y for _, y in make(seed=1).epoch_batches()])
    b = torch.cat([y for _, y in make(seed=1).epoch_batches()])
    c = torch.cat([y for _, y in make(seed=2).epoch_batches()])
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_resume_in_the_middle_of_an_epoch_gives_the_same_batches():
    reference = make()
    ref = [y for _ in range(2) for _, y in reference.epoch_batches()]
    first = make()
    it = first.epoch_batches()
    taken = [next(it)[1] for _ in range(3)]
    state = first.state_dict()
    resumed = make(seed=99)  # a different seed: the state must override it
    resumed.load_state_dict(state)
    rest = [y for _, y in resumed.epoch_batches()] + [y for _, y in resumed.epoch_batches()]
    assert all(torch.equal(a, b) for a, b in zip(taken + rest, ref, strict=True))


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        Batcher(torch.zeros(3, 1), torch.zeros(3), 0)
    with pytest.raises(ValueError, match="x has 3 rows but y has 2"):
        Batcher(torch.zeros(3, 1), torch.zeros(2), 1)
