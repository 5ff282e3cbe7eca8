"""Minibatches as slices of a per-epoch permutation of tensors already on the device.

Small models on MNIST are bound by the data path: gathering a batch from one resident
tensor costs microseconds, where a DataLoader pays a PIL round trip per sample.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class Batcher:
    """Shuffled minibatches of (x, y); every sample exactly once per epoch.

    The permutation of each epoch is drawn from a seeded generator, so the batch order is
    reproducible, and `state_dict`/`load_state_dict` resume in the middle of an epoch.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)  # CPU: same order on any device
        self.epoch = 0
        self.position = 0  # batches already taken from the current epoch
        self._epoch_start_state = self.generator.get_state()

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The remaining batches of the current epoch; the next call starts a new epoch."""
        self.generator.set_state(self._epoch_start_state)
        n = len(self.x)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.x.device)
        for i in range(self.position, len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            self.position = i + 1
            # index_select: a gather of whole rows, ~4x faster than advanced indexing x[idx]
            yield self.x.index_select(0, idx), self.y.index_select(0, idx)
        self.epoch += 1
        self.position = 0
        self._epoch_start_state = self.generator.get_state()

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "generator": self._epoch_start_state.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._epoch_start_state = state["generator"].clone()


class DataLoaderBatcher(Batcher):
    """The problem set's own data path, for comparison: a torchvision dataset with
    `transforms.ToTensor()` per sample through `torch.utils.data.DataLoader`."""

    def __init__(self, dataset, batch_size: int, device: torch.device, seed: int = 0):
        from torchvision import transforms

        dataset.transform = transforms.ToTensor()
        super().__init__(dataset.targets, dataset.targets, batch_size, seed)
        self.dataset, self.device = dataset, device

    def epoch_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.generator.set_state(self._epoch_start_state)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.batch_size, shuffle=True, generator=self.generator
        )
        for i, (x, y) in enumerate(loader):
            if i < self.position:  # resuming mid-epoch: same order, skip what was done
                continue
            self.position = i + 1
            yield x.flatten(1).to(self.device), y.to(self.device)
        self.epoch += 1
        self.position = 0
        self._epoch_start_state = self.generator.get_state()
