"""What every dataset loader returns: whole splits as tensors on the device."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


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

    @property
    def in_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to(self, device: torch.device) -> Splits:
        for name in ("x_train", "y_train", "x_test", "y_test"):
            setattr(self, name, getattr(self, name).to(device))
        return self
