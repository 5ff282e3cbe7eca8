"""What a run shows as it goes: TensorBoard events (scalars, images, hparams), history.csv
and figures/*.png. metrics.json, the record scripts read, is ucl/lifecycle.py's."""

from __future__ import annotations

import csv
import io
import struct
from pathlib import Path
from typing import Any

import torch

from ucl.lifecycle import atomic_write, is_number

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

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        return self._png(name, buffer.getvalue(), step, name)

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
