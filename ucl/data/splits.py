"""What every dataset loader returns: whole splits as tensors on the device, and the
validation split held out of the training examples for choosing between runs."""

from __future__ import annotations

from dataclasses import dataclass, field
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
