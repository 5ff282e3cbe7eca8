"""Dropout with a cheaper mask on the CPU.

nn.Dropout draws one Bernoulli variable per element, which on the CPU costs ~9 ns each: on
a GAN step that is more time than some of its matrix products. Here every element gets 16
random bits instead, four from each 64-bit draw of the same global generator, and is kept
when they clear a threshold: keep probability 1 - p to within 2^-16, and the kept elements
are scaled by the exact inverse of it, so the expected output is the input (as with
nn.Dropout). On other devices it is F.dropout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 16  # values of a 16-bit chunk


class Dropout(nn.Module):
    """nn.Dropout(p): in training, zero each element with probability p and scale the rest
    by 1 / (1 - p); in eval mode, the identity."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        # the config's checks refuse model.dropout outside [0, 1) too; this check is for
        # the layer built from Python (a test, a notebook), where no config is checked
        if not 0 <= p < 1:
            raise ValueError(f"dropout must be in [0, 1), got dropout={p}; e.g. dropout=0.5")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return x * keep_mask(x.shape, self.p, x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, dtype: torch.dtype) -> torch.Tensor:
    """0 with probability ~p, else 1 / (probability of 1), as a `dtype` tensor of `shape`."""
    n = math.prod(shape)
    words = torch.randint(-(2**63), 2**63 - 1, (-(-n // 4),), dtype=torch.int64)
    chunks = words.view(torch.int16)[:n].view(shape)  # uniform on [-2^15, 2^15)
    dropped = round(p * _LEVELS)  # the lowest `dropped` of the 2^16 values drop
    keep = chunks >= dropped - _LEVELS // 2
    return keep.to(dtype) * (_LEVELS / (_LEVELS - dropped))
