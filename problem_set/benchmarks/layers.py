"""Hand-written layers against the stock ones they replace, timed in one process on the
shapes the presets train: each row is stock time / ucl time (above 1: the hand-written one
pays for itself; below 1 it should go).

    python scripts/bench.py --only layers
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from ucl.models.dropout import Dropout

# (preset, rows x width of the activation dropped, p): best_mlp's hidden layer at batch 128,
# the widest of the width table with the dropout it used to have, and the GAN
# discriminator's first hidden layer, which sees 128 real and 128 generated digits
SHAPES = [("best_mlp", 128, 512, 0.17), ("1024 wide", 128, 1024, 0.5), ("gan", 256, 256, 0.3)]
CALLS = 200  # forward + backward passes per timing


def run(repeats: int = 3) -> list[dict]:
    rows = []
    for preset, n, width, p in SHAPES:
        x = torch.randn(n, width, requires_grad=True)
        stock, ours = nn.Dropout(p).train(), Dropout(p).train()
        times = {"stock": [], "ours": []}
        for _ in range(repeats):  # alternated, so drift hits both
            times["stock"].append(_seconds(stock, x))
            times["ours"].append(_seconds(ours, x))
        stock_s, ours_s = (statistics.median(times[k]) for k in ("stock", "ours"))
        rows.append(
            {
                "benchmark": f"Dropout({p}) on {n}x{width} ({preset}): nn.Dropout / ucl's",
                "value": stock_s / ours_s,
                "unit": "x",
                "target": 1.0,
                "sense": ">=",
                "note": f"{ours_s / CALLS * 1e6:.0f} vs {stock_s / CALLS * 1e6:.0f} us per pass, "
                f"{torch.get_num_threads()} threads",
            }
        )
    return rows


def _seconds(layer: nn.Module, x: torch.Tensor) -> float:
    layer(x).sum().backward()  # warm-up
    started = time.perf_counter()
    for _ in range(CALLS):
        layer(x).sum().backward()
    return time.perf_counter() - started
