"""What every dataset loader returns and how a run reads it: whole splits as tensors on the
device, with the validation split held out of the training examples for choosing between
runs; the content fingerprint of the files they came from; and the minibatches a run
draws from them."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ucl.errors import ConfigError

TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass
class Splits:
    x_train: torch.Tensor  # (N, D) float32, on the device
    y_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor  # (M, D) float32
    y_test: torch.Tensor  # (M,) int64
    class_names: list[str]
    name: str
    image_shape: tuple[int, ...] | None = None  # (C, H, W) for images, None for feature vectors
    synthetic: bool = False  # True when the data is a generated stand-in for the real thing
    # the torchvision datasets, for the problem set's own DataLoader path (loader=dataloader)
    torch_datasets: dict[str, Any] = field(default_factory=dict, repr=False)
    # held out of the training examples (dataset.validation=N); None when N is 0
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    val_index: np.ndarray | None = field(default=None, repr=False)  # rows of the original train
    # the content of the files the splits came from: {digest, files: name -> digest, folder};
    # metrics.json records it, and a run continues only on the same data
    fingerprint: dict | None = field(default=None, repr=False)

    @property
    def in_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to(self, device: torch.device) -> Splits:
        for name in TENSORS:
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).to(device))
        return self

    def train_eval(self, size: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The training examples the train curves are measured on: a fixed subset of `size`
        rows drawn with `seed` (kept in their order), or the whole split when `size` is None
        or not smaller. Fixed, so every evaluation of a run measures the same rows."""
        total = len(self.y_train)
        if size is None or int(size) >= total:
            return self.x_train, self.y_train
        rows = np.sort(np.random.default_rng(seed).choice(total, int(size), replace=False))
        index = torch.from_numpy(rows).to(self.x_train.device)
        return self.x_train.index_select(0, index), self.y_train.index_select(0, index)

    def hold_out(self, n: int, seed: int) -> Splits:
        """Move `n` training examples, drawn stratified by class with `seed`, into the
        validation split; the rest stay the training split, in their original order."""
        n, total = int(n), len(self.y_train)
        if n == 0:
            return self
        if not 0 < n < total:
            raise ConfigError(
                f"dataset.validation={n} must be between 0 and {total - 1} (the {self.name} "
                f"training examples there are, less one); e.g. dataset.validation="
                f"{min(5000, max(1, total // 10))}, or 0 for no validation split"
            )
        from sklearn.model_selection import train_test_split

        labels = self.y_train.cpu().numpy()
        counts = np.bincount(labels)
        # stratify when every class can give one example to each side (tiny subsets cannot)
        stratify = labels if counts[counts > 0].min() >= 2 and n >= len(counts) else None
        train, val = train_test_split(
            np.arange(total), test_size=n, random_state=int(seed), stratify=stratify
        )
        train, val = np.sort(train), np.sort(val)
        keep, held = torch.from_numpy(train), torch.from_numpy(val)
        self.x_val, self.y_val = self.x_train[held], self.y_train[held]
        self.x_train, self.y_train = self.x_train[keep], self.y_train[keep]
        self.val_index = val
        if "train" in self.torch_datasets:  # the DataLoader path trains on the same rows
            self.torch_datasets["train"] = _rows_of(self.torch_datasets["train"], keep)
        return self


def hold_out_from_config(splits: Splits, cfg_ds) -> Splits:
    """The validation split a dataset config asks for (`validation`, `validation_seed`)."""
    return splits.hold_out(
        int(cfg_ds.get("validation") or 0), int(cfg_ds.get("validation_seed", 0))
    )


def _rows_of(dataset, rows: torch.Tensor):
    """A shallow copy of a torchvision MNIST-style dataset keeping only `rows`."""
    import copy

    kept = copy.copy(dataset)
    kept.data, kept.targets = dataset.data[rows], dataset.targets[rows]
    return kept


# -- content fingerprints of data files: what a run trained on, recorded in its metrics.json
# and compared when the run continues or a sweep is re-run. A file's digest is computed once
# per process while its size and modification time stay the same (the IDX check computes
# its digest in the pass that checks the file anyway).

_DIGESTS: dict[tuple, str] = {}
# dataset name -> the fingerprint of the files a load with this dataset config would read,
# without loading them (None when it cannot tell, e.g. the files are not there yet)
FINGERPRINT_OF_CONFIG: dict[str, Callable] = {}


def fingerprint_of_config(cfg) -> dict | None:
    """The fingerprint of the data files `cfg` names, as a load would record it; for a
    completed run that a re-run skips, so that it is skipped only on the same data."""
    ds = cfg.get("dataset")
    if ds is None or ds.get("name") not in FINGERPRINT_OF_CONFIG:
        return None
    return FINGERPRINT_OF_CONFIG[ds.name](ds)


def file_digest(path: Path) -> str:
    """blake2b of the file's bytes as stored (compressed or not)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def combined_fingerprint(files: dict[str, str], folder: Path | str) -> dict:
    """{digest, files: name -> digest, folder}: what metrics.json records of the data."""
    overall = hashlib.blake2b(digest_size=16)
    for name in sorted(files):
        overall.update(f"{name}={files[name]};".encode())
    return {"digest": overall.hexdigest(), "files": dict(files), "folder": str(folder)}


# -- minibatches as slices of a per-epoch permutation of tensors already on the device. Small
# models on MNIST are bound by the data path: gathering a batch from one resident tensor
# costs microseconds, where a DataLoader pays a PIL round trip per sample.


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
