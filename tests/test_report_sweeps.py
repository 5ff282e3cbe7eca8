"""The report's tables over seeds: mean ± interval, the best cell by validation accuracy,
what the seeds support in words, and the figure."""

from __future__ import annotations

from test_summary import fabricate

from problem_set.report import facts
from problem_set.report.build import build_report
from problem_set.report.sources import Source


def test_a_sweep_over_seeds_shows_intervals_marks_and_a_figure(tmp_path):
    fabricate(tmp_path / "runs" / "activation_sweep")
    answer = facts.sweep_answer(Source(tmp_path / "runs"), "activation_sweep", ["activation"], "a")
    assert answer.startswith("a: activation=relu (98.00% ± 0.25 test accuracy, mean of 3 seeds, ")
    assert (
        "chosen by val/accuracy among 4)" in answer and "within noise of activation=elu" in answer
    )

    md = build_report(tmp_path / "runs", tmp_path / "out", make_pdf=False).markdown.read_text()
    table = md.split("### Table 1: activation of the hidden layer")[1].split("###")[0]
    assert "| activation | n | val/accuracy | test/accuracy |" in table
    assert "| relu | 3 |" in table and "| best |" in table and "| ≈ best |" in table
    assert "Within noise of the best (Welch's t-test on val/accuracy, p >= 0.05)" in table
    assert "2 of 3 completed (seed=2 failed)" in table
    assert "activation_sweep_test_accuracy_by_activation.png" in table
    assert (
        tmp_path / "out" / "figures" / "activation_sweep_test_accuracy_by_activation.png"
    ).is_file()
