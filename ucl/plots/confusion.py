"""The confusion matrix of a classifier as a heat map with counts."""

from __future__ import annotations

import numpy as np


def confusion_figure(counts: np.ndarray, class_names: list[str], title: str):
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

    n = len(class_names)
    fig, ax = plt.subplots(figsize=(0.6 * n + 2, 0.6 * n + 1.5))
    # log colour scale: the off-diagonal errors are tiny next to the diagonal
    im = ax.imshow(np.log1p(counts), cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45 if n > 10 else 0, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = np.log1p(counts).max() / 2
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                color = "white" if np.log1p(counts[i, j]) > threshold else "black"
                ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    return fig
