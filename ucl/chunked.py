"""A model over a whole split, a chunk of rows at a time and without gradients: evaluation
sizes are bounded by `eval_batch_size`, not by the split."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch


def chunks(x: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    for i in range(0, len(x), size):
        yield x[i : i + size]


def map_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int):
    """fn over x's rows, chunk by chunk, concatenated."""
    with torch.no_grad():
        return torch.cat([fn(xb) for xb in chunks(x, size)])


def mse_per_element(model_out: Callable, x: torch.Tensor, size: int) -> float:
    """Mean squared error per pixel/feature of model_out(x) against x."""
    total = 0.0
    with torch.no_grad():
        for xb in chunks(x, size):
            total += torch.sum((model_out(xb) - xb.flatten(1)) ** 2).item()
    return total / x[0].numel() / len(x)
