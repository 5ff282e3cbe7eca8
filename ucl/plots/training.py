"""What a training run shows, and where: its figures (curves against the iteration, a
classifier's confusion matrix, the class shares of a generator's samples against the
expected ones and epoch by epoch, image grids), and the `Tracker` that writes them with the
run's scalars as it goes: TensorBoard events (scalars, images, hparams), history.csv and
figures/*.png. metrics.json, the record scripts read, is ucl/lifecycle.py's."""

from __future__ import annotations

import csv
import io
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ucl.lifecycle import atomic_write, is_number


def png(fig) -> bytes:
    """A matplotlib figure as PNG bytes, at the size of every figure ucl saves."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return buffer.getvalue()


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


def confusion_figure(counts: np.ndarray, class_names: list[str], title: str):
    """The confusion matrix of a classifier as a heat map with counts."""
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


# -- image grids: flat rows back into images, laid out by torchvision's make_grid
PAD = 2  # pixels between images


def as_images(x: torch.Tensor, image_shape: tuple[int, ...]) -> torch.Tensor:
    """Flat rows (N, C*H*W) -> images (N, C, H, W) in [0, 1], on the CPU."""
    return x.detach().cpu().reshape(len(x), *image_shape).clamp(0, 1)


def pairs_grid(
    originals: torch.Tensor, reconstructions: torch.Tensor, image_shape: tuple[int, ...]
) -> torch.Tensor:
    """Each original beside its reconstruction: row k holds (original k, reconstruction k).
    (C, H', W') for save_image."""
    a, b = as_images(originals, image_shape), as_images(reconstructions, image_shape)
    interleaved = torch.stack([a, b], dim=1).flatten(0, 1)  # (2N, C, H, W): o0 r0 o1 r1 ...
    from torchvision.utils import make_grid  # here: importing torchvision costs seconds

    return make_grid(interleaved, nrow=2, padding=PAD)


def rows_grid(rows: torch.Tensor, image_shape: tuple[int, ...]) -> torch.Tensor:
    """A (R, K, C*H*W) stack of R strips of K images -> one grid, a strip per row."""
    r, k = rows.shape[:2]
    from torchvision.utils import make_grid  # here: importing torchvision costs seconds

    return make_grid(as_images(rows.reshape(r * k, -1), image_shape), nrow=k, padding=PAD)


# What a run shows as it goes: TensorBoard events (scalars, images, hparams), history.csv
# and figures/*.png. metrics.json, the record scripts read, is ucl/lifecycle.py's.

HPARAMS = "hparams"  # tag prefix of the final metrics the HParams tab shows


class Tracker:
    """Writes one run's outputs. `log` a dict of scalars against the iteration, `figure`
    a matplotlib figure or `image` a tensor, `hparams` at the end, then `close`."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.figures_dir = self.run_dir / "figures"
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        self.writer = self._writer()
        self.history: list[dict[str, float]] = []

    def _writer(self, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.run_dir), purge_step=purge_step)

    def restart_at(self, step: int, history: list[dict[str, float]]) -> None:
        """Resuming: TensorBoard drops what was logged after `step`, history.csv too."""
        self.writer.close()
        self.writer = self._writer(purge_step=step)
        self.history = list(history)
        self.write_history()

    # -- scalars ------------------------------------------------------------------
    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step}
        for tag, value in metrics.items():
            value = float(value)
            self.writer.add_scalar(tag, value, step)
            row[tag] = value
        self.history.append(row)
        self.write_history()

    def write_history(self) -> None:
        columns = list(dict.fromkeys(k for row in self.history for k in row))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write(self.run_dir / "history.csv", out.getvalue())

    # -- pictures -----------------------------------------------------------------
    def figure(self, name: str, fig, step: int = 0) -> Path:
        """Save a matplotlib figure as figures/<name>.png and show it in TensorBoard."""
        import matplotlib.pyplot as plt

        encoded = png(fig)
        plt.close(fig)
        return self._png(name, encoded, step, name)

    def image(self, name: str, grid: torch.Tensor, step: int = 0, tag: str | None = None) -> Path:
        """Save a (C, H, W) image in [0, 1] as figures/<name>.png and in TensorBoard (under
        `tag`, default the name: one tag for a series of images against the step)."""
        from torchvision.utils import save_image

        buffer = io.BytesIO()
        save_image(grid, buffer, format="png")
        return self._png(name, buffer.getvalue(), step, tag or name)

    def _png(self, name: str, png: bytes, step: int, tag: str) -> Path:
        """figures/<name>.png, and the same bytes in TensorBoard's Images tab: drawn and
        encoded once (add_figure would draw the figure a second time, at another size)."""
        from torch.utils.tensorboard.summary import Summary

        path = self.figures_dir / f"{name}.png"
        atomic_write(path, png)
        width, height = struct.unpack(">II", png[16:24])  # the PNG header's IHDR chunk
        colours = {0: 1, 2: 3, 4: 2, 6: 4}.get(png[25], 3)  # its colour type -> channels
        image = Summary.Image(
            height=height, width=width, colorspace=colours, encoded_image_string=png
        )
        self.writer.file_writer.add_summary(
            Summary(value=[Summary.Value(tag=tag, image=image)]), step
        )
        return path

    # -- the end ------------------------------------------------------------------
    def hparams(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        """HParams for TensorBoard, written into this run's own event file (add_hparams
        would make a separate sub-run, which the HParams tab cannot join to the curves).
        The final metrics go under their own tags, `hparams/test/accuracy`, ...: written at
        step 0 under the curves' tags they would make TensorBoard drop the whole curve (a
        step that goes backwards reads as a restart)."""
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        from ucl.keys import swept_keys

        clean = {k: _hparam_value(v) for k, v in hparams.items()}
        scalars = {
            f"{HPARAMS}/{k}": float(v) for k, v in metrics.items() if is_number(v, finite=True)
        }
        experiment, start, end = hparams_summary(clean, scalars)
        # the HParams tab shows five hparams at first, those that differ first: a sweep job
        # marks its swept keys, which TensorBoard does not work out from one run's summary
        _mark_differs(experiment, swept_keys(self.run_dir.parent / "multirun.yaml"))
        for summary in (experiment, start, end):
            self.writer.file_writer.add_summary(summary)
        for k, v in scalars.items():  # the metric values the HParams tab shows
            self.writer.add_scalar(k, v)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def _mark_differs(experiment, keys: set[str]) -> None:
    """Set `differs` on the hparams named in `keys` in an experiment summary, in place."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    plugin_data = experiment.value[0].metadata.plugin_data
    data = HParamsPluginData.FromString(plugin_data.content)
    for info in data.experiment.hparam_infos:
        info.differs = info.name in keys
    plugin_data.content = data.SerializeToString()


def _hparam_value(v):
    if isinstance(v, (bool, int, float, str)):
        return v
    return str(v)
