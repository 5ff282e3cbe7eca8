"""A sweep's figures: a metric against a numeric parameter with the confidence interval as a
band, bars with interval whiskers for one categorical parameter, a heatmap for two, and a
search's optimisation history. Plain numbers in, matplotlib figures out."""

from __future__ import annotations

import math

import numpy as np

# one point: (x, mean, low, high); low/high are None when one seed gives no interval
Point = tuple[float, float, float | None, float | None]


def lines(series: dict[str, list[Point]], xlabel: str, ylabel: str, title: str, log_x: bool):
    """One line per series against x, its 95% interval as a shaded band."""
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in series.items():
        points = sorted(points)
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], marker="o", label=label or None)
        band = [p for p in points if p[2] is not None]
        if band:
            ax.fill_between(
                [p[0] for p in band], [p[2] for p in band], [p[3] for p in band], alpha=0.25
            )
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if any(series):
        ax.legend(title=None)
    fig.tight_layout()
    return fig


def bars(labels: list[str], points: list[Point], xlabel: str, ylabel: str, title: str):
    """One bar per value of a categorical parameter, whiskers at the 95% interval."""
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(labels) + 2), 4))
    means = np.array([p[1] for p in points])
    low = np.array([p[1] - p[2] if p[2] is not None else 0.0 for p in points])
    high = np.array([p[3] - p[1] if p[3] is not None else 0.0 for p in points])
    ax.bar(labels, means, yerr=[low, high], capsize=4, color="tab:blue", alpha=0.8)
    spread = np.concatenate([means - low, means + high])
    pad = max(1e-4, 0.15 * (spread.max() - spread.min()))
    ax.set_ylim(spread.min() - pad, spread.max() + pad)  # the differences, not the zero
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def heatmap(
    rows: list[str],
    cols: list[str],
    means: np.ndarray,
    halves: np.ndarray,
    row_label: str,
    col_label: str,
    title: str,
):
    """means[i, j] of row i, column j, written in each square (± the half-width when
    there is one); NaN squares (no completed job) stay empty."""
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 2.5, 0.6 * len(rows) + 1.8))
    image = ax.imshow(np.ma.masked_invalid(means), cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    finite = means[np.isfinite(means)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(len(rows)):
        for j in range(len(cols)):
            m, h = means[i, j], halves[i, j]
            if not math.isfinite(m):
                continue
            text = f"{m:.4f}" + (f"\n± {h:.4f}" if math.isfinite(h) else "")
            color = "black" if m > middle else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def history(values: list[float | None], ylabel: str, title: str, higher_is_better: bool):
    """A search's trials in order: each trial's value and the best so far."""
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [i for i, v in enumerate(values) if v is not None]
    ys = [v for v in values if v is not None]
    ax.scatter(xs, ys, s=18, label="trial", color="tab:blue")
    pick = max if higher_is_better else min
    best, running = [], None
    for v in ys:
        running = v if running is None else pick(running, v)
        best.append(running)
    ax.step(xs, best, where="post", color="tab:orange", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
