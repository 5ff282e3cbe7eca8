"""The statistics over seeds against scipy.stats on known inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from ucl import stats

SAMPLES = [
    [0.9812, 0.9790, 0.9825],
    [0.5, 0.7, 0.2, 0.9, 0.4],
    [1.0, 2.0],
]


@pytest.mark.parametrize("xs", SAMPLES)
def test_aggregate_matches_scipy(xs):
    agg = stats.aggregate(xs)
    assert agg.n == len(xs)
    assert agg.mean == pytest.approx(np.mean(xs), abs=1e-15)
    assert agg.std == pytest.approx(np.std(xs, ddof=1), rel=1e-12)
    low, high = scipy_stats.t.interval(
        0.95, len(xs) - 1, loc=np.mean(xs), scale=scipy_stats.sem(xs)
    )
    assert (agg.low, agg.high) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))


def test_known_interval_by_hand():
    # mean 2, s = 1, n = 3: t(0.975, 2) = 4.302653 -> half-width 4.302653 / sqrt(3)
    agg = stats.aggregate([1.0, 2.0, 3.0])
    assert agg.half_width == pytest.approx(4.302652729749464 / 3**0.5, rel=1e-12)


def test_one_value_has_no_interval():
    agg = stats.aggregate([0.97])
    assert (agg.n, agg.mean, agg.std, agg.half_width, agg.low) == (1, 0.97, None, None, None)
    assert stats.aggregate([]).mean is None


@pytest.mark.parametrize(
    "a, b",
    [
        ([0.98, 0.981, 0.979], [0.97, 0.972, 0.969]),
        ([0.5, 0.7, 0.2, 0.9, 0.4], [0.45, 0.6, 0.3]),
        ([1.0, 1.1], [1.0, 1.5, 2.0, 0.7]),
    ],
)
def test_welch_matches_scipy(a, b):
    expected = scipy_stats.ttest_ind(a, b, equal_var=False).pvalue
    assert stats.welch_p(a, b) == pytest.approx(expected, rel=1e-12)


def test_welch_decides_within_noise():
    best = [0.981, 0.979, 0.983]
    assert stats.within_noise(best, [0.980, 0.982, 0.978])  # overlapping: not worse
    assert not stats.within_noise(best, [0.950, 0.951, 0.949])  # clearly worse
    assert not stats.within_noise(best, [0.980])  # one seed: no test, no mark
    assert stats.welch_p([0.9, 0.9], [0.9, 0.9]) == 1.0  # no spread, equal
    assert stats.welch_p([0.9, 0.9], [0.8, 0.8]) == 0.0  # no spread, different
