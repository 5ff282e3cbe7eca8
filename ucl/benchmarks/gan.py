"""The GAN's figures to reach (issue 4), measured by training it: train time per 100 epochs
on this machine, and the class spread and classifier score of 1000 samples.

    python -c "from ucl.benchmarks.gan import run; print(run(epochs=100))"

Needs the full MNIST (UCL_MNIST_DIR). Without `classifier=` it first trains the judge the
issue asks for, the best classifier found (`experiment=best_mlp`, 98.6% test accuracy). The
score depends on the judge: a more accurate, more confident classifier gives real digits and
samples higher scores (real digits: 9.27 with a 10-epoch MLP of 512, 9.63 with best_mlp).
Each run is `python train.py` in a subprocess, so the timings are those of the command a
user types.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# the targets
MAX_MINUTES_PER_100_EPOCHS = 15.0
MIN_CLASS_SHARE = 0.04
MIN_SCORE = 8.5
CLASSIFIER_ARGS = ["experiment=best_mlp"]  # the judge when none is given


def run(
    epochs: int = 100,
    classifier: str | Path | None = None,
    workdir: str | Path | None = None,
    extra: list[str] | None = None,
) -> list[dict]:
    """Train `experiment=gan` for `epochs` (plus a classifier when none is given) under
    `workdir` (a fresh temporary dir by default) and return the benchmark rows
    {"benchmark", "value", "target", "unit", "passed"}. `extra`: more train.py overrides."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="ucl_bench_gan_"))
    if classifier is None:
        classifier = workdir / "classifier"
        _train([*CLASSIFIER_ARGS, f"hydra.run.dir={classifier}"])
    gan_dir = workdir / "gan"
    _train(
        [
            "experiment=gan",
            f"epochs={epochs}",
            f"classifier={Path(classifier).resolve()}",
            f"hydra.run.dir={gan_dir}",
            *(extra or []),
        ]
    )
    record = json.loads((gan_dir / "metrics.json").read_text())
    return rows(record, epochs)


def rows(record: dict, epochs: int) -> list[dict]:
    """Benchmark rows from a finished GAN run's metrics.json record."""
    m = record["metrics"]
    minutes = record["seconds"]["train"] / 60 * 100 / epochs
    return [
        _row("gan: training minutes per 100 epochs", minutes, MAX_MINUTES_PER_100_EPOCHS, "min",
             minutes <= MAX_MINUTES_PER_100_EPOCHS),
        _row("gan: smallest class share of 1000 samples", m["samples/min_class_share"],
             MIN_CLASS_SHARE, "fraction", m["samples/min_class_share"] >= MIN_CLASS_SHARE),
        _row("gan: classifier score of 1000 samples", m["samples/score"], MIN_SCORE, "score",
             m["samples/score"] >= MIN_SCORE),
    ]  # fmt: skip


def _row(name: str, value: float, target: float, unit: str, passed: bool) -> dict:
    return {"benchmark": name, "value": round(float(value), 4), "target": target, "unit": unit,
            "passed": bool(passed)}  # fmt: skip


def _train(args: list[str]) -> None:
    cmd = [sys.executable, str(REPO / "train.py"), "progress=false", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=dict(os.environ), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}\n"
            f"The full MNIST is needed: set UCL_MNIST_DIR to a folder of its IDX files."
        )
