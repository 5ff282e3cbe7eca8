"""The divergence studies end to end: the simple, MNIST and GAN sources, tables, effect
sizes, rejection rates and figures; and the two statistics they rest on."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from tests.conftest import FIXTURE_MNIST, compose
from ucl.config import run_config
from ucl.divergence.separation import effect_size, rejection_rate
from ucl.errors import ConfigError
from ucl.schema import validate
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
    assert len(record["divergence_table"]) == 11
    assert m["uniform_vs_normal/mmd_mixture_p_value/rejected"] == 1.0
    assert not any(key.startswith(("ratio/", "separation/")) for key in m)  # one pair
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


def test_bad_settings_are_named_before_the_run_dir_is_made(tmp_path):
    with pytest.raises(ConfigError, match="'nope' is not a divergence measure"):
        run_config(["experiment=divergence_simple", "divergence.measures=[nope]"], tmp_path / "a")
    with pytest.raises(ConfigError, match="needs generator="):
        run_config(["experiment=divergence_gan", "dataset.idx_dir=tests/fixtures/mnist",
                    f"dataset.root={tmp_path}", "skip_completed=false"],
                   tmp_path / "no_generator")  # fmt: skip
    assert not (tmp_path / "a").exists() and not (tmp_path / "no_generator").exists()


def test_effect_size_and_its_interval():
    d, low, high = effect_size([0.0, 1.0, 2.0], [3.0, 4.0, 5.0])  # pooled sd 1, means 1 and 4
    se = math.sqrt(2 / 3 + 9 / 12)
    assert d == 3.0 and (low, high) == pytest.approx((3 - 1.959964 * se, 3 + 1.959964 * se))
    assert effect_size([1.0, 2.0], [0.0, 1.0])[0] == pytest.approx(-math.sqrt(2))
    assert math.isnan(effect_size([1.0, math.inf], [1.0, 2.0])[0])
    # The interval covers the true d in about 95% of seeded experiments of 20 repeats each.
    rng = np.random.default_rng(0)
    draws = (effect_size(rng.normal(0, 1, 20), rng.normal(1, 1, 20)) for _ in range(400))
    cover = [low <= 1.0 <= high for _, low, high in draws]
    assert 0.91 <= np.mean(cover) <= 0.99


def test_rejection_rate_has_the_exact_binomial_interval():
    rate, low, high = rejection_rate([0.01] * 19 + [0.5], alpha=0.05)
    # 19 of 20: the Clopper-Pearson 95% interval is [0.7513, 0.9987].
    assert rate == 0.95 and low == pytest.approx(0.7513, abs=1e-4)
    assert high == pytest.approx(0.9987, abs=1e-4)
    assert rejection_rate([0.05, 0.051], alpha=0.05)[0] == 0.5  # p <= alpha rejects


@pytest.fixture(scope="module")
def gan_and_classifier(tmp_path_factory):
    """A one-hidden-layer classifier and a barely trained GAN judged by it, on the fixture."""
    root = tmp_path_factory.mktemp("div_gan")
    data = [f"dataset.idx_dir={FIXTURE_MNIST}", f"dataset.root={root / 'data'}",
            "progress=false", "threads=1"]  # fmt: skip
    run_config(["model=mlp", "hidden=32", "steps=60", *data], root / "clf")
    gan = ["experiment=gan", "model.latent_dim=16", "model.generator_widths=[64]",
           "model.discriminator_widths=[64]", "task_settings.num_samples=200",
           "steps=30"]  # fmt: skip
    run_config([*gan, *data, f"classifier={root / 'clf'}"], root / "gan")
    return root, data


@pytest.mark.slow  # two trainings and a study, in this process
def test_gan_study_reports_power_false_positives_and_separation(gan_and_classifier):
    root, data = gan_and_classifier
    run_dir = root / "study"
    study = ["experiment=divergence_gan", f"generator={root / 'gan'}", *data,
             "divergence.n=100", "divergence.repeats=4", "divergence.permutations=100"]  # fmt: skip
    run_config(study, run_dir)
    record = json.loads((run_dir / "metrics.json").read_text())
    m = record["metrics"]
    # A GAN after 30 steps draws noise: every test rejects it, in pixels and in features.
    for test in ("mmd_p_value", "mmd_mixture_p_value", "kid_p_value"):
        assert m[f"power/{test}"] == 1.0 and 0.0 <= m[f"false_positive/{test}"] <= 1.0
    for estimate in ("mmd2_unbiased", "kid", "kl_knn_features_pq", "emd_exact"):
        d, low = m[f"separation/{estimate}"], m[f"separation/{estimate}/ci_low"]
        assert d > 3 and 0 < low < d < m[f"separation/{estimate}/ci_high"]
    assert m["mnist_vs_gan/kid/se"] > 0 and m["time/features"] > 0
    assert not any(key.startswith("ratio/") for key in m)
    text = (run_dir / "divergence.md").read_text()
    assert "classifier features (forward pass, per sample)" in text and "mnist_vs_gan: 100%" in text
    assert (run_dir / "figures" / "separation.png").stat().st_size > 1000


@pytest.mark.slow  # a study, in this process
def test_a_gan_moved_with_its_classifier_is_judged_by_it_there(gan_and_classifier, tmp_path):
    import shutil

    root, data = gan_and_classifier
    moved = tmp_path / "moved"  # the two runs moved together, as a pipeline's root is
    for name in ("clf", "gan"):
        shutil.copytree(root / name, moved / name)
    (root / "clf").rename(root / "clf.away")
    try:
        study = ["experiment=divergence_gan", f"generator={moved / 'gan'}", *data,
                 "divergence.n=100", "divergence.repeats=2",
                 "divergence.permutations=50"]  # fmt: skip
        assert run_config(study, tmp_path / "study")["status"] == "completed"
        shutil.rmtree(moved / "clf")
        said = f"generator={moved / 'gan'}: the classifier that judged it, {root / 'clf'}, is gone"
        with pytest.raises(ConfigError, match=re.escape(said)):
            run_config(study, tmp_path / "study2")
        assert not (tmp_path / "study2").exists()
    finally:
        (root / "clf.away").rename(root / "clf")


def test_feature_measures_need_a_classifier(tmp_path, fixture_overrides):
    overrides = ["experiment=divergence_mnist", *FAST, "divergence.n=50", *fixture_overrides,
                 "divergence.measures=[kid]"]  # fmt: skip
    with pytest.raises(ValueError, match=r"need a classifier's features: give classifier="):
        run_config(overrides, tmp_path / "k")


@pytest.mark.parametrize(
    "override,said",
    [
        (
            "divergence.measures=[kl_hist_pq,mmd_mixtur]",
            "divergence.measures: 'mmd_mixtur' is not a divergence measure. Did you mean "
            "'mmd2_mixture'?",
        ),
        ("divergence.source=gans", "divergence.source='gans' is not one of simple, mnist, gan"),
    ],
)
def test_a_study_with_an_unknown_name_is_refused_in_one_line(override, said):
    """A typo in a measure or source: one line with the valid names, from the config checks
    train.py runs before the run dir exists (tests/test_config.py: that train.py shows it)."""
    with pytest.raises(ConfigError) as refused:
        validate(compose(["experiment=divergence_simple", override]))
    line = str(refused.value)
    assert "\n" not in line and said in line, line
    assert "valid" in line.lower() and "e.g. divergence." in line, line


def test_the_fix_of_a_measure_list_holds_only_measures():
    """Each unknown name of the list is replaced by its closest measure, or dropped: the
    example is a list that runs."""
    with pytest.raises(ConfigError) as refused:
        validate(
            compose(["experiment=divergence_simple", "divergence.measures=[kl,mmd_mixtur,foo]"])
        )
    fix = str(refused.value).rsplit("e.g. divergence.measures=", 1)[1]
    assert fix == "[mmd2_mixture]", str(refused.value)


@pytest.mark.slow  # two small studies
def test_a_study_reads_none_of_the_training_knobs(tmp_path):
    """train.py refuses these keys on a divergence study (ucl.schema.TRAINING_KEYS): changing
    every one of them changes none of its numbers."""
    from ucl.schema import TRAINING_KEYS

    changed = {"lr": 0.01, "epochs": 3, "steps": 7, "batch_size": 3, "eval_every": 2,
               "eval_batch_size": 5, "checkpoint_every": 1, "precision": "bf16",
               "optimizer": "adam"}  # fmt: skip
    assert set(changed) == set(TRAINING_KEYS)
    study = ["experiment=divergence_simple", *FAST, "divergence.measures=[kl_knn_pq,mmd2_unbiased]"]
    first = run_config(study, tmp_path / "a")["metrics"]
    again = run_config([*study, *(f"{k}={v}" for k, v in changed.items())], tmp_path / "b")
    assert again["status"] == "completed"
    measured = {k: v for k, v in first.items() if not k.startswith("time/")}
    assert measured == {k: v for k, v in again["metrics"].items() if not k.startswith("time/")}
    assert len(measured) >= 4
