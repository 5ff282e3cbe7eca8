"""The report from run dirs alone: missing stages read "not run", the answers come from
metrics.json and history.csv, and the HTML holds its figures."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from ucl.report import doc, facts  # noqa: E402
from ucl.report.build import build_report  # noqa: E402
from ucl.report.divergence import divergence_answers, separation  # noqa: E402
from ucl.report.pdf import to_pdf  # noqa: E402
from ucl.report.sources import Source  # noqa: E402


def write_run(run_dir: Path, metrics: dict, history: str | None = None, **top) -> Path:
    run_dir.mkdir(parents=True)
    record = {
        "status": "completed",
        "task": "classify",
        "overrides": [],
        "metrics": metrics,
        "seconds": {"total": 1.0},
        "env": {"torch": "2.x", "device": "cpu", "threads": 2},
        **top,
    }
    (run_dir / "metrics.json").write_text(json.dumps(record))
    if history:
        (run_dir / "history.csv").write_text(history)
    return run_dir


def png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


def test_an_empty_root_gives_a_report_of_not_run_stages(tmp_path):
    built = build_report(tmp_path / "runs", tmp_path / "out", make_pdf=False)
    md = built.markdown.read_text()
    for section in (
        "## Classification",
        "## Autoencoders",
        "## Variational autoencoder",
        "## Generative adversarial network",
        "## Divergences",
        "## Environment",
    ):
        assert section in md
    assert md.count("**not run**") >= 13
    assert "python scripts/reproduce.py --only gan" in md
    assert built.html.read_text().startswith("<!DOCTYPE html>")


def test_answers_come_from_metrics_and_history(tmp_path):
    history = (
        "step,test/accuracy\n"
        "469,0.930\n"  # below the problem set's 95%
        "938,0.960\n"  # first above 95%
        "1407,0.979\n"  # within half a point of the best
        "1876,0.982\n"
    )
    confusion = [[0] * 10 for _ in range(10)]
    for i in range(10):
        confusion[i][i] = 100
    confusion[4][9] = 7
    write_run(
        tmp_path / "best_mlp",
        {
            "test/accuracy": 0.982,
            "test/best_accuracy": 0.982,
            "test/best_step": 1876,
            "steps": 1876,
        },
        history,
        most_confused=[{"true": "4", "predicted": "9", "count": 7}],
        confusion_matrix=confusion,
    )
    src = Source(tmp_path)
    answer = facts.accuracy_answer(src.run("best_mlp"), "best")
    assert "test accuracy 98.20% after 1876 iterations" in answer
    assert "above 95.00% from iteration 938" in answer
    assert "within 0.5 points of its best from iteration 1407" in answer
    assert "4→9 (7)" in facts.confused_answer(src.run("best_mlp"))
    assert facts.mnist_shares(src)[4] == 107 / 1007


def test_retina_classes_that_separate(tmp_path):
    write_run(
        tmp_path / "autoencoder_retina",
        {
            "latent/knn_accuracy_per_class": {
                "RBC (Rod)": 0.95,
                "MG": 0.9,
                "BC1A": 0.85,
                "BC2": 0.3,
            },
            "latent/silhouette_per_class": {"RBC (Rod)": 0.5, "MG": 0.2, "BC1A": -0.1, "BC2": 0.1},
            "latent/knn_accuracy": 0.8,
            "latent/silhouette": 0.2,
        },
        data={"synthetic": True},
    )
    answer = facts.retina_answer(Source(tmp_path).run("autoencoder_retina"))
    assert answer.startswith("2 of 4 classes separate (RBC, MG")  # BC1A: silhouette < 0
    assert "synthetic" in answer


def test_divergence_separation_ranks_clear_finite_ratios_without_p_values(tmp_path):
    def row(measure, base, std, gan):
        return {
            "measure": measure,
            "seconds": 0.1,
            "mnist_vs_mnist": base,
            "mnist_vs_mnist std": std,
            "mnist_vs_gan": gan,
            "ratio": gan / base,
        }

    table = [
        row("mmd2_biased", 0.01, 0.001, 0.4),  # 40x
        row("emd_exact", 10.0, 0.1, 15.0),  # 1.5x
        row("mmd2_unbiased", 0.001, 0.002, 0.39),  # 390x, but the baseline is noise
        row("kl_knn_pq", -0.5, 0.3, 20.0),  # a negative baseline: no ratio
        row("kl_hist_qp", 0.2, 0.01, float("inf")),
        row("mmd_p_value", 0.4, 0.2, 0.001),
    ]
    write_run(
        tmp_path / "divergence_gan",
        {"time/emd_exact": 0.4, "time/mmd2_biased": 0.02},
        divergence_table=table,
    )
    src = Source(tmp_path)
    assert separation(src.run("divergence_gan")) == [
        ("mmd2_biased", 40.0, False),
        ("emd_exact", 1.5, False),
        ("mmd2_unbiased", 390.0, True),
    ]
    separates, runtimes, _ = divergence_answers(src)
    assert "mmd2_biased: real-vs-GAN is 40 times real-vs-real" in separates
    assert "mmd2_unbiased 390x (baseline within noise)" in separates
    assert runtimes.index("mmd2_biased") < runtimes.index("emd_exact")  # fastest first


def test_markdown_copies_figures_and_html_embeds_them(tmp_path):
    a = png(tmp_path / "runs" / "gan" / "figures" / "samples.png")
    b = png(tmp_path / "runs" / "vae" / "figures" / "samples.png")
    blocks = [
        doc.Heading(1, "T"),
        doc.Heading(2, "A <b> section"),
        doc.Text("`x` & **y**"),
        doc.Table(["k", "v"], [["a|b", 0.123456], ["n", None]]),
        doc.Figure(a, "GAN"),
        doc.Figure(b, "VAE"),
    ]
    md = doc.to_markdown(blocks, tmp_path / "out")
    assert "(figures/gan_samples.png)" in md and "(figures/vae_samples.png)" in md
    assert (tmp_path / "out" / "figures" / "vae_samples.png").is_file()
    assert "| a\\|b | 0.1235 |" in md and "| n | – |" in md
    html = doc.to_html(blocks, "T")
    assert html.count("data:image/png;base64,") == 2
    assert "A &lt;b&gt; section" in html and "<code>x</code> &amp; <strong>y</strong>" in html
    assert '<a href="#a-b-section">' in html


def test_pdf_without_a_converter_says_so(tmp_path, monkeypatch):
    import ucl.report.pdf as pdf

    monkeypatch.setattr(pdf, "converters", lambda: [])
    path, note = to_pdf(tmp_path / "report.html")
    assert path is None and note.startswith("no PDF: no converter found")
