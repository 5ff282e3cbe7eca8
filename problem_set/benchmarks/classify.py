"""Classification benchmarks: whole runs of the presets, and the data path against the
problem set's own (torchvision dataset + ToTensor + DataLoader), in the same process.

    python scripts/bench.py --only classify
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from ucl.config import run_config

TARGET_LOGREG_SECONDS = 20.0  # 100 epochs of the problem set's logistic regression
TARGET_LOGREG_ACCURACY = 0.92
# Per-epoch, the same model's steps through the whole-tensor batcher against the problem
# set's DataLoader path: the steps themselves bound the ratio (docs/performance.md)
TARGET_SPEEDUP = 20.0
TARGET_DATA_SPEEDUP = 50.0  # the data paths alone, no model step
TARGET_MLP_ACCURACY = 0.98
TENSOR_EPOCHS = 5  # one tensor epoch is ~0.1 s: time several and divide
NO_EVAL = ["eval_every=1000000", "checkpoint_every=0"]  # time the training steps only


def run(repeats: int = 3, workdir: Path | None = None) -> list[dict]:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="ucl-bench-"))
    rows = []

    # (1) the problem set's logistic regression, whole run
    record = run_config(["experiment=logreg", "skip_completed=false"], workdir / "logreg")
    seconds, accuracy = record["seconds"]["train"], record["metrics"]["test/accuracy"]
    rows += [
        _row("logreg 100 epochs: train time", seconds, "<=", TARGET_LOGREG_SECONDS, "s"),
        _row("logreg 100 epochs: test accuracy", accuracy, ">=", TARGET_LOGREG_ACCURACY, ""),
    ]

    # (2) seconds per epoch, same model, both data paths, alternated so drift hits both
    tensor, loader = [], []
    for i in range(repeats):
        base = ["experiment=logreg", "skip_completed=false", *NO_EVAL]
        r = run_config([*base, f"epochs={TENSOR_EPOCHS}"], workdir / f"tensor{i}")
        tensor.append(r["seconds"]["train"] / TENSOR_EPOCHS)
        r = run_config([*base, "epochs=1", "dataset.loader=dataloader"], workdir / f"loader{i}")
        loader.append(r["seconds"]["train"])
    t, d = statistics.median(tensor), statistics.median(loader)
    rows += [
        _row("seconds per epoch, whole-tensor batcher", t, "", None, "s"),
        _row("seconds per epoch, DataLoader + ToTensor (problem set)", d, "", None, "s"),
        _row("per-epoch speed-up over the DataLoader path", d / t, ">=", TARGET_SPEEDUP, "x"),
    ]

    # (2b) the data paths alone, no model step: what the whole-tensor batcher saves
    tensor_only, loader_only = data_path_seconds(workdir / "data", repeats)
    rows += [
        _row("data path only: seconds per epoch, whole-tensor batcher", tensor_only, "", None, "s"),
        _row("data path only: seconds per epoch, DataLoader", loader_only, "", None, "s"),
        _row("data path only: speed-up", loader_only / tensor_only, ">=", TARGET_DATA_SPEEDUP, "x"),
    ]

    # (3) the best one-hidden-layer scheme
    record = run_config(["experiment=best_mlp", "skip_completed=false"], workdir / "best_mlp")
    seconds, accuracy = record["seconds"]["train"], record["metrics"]["test/accuracy"]
    rows += [
        _row("best_mlp: test accuracy", accuracy, ">=", TARGET_MLP_ACCURACY, ""),
        _row("best_mlp: train time", seconds, "", None, "s"),
    ]
    return rows


def data_path_seconds(root: Path, repeats: int) -> tuple[float, float]:
    """Median seconds to draw one epoch of MNIST batches of 128 (no model step), through the
    whole-tensor batcher and through the problem set's DataLoader + ToTensor."""
    from ucl.config import compose
    from ucl.data import Batcher, DataLoaderBatcher
    from ucl.keys import DATASETS
    from ucl.schema import load_all

    load_all()
    cfg = compose(["experiment=logreg", f"dataset.root={root}"])
    data = DATASETS.create(cfg.dataset.name, cfg)
    paths = {
        "tensor": Batcher(data.x_train, data.y_train, 128, seed=0),
        "loader": DataLoaderBatcher(data.torch_datasets["train"], 128, torch.device("cpu")),
    }
    seconds: dict[str, list[float]] = {"tensor": [], "loader": []}
    for _ in range(repeats):  # alternated, so that drift hits both
        for name, batcher in paths.items():
            start = time.perf_counter()
            for _batch in batcher.epoch_batches():
                pass
            seconds[name].append(time.perf_counter() - start)
    return statistics.median(seconds["tensor"]), statistics.median(seconds["loader"])


def _row(benchmark: str, value: float, sense: str, target: float | None, unit: str) -> dict:
    met = None
    if target is not None:
        met = value <= target if sense == "<=" else value >= target
    return {
        "benchmark": benchmark,
        "value": value,
        "target": target,
        "sense": sense,
        "unit": unit,
        "met": met,
    }
