"""Latent-space figures: the 2-D embedding coloured by class (with interpolation paths on
it) and, for feature data without images, reconstructions drawn as feature profiles."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np


def class_colours(num_classes: int):
    """One distinct colour per class: tab10 up to 10 classes, tab20 up to 20."""
    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(num_classes)]


def embedding_figure(
    z: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    title: str,
    paths: Sequence[dict] = (),
    axis_labels: tuple[str, str] = ("$z_1$", "$z_2$"),
):
    """Scatter of 2-D codes z (N, 2) coloured by label y (N,), with a legend.

    paths: interpolations to draw on top, each {"points": (n, 2) array, "label": str,
    "classes": (class of the first end, class of the last end)}; the points are joined by
    a black line, the ends marked with squares in their class colours.
    """
    colours = class_colours(len(names))
    fig, ax = plt.subplots(figsize=(7.5, 6))
    for c, name in enumerate(names):
        mask = y == c
        if mask.any():
            ax.scatter(*z[mask].T, s=6, alpha=0.6, color=colours[c], label=f"{name} ({mask.sum()})")
    for path in paths:
        p = np.asarray(path["points"])
        ax.plot(*p.T, "-o", ms=2.5, lw=1.2, color="k", zorder=3)
        for end, c in zip(p[[0, -1]], path.get("classes", (None, None)), strict=True):
            face = colours[c] if c is not None else "w"
            ax.plot(*end, "s", ms=8, mfc=face, mec="k", mew=1.2, zorder=4)
        ax.annotate(
            path["label"], p[len(p) // 2], xytext=(5, 5), textcoords="offset points",
            fontsize=8, zorder=5, bbox={"boxstyle": "round,pad=0.2", "fc": "w", "alpha": 0.8},
        )  # fmt: skip
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title)
    legend = ax.legend(
        loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, markerscale=2.5, frameon=False
    )
    legend.set_title("class (points)", prop={"size": 8})
    fig.tight_layout()
    return fig


def feature_reconstructions_figure(
    originals: np.ndarray, reconstructions: np.ndarray, names: Sequence[str], title: str
):
    """For feature vectors (no image): one panel per row, the original (N, D) and its
    reconstruction drawn as profiles over the feature index."""
    n = len(originals)
    cols = min(5, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.2 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        ax.plot(originals[k], lw=0.8, label="original")
        ax.plot(reconstructions[k], lw=0.8, label="reconstruction")
        ax.set_title(str(names[k]), fontsize=8)
        ax.tick_params(labelsize=6)
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(title)
    fig.supxlabel("feature (principal component)", fontsize=8)
    fig.tight_layout()
    return fig
