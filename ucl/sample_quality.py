"""How good generated digits are, judged by a trained classifier.

`judge_samples` classifies a set of images and reports, under `<prefix>/...`:

- `class_counts`: how many images fall in each class (argmax of the classifier), and
  `min_class_share`, the rarest class's share (a collapsed generator has one near 0);
- `chi2`, `chi2_p`: Pearson's chi-squared of those counts against the expected class
  frequencies, and its p-value (df = classes - 1);
- `confidence`: the mean top-class probability (blurry or mixed digits score low);
- `score`: exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over the set: the
  Inception score of Salimans et al. 2016 (sec. 4) with this classifier in place of
  Inception. 1 when every image gets the same p(y|x), at most the number of classes,
  reached by confident predictions spread evenly over the classes;
- `saturated_ink`: stroke sharpness, the share of ink pixels (value >= INK) that are fully
  on (>= SATURATED). MNIST's strokes are mostly saturated; a model that blurs them leaves
  grey where the strokes should be;
- `frechet`: the Frechet distance between Gaussians fitted to classifier features of the
  images and of a set of real digits (Heusel et al. 2017, eq. 6, "FID", with this
  classifier in place of Inception).

Features (`classifier_features`): the penultimate layer when the classifier has one — a
`features(x)` method if the model defines it, the hidden activations act(x W1^T + b1) of
the one-hidden-layer `MLP`, everything before the last layer of an `nn.Sequential` such as
`DeepMLP` — else the logits (e.g. `LogisticRegression`, which has no hidden layer).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

# Pixel values in [0, 1]: at least INK counts as part of a stroke, at least SATURATED as a
# fully drawn one (MNIST's anti-aliased strokes are 1 in the middle, grey at the edges).
INK, SATURATED = 0.1, 0.9


def judge_samples(
    classifier: nn.Module,
    samples: torch.Tensor,
    real: torch.Tensor,
    class_frequencies: torch.Tensor | np.ndarray | list[float],
    *,
    prefix: str = "samples",
) -> dict:
    """Classifier-based quality of `samples` (N, D) against `real` (M, D) images and the
    expected `class_frequencies` (K,); see the module docstring for each number."""
    samples, real = _flat(samples, "samples"), _flat(real, "real")
    if samples.shape[1] != real.shape[1]:
        raise ValueError(
            f"samples have {samples.shape[1]} features per image but real ones "
            f"{real.shape[1]}; give both as (N, {real.shape[1]}) images of the same size"
        )
    device = next(classifier.parameters(), torch.empty(0)).device
    was_training = classifier.training
    classifier.eval()
    with torch.no_grad():
        logits = classifier(samples.to(device)).double().cpu()  # (N, K)
        sample_features, _ = classifier_features(classifier, samples.to(device))
        real_features, _ = classifier_features(classifier, real.to(device))
    classifier.train(was_training)

    freq = torch.as_tensor(np.asarray(class_frequencies, dtype=np.float64))
    if freq.ndim != 1 or len(freq) != logits.shape[1] or (freq <= 0).any():
        raise ValueError(
            f"class_frequencies must be {logits.shape[1]} positive numbers (one per class of "
            f"the classifier), got {freq.tolist()}; e.g. class_frequencies(data.y_train, 10)"
        )
    counts = torch.bincount(logits.argmax(1), minlength=logits.shape[1])
    n = len(samples)
    from scipy import stats  # here: importing scipy.stats costs most of a second

    chi2, p = stats.chisquare(counts.numpy(), f_exp=(freq / freq.sum()).numpy() * n)
    return {
        f"{prefix}/class_counts": counts.tolist(),
        f"{prefix}/min_class_share": counts.min().item() / n,
        f"{prefix}/chi2": float(chi2),
        f"{prefix}/chi2_p": float(p),
        f"{prefix}/confidence": logits.softmax(1).max(1).values.mean().item(),
        f"{prefix}/score": classifier_score(logits),
        f"{prefix}/saturated_ink": saturated_ink(samples),
        f"{prefix}/frechet": frechet_distance(sample_features, real_features),
    }


def saturated_ink(x: torch.Tensor) -> float:
    """The share of ink pixels (>= INK) of images x (N, D) in [0, 1] that are saturated
    (>= SATURATED); nan when no pixel holds ink."""
    x = _flat(x, "images")
    ink = x >= INK
    if not ink.any():
        return float("nan")
    return float((x >= SATURATED).sum() / ink.sum())


def class_frequencies(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The share of each class among `labels` (N,): (num_classes,), sums to 1."""
    counts = torch.bincount(labels.cpu().long(), minlength=num_classes).double()
    return counts / counts.sum()


