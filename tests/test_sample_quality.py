"""Classifier-based sample quality: score, chi-squared, confidence, Frechet distance."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from ucl import sample_quality
from ucl.models.logreg import LogisticRegression
from ucl.models.mlp import MLP, DeepMLP
from ucl.plots.training import class_histogram
from ucl.sample_quality import (
    class_frequencies,
    classifier_features,
    classifier_score,
    frechet_distance,
    judge_samples,
)

K = 10
CONFIDENT = 50.0  # a logit margin that makes softmax one-hot to double precision


def one_hot_logits(labels: torch.Tensor) -> torch.Tensor:
    return CONFIDENT * nn.functional.one_hot(labels, K).double()


class Argmax(nn.Module):
    """A 'classifier' of K-dim one-hot images: logits = CONFIDENT * x (one parameter, so
    judge_samples can find its device)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(CONFIDENT))

    def forward(self, x):
        return self.scale * x


def test_score_is_k_for_confident_predictions_spread_evenly():
    labels = torch.arange(1000) % K
    assert classifier_score(one_hot_logits(labels)) == pytest.approx(K, rel=1e-9)


def test_score_is_one_when_every_prediction_is_the_same():
    assert classifier_score(torch.randn(1, K).repeat(500, 1)) == pytest.approx(1.0, abs=1e-12)
    # also for a confident constant classifier (all mass on one class): no 0 log 0 NaN
    assert classifier_score(one_hot_logits(torch.zeros(500, dtype=torch.long))) == pytest.approx(1)


def test_score_of_confident_predictions_on_two_classes_is_two():
    labels = torch.arange(1000) % 2
    assert classifier_score(one_hot_logits(labels)) == pytest.approx(2.0, rel=1e-9)


def test_score_matches_the_definition_for_soft_predictions():
    logits = torch.randn(200, K, generator=torch.Generator().manual_seed(0)).double()
    p = logits.softmax(1).numpy()
    marginal = p.mean(0)
    expected = math.exp(np.mean(np.sum(p * np.log(p / marginal), axis=1)))
    assert classifier_score(logits) == pytest.approx(expected, rel=1e-9)
    assert 1 <= classifier_score(logits) <= K


def test_frechet_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    x = torch.randn(1000, 8, generator=torch.Generator().manual_seed(1))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    # same covariance, means apart by c in each of F dimensions: exactly F c^2
    distances = [frechet_distance(x, x + c) for c in (0.5, 1.0, 2.0)]
    assert distances == pytest.approx([8 * 0.25, 8 * 1.0, 8 * 4.0], rel=1e-6)


def test_frechet_of_one_dimensional_gaussians_is_the_closed_form():
    # N(m1, s1^2) vs N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(200_000, 1, generator=g), torch.randn(200_000, 1, generator=g)
    got = frechet_distance(1 + 2 * a, -1 + 0.5 * b)
    assert got == pytest.approx(4 + 1.5**2, rel=0.02)


def test_frechet_agrees_with_the_matrix_square_root_formula():
    g = np.random.default_rng(3)
    a = g.normal(size=(400, 5)) @ g.normal(size=(5, 5))
    b = g.normal(size=(300, 5)) @ g.normal(size=(5, 5)) + 1
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(
        ca + cb - 2 * linalg.sqrtm(ca @ cb).real
    )
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_frechet_works_with_fewer_samples_than_features():
    x = torch.rand(50, 200, generator=torch.Generator().manual_seed(4))
    assert frechet_distance(x[:25], x[25:]) >= 0
    assert math.isfinite(frechet_distance(x[:25], x[25:]))


def test_frechet_rejects_mismatched_feature_sets():
    with pytest.raises(ValueError, match=r"\(1000, 8\) and \(1000, 9\)"):
        frechet_distance(np.zeros((1000, 8)), np.zeros((1000, 9)))


