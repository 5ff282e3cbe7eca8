"""The divergence studies end to end: the simple and MNIST sources, tables and figures."""

from __future__ import annotations

import math

import pytest

from ucl.config import run_config
from ucl.tasks.divergence import kl_uniform_normal

FAST = ["divergence.n=300", "divergence.repeats=2", "divergence.permutations=200"]


def test_closed_form_kl_matches_a_monte_carlo_estimate():
    import numpy as np
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 2, size=(200_000, 3))
    log_q = multivariate_normal(np.zeros(3), 4 * np.eye(3)).logpdf(x)
    monte_carlo = np.mean(-3 * math.log(3) - log_q)  # log p = -log vol inside the box
    assert kl_uniform_normal(-1, 2, 3, 4.0) == pytest.approx(monte_carlo, abs=0.01)


@pytest.mark.slow  # a whole study
def test_simple_study_reports_every_measure_with_time_and_spread(tmp_path):
    record = run_config(["experiment=divergence_simple", "normal_var=4", *FAST], tmp_path / "r")
    assert record["status"] == "completed" and record["task"] == "divergence"
    m = record["metrics"]
    truth = m["uniform_vs_normal/kl_closed_form_pq"]
    assert truth == pytest.approx(kl_uniform_normal(0, 1, 3, 4.0))
    assert m["uniform_vs_normal/kl_knn_pq"] == pytest.approx(truth, abs=0.35)
    assert math.isinf(m["uniform_vs_normal/kl_hist_qp"])  # normal mass outside the box
    assert m["uniform_vs_normal/emd_opencv"] >= m["uniform_vs_normal/emd_exact"] - 1e-3
    assert m["uniform_vs_normal/mmd_p_value"] < 0.01
    for name in ("kl_knn_pq", "emd_exact", "mmd2_unbiased", "mmd_p_value"):
        assert m[f"time/{name}"] > 0 and f"uniform_vs_normal/{name}/std" in m
    assert len(record["divergence_table"]) == 9
    assert (tmp_path / "r" / "divergence.md").read_text().startswith("| measure |")
    assert (tmp_path / "r" / "figures" / "divergences.png").stat().st_size > 1000


@pytest.mark.slow  # a whole study
def test_mnist_vs_mnist_on_the_fixture(tmp_path, fixture_overrides):
    overrides = ["experiment=divergence_mnist", *FAST, "divergence.n=200", *fixture_overrides]
    overrides.append("divergence.measures=[kl_knn_pq,emd_exact,mmd2_unbiased,mmd_p_value]")
    record = run_config(overrides, tmp_path / "m")
    m = record["metrics"]
    assert m["mnist_vs_mnist/mmd_p_value"] > 0.01  # two samples of the same distribution
    assert abs(m["mnist_vs_mnist/mmd2_unbiased"]) < 0.01


def test_bad_settings_are_named(tmp_path):
    record_dir = tmp_path / "bad"
    with pytest.raises(ValueError, match="divergence.measures: unknown"):
        run_config(["experiment=divergence_simple", "divergence.measures=[nope]"], record_dir)
    with pytest.raises(ValueError, match="needs generator="):
        run_config(["experiment=divergence_gan", "dataset.idx_dir=tests/fixtures/mnist",
                    f"dataset.root={tmp_path}", "skip_completed=false"], record_dir)  # fmt: skip
