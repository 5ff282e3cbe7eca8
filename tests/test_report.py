"""The report from run dirs alone: missing stages read "not run", the answers come from
metrics.json and history.csv, and the HTML holds its figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from problem_set.report import doc, facts  # noqa: E402
from problem_set.report.build import build_report  # noqa: E402
from problem_set.report.divergence import divergence_answers, separation  # noqa: E402
from problem_set.report.pdf import to_pdf  # noqa: E402
from problem_set.report.sources import Source  # noqa: E402


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


def test_divergence_answer_ranks_effect_sizes_and_power_and_recommends(tmp_path):
    def estimate(measure, d, seconds):
        return {"measure": measure, "seconds": seconds, "mnist_vs_mnist": 1.0,
                "mnist_vs_mnist std": 0.1, "mnist_vs_gan": 2.0, "mnist_vs_gan std": 0.1,
                "separation": [d, d - 1, d + 1]}  # fmt: skip

    def test(measure, fp, power, seconds):
        return {"measure": measure, "seconds": seconds, "mnist_vs_mnist": 0.5,
                "mnist_vs_gan": 0.01, "rejected": [[fp, 0, 0.2], [power, 0.8, 1.0]]}  # fmt: skip

    table = [
        estimate("emd_exact", -9.0, 0.5),  # falls: separates as well as a rise
        estimate("kl_knn_qp", 7.0, 2.0),
        estimate("kid", 40.0, 0.01),  # + 2 x 0.02 s of features: 0.05 s
        {"measure": "kl_hist_qp", "seconds": 0.1, "separation": [math.nan] * 3},
        test("mmd_p_value", 0.05, 0.30, 0.3),
        test("mmd_mixture_p_value", 0.20, 1.0, 0.5),  # powerful but miscalibrated
        test("kid_p_value", 0.05, 1.0, 0.1),
        {"measure": "features", "seconds": 0.02},
    ]
    write_run(tmp_path / "divergence_gan", {"time/emd_exact": 0.4, "time/kid": 0.01},
              divergence_table=table, divergence_settings={"repeats": 20, "alpha": 0.05,
              "pairs": ["mnist_vs_mnist", "mnist_vs_gan"]})  # fmt: skip
    src = Source(tmp_path)
    estimates, tests = separation(src.run("divergence_gan"))
    assert [e.measure for e in estimates] == ["kid", "emd_exact", "kl_knn_qp"]  # no NaN, no ratio
    assert estimates[0].seconds == pytest.approx(0.05)
    assert [t.measure for t in tests] == ["kid_p_value", "mmd_mixture_p_value", "mmd_p_value"]
    separates, runtimes, kl, _ = divergence_answers(src)
    assert "kid 40.000 [39.000, 41.000]" in separates and "ratio" not in separates
    assert (
        "Recommended: the kid permutation test (it compares the classifier's penultimate "
        "features). It rejects real-vs-GAN in 100% of 20" in separates
    )
    assert "real-vs-real in 5%" in separates
    assert runtimes.index("kid") < runtimes.index("emd_exact")  # fastest first
    assert "moves it by 7.8 nats: 1.000 ± 0.10 real-vs-real and 2.000 ± 0.10 real-vs-GAN" in kl


def test_the_recommendation_does_not_follow_the_noise_in_two_tests_times():
    # two runs of one pipeline (here and on the cluster) recommended different tests: both
    # feature tests rejected in every repeat, and the one that was a few percent faster
    # that time was recommended
    from problem_set.report.divergence import Estimate, Test, recommendation

    def said(kid_s: float, mmd_s: float) -> str:
        tests = [Test("mmd_mixture_features_p_value", 0.0, 1.0, 0.8, 1.0, mmd_s),
                 Test("kid_p_value", 0.0, 1.0, 0.8, 1.0, kid_s),
                 Test("mmd_p_value", 0.0, 1.0, 0.8, 1.0, 1.0)]  # fmt: skip
        return recommendation([], tests, 20).split(". It ")[0]

    assert said(0.100, 0.104) == said(0.104, 0.100) == said(0.1, 0.1)
    assert "mmd_p_value" not in said(0.1, 0.1)  # ten times slower: not a tie
    scores = lambda d_kid, s_kid: recommendation(  # noqa: E731
        [Estimate("kid", d_kid, 0, 0, s_kid), Estimate("mmd_features", 10.0, 0, 0, 0.1)], [], 20
    ).split(", the largest")[0]  # fmt: skip
    assert scores(10.0, 0.1) == scores(10.0, 0.104) == scores(10.0, 0.096)
    assert "mmd_features" in scores(9.0, 1.0)  # ten times the separation per second


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
    import problem_set.report.pdf as pdf

    monkeypatch.setattr(pdf, "converters", lambda: [])
    path, note = to_pdf(tmp_path / "report.html")
    assert path is None and note.startswith("no PDF: no converter found")
