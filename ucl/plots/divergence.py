"""The divergence table as a figure: each measure's value per sample pair, and its time."""

from __future__ import annotations

import math

import numpy as np


def divergence_figure(table: list[dict], pairs: list[str], title: str):
    """Left: mean value (± std) of each measure per pair, log scale (non-positive and
    infinite values are written as text instead of drawn). Right: seconds per call."""
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

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


def separation_figure(table: list[dict], pairs: list[str], alpha: float, repeats: int):
    """Left: each estimate's effect size (second pair against the first, 95% CI). Right:
    each test's rejection rate at alpha on both pairs (exact 95% CI), alpha marked."""
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

    estimates = [
        row for row in table if "separation" in row and math.isfinite(row["separation"][0])
    ]
    tests = [row for row in table if "rejected" in row]
    size = (11, 0.4 * max(len(estimates), 2 * len(tests), 3) + 1.8)
    fig, (ax, ax_p) = plt.subplots(1, 2, figsize=size, layout="constrained")
    d = np.array([row["separation"] for row in estimates], dtype=float).reshape(-1, 3)
    y = np.arange(len(estimates))
    ax.errorbar(d[:, 0], y, xerr=[d[:, 0] - d[:, 1], d[:, 2] - d[:, 0]], fmt="o", capsize=3)
    ax.axvline(0, color="gray", lw=0.8)
    ax.set_yticks(y, [row["measure"] for row in estimates])
    ax.invert_yaxis()
    ax.set_xlabel(f"effect size d: ({pairs[1]} - {pairs[0]}) / pooled sd")
    ax.set_title(f"separation over {repeats} repeats (95% CI)")
    y = np.arange(len(tests))
    height = 0.8 / len(pairs)
    for i, pair in enumerate(pairs):
        r = np.array([row["rejected"][i] for row in tests], dtype=float).reshape(-1, 3)
        offset = y + (i - (len(pairs) - 1) / 2) * height
        ax_p.barh(offset, r[:, 0], height, xerr=[r[:, 0] - r[:, 1], r[:, 2] - r[:, 0]],
                  label=pair, alpha=0.85, capsize=2)  # fmt: skip
    ax_p.axvline(alpha, color="red", lw=0.8, ls="--", label=f"alpha = {alpha:g}")
    ax_p.set_xlim(0, 1)
    ax_p.set_yticks(y, [row["measure"] for row in tests])
    ax_p.invert_yaxis()
    ax_p.set_xlabel(f"fraction of repeats rejecting at {alpha:g}")
    ax_p.set_title("false positives (first pair) and power (second)")
    ax_p.legend(fontsize=8)
    return fig
