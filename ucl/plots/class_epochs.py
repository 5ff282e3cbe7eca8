"""The classes a generator draws, epoch by epoch: a stacked area of class shares."""

from __future__ import annotations

import numpy as np


def class_shares_over_epochs(
    epochs: list[int], shares: np.ndarray, expected: list[float], class_names: list[str], title: str
):
    """Stacked shares (epochs, K) of each class against the epoch, the `expected` shares
    (e.g. MNIST's) as one stacked bar at the right: a band that swells or vanishes is a class
    the generator favours or drops; bands that trade places from epoch to epoch oscillate."""
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

    shares = np.asarray(shares, dtype=float)
    fig, ax = plt.subplots(figsize=(8, 4))
    colours = plt.get_cmap("tab10").colors
    ax.stackplot(
        epochs,
        shares.T,
        labels=class_names,
        colors=[colours[i % 10] for i in range(len(class_names))],
    )
    span = max(epochs[-1] - epochs[0], 1)
    ref = epochs[-1] + 0.08 * span  # MNIST's shares as one stacked bar right of the last epoch
    bottom = 0.0
    for i, share in enumerate(expected):
        ax.bar(ref, share, width=0.06 * span, bottom=bottom, color=colours[i % 10])
        bottom += share
    ax.set_xlim(epochs[0], ref + 0.04 * span)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ticks = [t for t in ax.get_xticks() if epochs[0] <= t <= epochs[-1]]
    ax.set_xticks([*ticks, ref], [*(f"{t:g}" for t in ticks), "MNIST"])
    ax.set_ylim(0, 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("share of the fixed-noise samples")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), title="class")
    fig.tight_layout()
    return fig
