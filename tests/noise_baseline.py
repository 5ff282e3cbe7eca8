"""What a run's classifier makes of uniform noise: the floor a generative model's judged
samples, and real digits, are compared with."""

from __future__ import annotations

from pathlib import Path

import torch


def noise_judged(classifier_dir: Path, n: int = 500) -> dict[str, float]:
    """The score and confidence the classifier in `classifier_dir` gives `n` images of
    uniform noise (28 x 28, seeded)."""
    from ucl.earlier_runs import load_model
    from ucl.sample_quality import judge_samples

    classifier, _ = load_model(classifier_dir)
    noise = torch.rand(n, 784, generator=torch.Generator().manual_seed(0))
    judged = judge_samples(classifier, noise, noise, [1.0] * 10, prefix="noise")
    return {"score": judged["noise/score"], "confidence": judged["noise/confidence"]}