def test_judge_counts_classes_and_compares_them_with_the_frequencies():
    labels = torch.tensor([0] * 30 + [1] * 10 + list(range(K)) * 6)  # 100 images
    samples = nn.functional.one_hot(labels, K).float()
    real = nn.functional.one_hot(torch.arange(200) % K, K).float()
    out = judge_samples(Argmax(), samples, real, [0.1] * K)
    counts = [36, 16] + [6] * 8
    assert out["samples/class_counts"] == counts
    assert out["samples/min_class_share"] == pytest.approx(0.06)
    expected_chi2 = sum((c - 10) ** 2 / 10 for c in counts)  # Pearson, 10 expected per class
    assert out["samples/chi2"] == pytest.approx(expected_chi2)
    assert out["samples/chi2_p"] < 1e-6
    assert out["samples/confidence"] == pytest.approx(1.0)
    assert 1 < out["samples/score"] < K


def test_judge_of_evenly_spread_confident_samples():
    samples = nn.functional.one_hot(torch.arange(1000) % K, K).float()
    out = judge_samples(Argmax(), samples, samples.flip(0), [0.1] * K, prefix="real")
    assert set(out) == {
        f"real/{k}"
        for k in (
            "class_counts", "min_class_share", "chi2", "chi2_p", "confidence", "score", "frechet",
            "saturated_ink",
        )
    }  # fmt: skip
    assert out["real/chi2"] == pytest.approx(0.0) and out["real/chi2_p"] == pytest.approx(1.0)
    assert out["real/score"] == pytest.approx(K, rel=1e-6)
    assert out["real/frechet"] == pytest.approx(0.0, abs=1e-6)  # the same set, reordered


def test_judge_rejects_frequencies_that_do_not_match_the_classes():
    samples = torch.eye(K)
    with pytest.raises(ValueError, match="10 positive numbers"):
        judge_samples(Argmax(), samples, samples, [0.5, 0.5])


def test_judge_leaves_a_training_classifier_in_training_mode():
    clf = Argmax().train()
    judge_samples(clf, torch.eye(K), torch.eye(K), [0.1] * K)
    assert clf.training


def test_class_frequencies_sum_to_one():
    freq = class_frequencies(torch.tensor([0, 0, 1, 3]), 5)
    assert freq.tolist() == [0.5, 0.25, 0.0, 0.25, 0.0]


@pytest.mark.parametrize(
    ("model", "width", "kind"),
    [
        (MLP(784, 32, 10), 32, "hidden"),
        (DeepMLP(784, [48, 24], 10), 24, "hidden"),
        (LogisticRegression(784, 10, init="normal"), 10, "logits"),
    ],
)
def test_features_are_the_penultimate_layer_or_else_the_logits(model, width, kind):
    x = torch.rand(5, 1, 28, 28)
    features, got = classifier_features(model, x)
    assert features.shape == (5, width) and got == kind
    if isinstance(model, MLP):  # the hidden activations: relu(x W1^T + b1)
        expected = torch.relu(x.flatten(1) @ model.W1.T + model.b1)
        torch.testing.assert_close(features, expected)


def test_class_histogram_draws_one_bar_per_class_and_set():
    fig = class_histogram({"a": [1] * K, "b": [2] * K}, [0.1] * K, list("0123456789"), "t")
    assert len(fig.axes[0].patches) == 2 * K


@pytest.mark.parametrize(("n_test", "sizes"), [(3000, (1000, 1000)), (500, (250, 250))])
def test_judge_compares_real_digits_disjoint_from_the_reference(monkeypatch, n_test, sizes):
    calls = []  # (judged, reference, prefix) of each judge_samples call
    monkeypatch.setattr(
        sample_quality, "judge_samples",
        lambda clf, x, ref, freq, prefix="samples": calls.append((x, ref, prefix)) or {},
    )  # fmt: skip
    x_test = torch.arange(n_test, dtype=torch.float32)[:, None].expand(n_test, 4)  # rows differ
    data = SimpleNamespace(x_test=x_test, y_train=torch.arange(10), num_classes=10)
    sample_quality.judge_with_real(None, torch.rand(7, 4), data, n_ref=1000, n_real=1000)
    (_, ref_s, p_s), (real, ref_r, p_r) = calls
    assert (p_s, p_r) == ("samples", "real") and ref_s is ref_r  # one reference for both
    assert (len(ref_r), len(real)) == sizes
    assert not set(ref_r[:, 0].tolist()) & set(real[:, 0].tolist())  # no digit in both
