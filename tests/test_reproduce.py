"""`scripts/reproduce.py --smoke` end to end: every stage on the committed MNIST subset and
a small synthetic retina, then the report with its sections, tables and figures; a second
invocation finds everything completed and trains nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import SMOKE_GROUP
from conftest import reproduce_smoke as reproduce

from problem_set.report.questions import QUESTIONS
from ucl.pipeline.stages import problem_set_stages

SECTIONS = [
    "## Questions and measured answers",
    "## Classification",
    "### Logistic regression",
    "### Table 1: activation of the hidden layer",
    "### Table 2: hidden width",
    "### Table 3: learning rate",
    "### Table 4: optimizer and learning rate",
    "### The best one-hidden-layer network",
    "## Autoencoders",
    "### MNIST",
    "### Retinal bipolar cells (synthetic stand-in)",
    "## Variational autoencoder",
    "## Generative adversarial network",
    "## Divergences",
    "## Interesting insights and extra experiments",
    "## Environment",
]
FIGURES = [  # one per kind the problem set asks for
    "best_mlp_error_curves.png",
    "best_mlp_confusion_matrix.png",
    "autoencoder_mnist_embedding.png",
    "autoencoder_mnist_reconstructions.png",
    "autoencoder_mnist_interpolations.png",
    "autoencoder_retina_embedding.png",
    "vae_embedding.png",
    "vae_interpolations.png",
    "vae_manifold.png",
    "gan_samples_epoch_001.png",
    "gan_samples.png",
    "gan_class_histogram.png",
    "divergence_gan_divergences.png",
]


@pytest.mark.slow
@pytest.mark.long  # minutes: started first (conftest.py)
@SMOKE_GROUP  # the run is shared with tests/test_slurm_pipeline.py
def test_smoke_reproduction_and_report(smoke_reproduction):
    root, proc = smoke_reproduction
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]

    record = json.loads((root / "stages.json").read_text())
    assert record["smoke"] is True
    assert {n: e["status"] for n, e in record["stages"].items()} == {
        s.name: "completed" for s in problem_set_stages()
    }
    assert all(e["seconds"] > 0 for e in record["stages"].values())

    report = root / "report"
    md = (report / "report.md").read_text()
    positions = [md.find(s) for s in SECTIONS]
    assert -1 not in positions, [s for s, p in zip(SECTIONS, positions, strict=True) if p < 0]
    assert positions == sorted(positions)  # the problem set's order
    assert "not run" not in md and "failed" not in md.lower().replace("not completed", "")
    assert "Smoke run" in md
    # tables: the four sweeps with their swept parameter, the optimizer pivot, divergences
    for header in (
        "| job | activation |",
        "| job | hidden |",
        "| job | lr |",
        "| optimizer \\ lr |",
        "| measure | mnist_vs_mnist (mean ± sd) | mnist_vs_gan (mean ± sd) |",
    ):
        assert header in md, header
    # answers drawn from metrics.json
    assert re.search(r"the best one-hidden-layer network reaches \d+\.\d% test accuracy", md)
    assert re.search(r"\d+ of 15 classes separate", md)
    numbers = re.findall(r"^### (\d\.\d\.\d) ", md, flags=re.M)  # the Questions section
    assert numbers == [n for n, _, _ in QUESTIONS] and len(numbers) == 17
    assert "of the GAN's ink pixels are fully on" in md and "Recommended:" in md
    # every figure linked exists, and the kinds the problem set asks for are there
    linked = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", md)
    assert linked and all((report / f).is_file() for f in linked)
    names = {Path(f).name for f in linked}
    assert not [f for f in FIGURES if f not in names], names
    # the HTML stands alone: every figure inline, nothing fetched from beside it
    html = (report / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == len(linked)
    assert 'src="figures/' not in html
    dangling = set(re.findall(r'href="#([^"]+)"', html)) - set(re.findall(r'id="([^"]+)"', html))
    assert not dangling, dangling  # the answers' links reach their tables and figures

    again = reproduce(root, "--no-report")
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.stdout.count("already completed (") == len(problem_set_stages()), again.stdout