def classifier_score(logits: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))) from logits (N, K); p(y) = mean_x p(y|x).

    Salimans et al. 2016, sec. 4. Computed in log space: log p(y|x) from log_softmax, so a
    confident prediction (p = 0 elsewhere) contributes 0 * log 0 = 0, not NaN.
    """
    log_p = torch.log_softmax(logits.double(), dim=1)  # (N, K) log p(y|x)
    log_marginal = torch.logsumexp(log_p, dim=0) - np.log(len(log_p))  # (K,) log p(y)
    kl = (log_p.exp() * (log_p - log_marginal)).sum(1)  # (N,) KL(p(y|x) || p(y))
    return float(kl.mean().exp())


def frechet_distance(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Frechet (2-Wasserstein) distance between Gaussians fitted to feature sets a (N, F)
    and b (M, F): |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))  (Heusel et al. 2017).

    Tr (S_a S_b)^(1/2) is taken as the sum of square roots of the eigenvalues of the
    symmetric S_a^(1/2) S_b S_a^(1/2) (same spectrum as S_a S_b): no complex square roots,
    and rank-deficient covariances (fewer samples than features) are fine.
    """
    a, b = (np.asarray(t.cpu() if isinstance(t, torch.Tensor) else t, np.float64) for t in (a, b))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"frechet_distance needs two (N, F) feature sets with the same F and N >= 2, "
            f"got shapes {a.shape} and {b.shape}"
        )
    mean_a, mean_b = a.mean(0), b.mean(0)
    # atleast_2d: np.cov of one feature is a 0-d array
    cov_a, cov_b = (np.atleast_2d(np.cov(t, rowvar=False, ddof=1)) for t in (a, b))
    root_a = _psd_sqrt(cov_a)
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(min=0)
    trace = np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(cross).sum()
    return float(((mean_a - mean_b) ** 2).sum() + max(trace, 0.0))


def classifier_features(classifier: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, str]:
    """(features (N, F), which) of images x (N, D): the penultimate layer when there is one
    ("hidden"), else the logits ("logits"). See the module docstring."""
    from ucl.models.mlp import MLP

    x = x.flatten(1)
    if callable(getattr(classifier, "features", None)):
        return classifier.features(x), "hidden"
    if isinstance(classifier, MLP):  # explicit parameters: act(x W1^T + b1), before dropout
        return classifier.act(torch.addmm(classifier.b1, x, classifier.W1.t())), "hidden"
    if isinstance(classifier, nn.Sequential) and len(classifier) > 1:
        # a fresh Sequential: slicing would call a subclass's own __init__ (DeepMLP's)
        return nn.Sequential(*list(classifier)[:-1])(x), "hidden"
    return classifier(x), "logits"


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(values.clip(min=0))) @ vectors.T


def _flat(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or len(x) < 2:
        raise ValueError(
            f"{name} must be a tensor of at least 2 images, (N, D) or (N, C, H, W); "
            f"got {type(x).__name__} of shape {tuple(getattr(x, 'shape', ()))}"
        )
    return x.flatten(1).float()


def judge_with_real(
    classifier: nn.Module, samples: torch.Tensor, data, n_ref: int, n_real: int
) -> tuple[dict, int, int]:
    """`judge_samples` of generated `samples` and, under real/..., of real test digits, both
    against one reference set of real test digits: `data.x_test[:n_ref]`, and the real ones
    judged are the next `n_real`, disjoint from it (so real/frechet is the distance between
    two real samples, not 0 by construction). A test split smaller than n_ref + n_real (the
    test fixture) is halved between the two, with a warning. Returns (metrics, n_ref, n_real)."""
    if len(data.x_test) < n_ref + n_real:
        n_ref = len(data.x_test) // 2
        n_real = len(data.x_test) - n_ref
        log.warning(
            "only %d test digits: judging against %d of them and comparing with the other %d",
            len(data.x_test), n_ref, n_real,
        )  # fmt: skip
    reference = data.x_test[:n_ref]
    real = data.x_test[n_ref : n_ref + n_real]
    freq = class_frequencies(data.y_train, data.num_classes)
    out = judge_samples(classifier, samples, reference, freq)
    out.update(judge_samples(classifier, real, reference, freq, prefix="real"))
    return out, n_ref, n_real
