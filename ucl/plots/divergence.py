"""The divergence table as a figure: each measure's value per sample pair, and its time."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np


def divergence_figure(table: list[dict], pairs: list[str], title: str):
    """Left: mean value (± std) of each measure per pair, log scale (non-positive and
    infinite values are written as text instead of drawn). Right: seconds per call."""
    names = [row["measure"] for row in table]
    y = np.arange(len(names))
    size = (11, 0.45 * len(names) + 1.8)
    fig, (ax, ax_t) = plt.subplots(1, 2, figsize=size, sharey=True, layout="constrained")
    height = 0.8 / len(pairs)
    for i, pair in enumerate(pairs):
        means = np.array([row[pair] for row in table], dtype=float)
        stds = np.array([row[f"{pair} std"] for row in table], dtype=float)
        drawable = np.isfinite(means) & (means > 0)
        offset = y + (i - (len(pairs) - 1) / 2) * height
        ax.barh(offset[drawable], means[drawable], height,
                xerr=np.nan_to_num(stds[drawable]), label=pair, alpha=0.85)  # fmt: skip
        # at the axes' left edge, not at a data x: a text far outside the log-scaled bars
        # would widen the axes' bounding box until constrained layout gives up
        for yy, m in zip(offset[~drawable], means[~drawable], strict=True):
            text = f"{m:.3g}" if math.isfinite(m) else str(m)
            ax.text(0.01, yy, text, va="center", fontsize=7, transform=ax.get_yaxis_transform())
    ax.set_xscale("log")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("value (log scale)")
    ax.legend(fontsize=8)
    ax.set_title(title)
    ax_t.barh(y, [row["seconds"] for row in table], color="gray")
    ax_t.set_xscale("log")
    ax_t.set_xlabel("seconds per call (log scale)")
    ax_t.set_title("time")
    return fig
