"""Autoencoder and VAE benchmarks: whole runs of the presets against the issues' targets.

    python scripts/bench.py --only autoencoder

(1) the problem set's MNIST autoencoder (5000 steps): training seconds and test MSE per
pixel; (2) the same architecture on the synthetic retina: 2-D latent kNN accuracy on the
test split; (3) with a quickly trained classifier, the mean confidence it gives decoded
interpolants of the VAE and of the autoencoder of (1) on the same test pairs.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from ucl.config import run_config

TARGET_AE_SECONDS = 150.0  # 5000 steps of the problem set's autoencoder, 2-core CPU
TARGET_AE_MSE = 0.045  # test mean squared error per pixel
TARGET_RETINA_KNN = 0.80  # 2-D latent kNN (k=5) accuracy, synthetic retina test split
CLASSIFIER = ["experiment=logreg", "epochs=5"]  # judges the interpolants (seconds to train)
FRESH = ["skip_completed=false", "progress=false"]


def run(repeats: int = 1, workdir: Path | None = None) -> list[dict]:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="ucl-bench-ae-"))
    rows = []

    # (0) the classifier that judges interpolants (both (1) and (3) use it)
    clf = workdir / "classifier"
    run_config([*CLASSIFIER, *FRESH], clf)

    # (1) the MNIST autoencoder: median training time over `repeats` runs
    seconds, records = [], []
    for i in range(max(1, repeats)):
        args = ["experiment=autoencoder_mnist", f"classifier={clf}", *FRESH]
        records.append(run_config(args, workdir / f"autoencoder_mnist{i}"))
        seconds.append(records[-1]["seconds"]["train"])
    ae = records[0]["metrics"]
    rows += [
        _row("autoencoder_mnist 5000 steps: train time", statistics.median(seconds), "<=",
             TARGET_AE_SECONDS, "s"),
        _row("autoencoder_mnist: test MSE per pixel", ae["test/mse"], "<=", TARGET_AE_MSE, ""),
        _row("autoencoder_mnist: 2-D latent kNN accuracy", ae["latent/knn_accuracy"], "", None,
             ""),
    ]  # fmt: skip

    # (2) the synthetic retina
    args = ["experiment=autoencoder_retina", "dataset=retina_synthetic", *FRESH]
    retina = run_config(args, workdir / "autoencoder_retina")["metrics"]
    rows.append(
        _row("autoencoder_retina (synthetic): 2-D latent kNN accuracy",
             retina["latent/knn_accuracy"], ">=", TARGET_RETINA_KNN, "")
    )  # fmt: skip

    # (3) the VAE against the autoencoder of (1), judged by the same classifier
    links = [f"classifier={clf}", f"autoencoder={workdir / 'autoencoder_mnist0'}"]
    vae = run_config(["experiment=vae", *links, *FRESH], workdir / "vae")["metrics"]
    ae_conf = vae["autoencoder/interpolation/confidence"]
    rows += [
        _row("vae: test MSE per pixel", vae["test/mse"], "", None, ""),
        _row("vae: 2-D latent kNN accuracy", vae["latent/knn_accuracy"], "", None, ""),
        _row("autoencoder: interpolant confidence", ae_conf, "", None, ""),
        _row("vae: interpolant confidence", vae["interpolation/confidence"], "", None, ""),
        _row("vae minus autoencoder interpolant confidence",
             vae["interpolation/confidence"] - ae_conf, ">", 0.0, ""),
    ]  # fmt: skip
    return rows


def _row(benchmark: str, value: float, sense: str, target: float | None, unit: str) -> dict:
    met = None
    if target is not None:
        met = {"<=": value <= target, ">=": value >= target, ">": value > target}[sense]
    return {
        "benchmark": benchmark,
        "value": float(value),
        "target": target,
        "sense": sense,
        "unit": unit,
        "met": met,
    }
