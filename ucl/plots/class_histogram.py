"""Class shares of sets of images (as a classifier labels them) beside the expected ones."""

from __future__ import annotations

import numpy as np


def class_histogram(
    counts: dict[str, list[int]],
    expected: list[float],
    class_names: list[str],
    title: str,
):
    """Grouped bars: the share of each class in every labelled set of `counts`
    (e.g. {"GAN samples": [...], "real test digits": [...]}), and the `expected`
    frequencies (e.g. MNIST's training labels) as a line of markers."""
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

    k = len(class_names)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * k + 2), 4))
    width = 0.8 / max(len(counts), 1)
    positions = np.arange(k)
    for i, (label, c) in enumerate(counts.items()):
        c = np.asarray(c, dtype=float)
        offset = (i - (len(counts) - 1) / 2) * width
        ax.bar(positions + offset, c / c.sum(), width, label=f"{label} (n={int(c.sum())})")
    ax.plot(positions, expected, "k_", markersize=22, markeredgewidth=2, label="expected")
    tallest = max([max(np.asarray(c) / max(sum(c), 1)) for c in counts.values()] + list(expected))
    ax.set_ylim(0, 1.3 * tallest)  # head room for the legend above the bars
    ax.set_xticks(positions, class_names)
    ax.set_xlabel("class (classifier's argmax)")
    ax.set_ylabel("share")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", ncol=len(counts) + 1)
    fig.tight_layout()
    return fig
