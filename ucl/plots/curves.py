"""Curves against the iteration, from a run's history rows."""

from __future__ import annotations


def curves(
    history: list[dict],
    tags: list[str],
    title: str,
    ylabel: str,
    log_y: bool = False,
    train_label: str = "train",
):
    """One line per tag present in the history, against the iteration; `train_label` names
    the train/... points in the legend (e.g. 'train (10000 of 55000)' for a subset's)."""
    import matplotlib.pyplot as plt  # here: pyplot costs most of a second to import

    fig, ax = plt.subplots(figsize=(6, 4))
    for tag in tags:
        points = [(row["step"], row[tag]) for row in history if tag in row]
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(
                steps,
                values,
                label=f"{train_label}/{tag[6:]}" if tag.startswith("train/") else tag,
                marker="." if len(points) < 30 else None,
            )
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
