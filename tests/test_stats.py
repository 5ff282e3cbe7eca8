"""The statistics over seeds: intervals against scipy.stats and by hand, Welch's test
against published examples and closed forms (not the scipy call it makes)."""

from __future__ import annotations

import math

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


def test_welch_on_the_published_examples():
    # Wikipedia, "Welch's t-test", Examples 1 and 2: t = -2.46, df 24.99, p = 0.021 and
    # t = -1.57, df 9.9, p = 0.149 (quoted there to these digits)
    a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    assert stats.welch_p(a1, a2) == pytest.approx(0.021, abs=0.0005)
    b1 = [17.2, 20.9, 22.6, 18.1, 21.7, 21.4, 23.5, 24.2, 14.7, 21.8]
    b2 = [21.5, 22.8, 21.0, 23.0, 21.6, 23.6, 22.5, 20.7, 23.4, 21.8,
          20.7, 21.7, 21.5, 22.5, 23.6, 21.5, 22.5, 23.5, 21.5, 21.8]  # fmt: skip
    assert stats.welch_p(b1, b2) == pytest.approx(0.149, abs=0.0005)


def test_welch_by_hand_where_students_t_has_a_closed_form():
    # [1, 3] vs [4, 6]: variances 2 and 2, n = 2 each, so t = -3 / sqrt(2 / 2 + 2 / 2) and
    # Welch's df = 2^2 / (1^2 / 1 + 1^2 / 1) = 2; with 2 df, P(|T| > |t|) = 1 - |t| / sqrt(2 + t^2)
    t = -3 / math.sqrt(2)
    assert stats.welch_p([1.0, 3.0], [4.0, 6.0]) == pytest.approx(
        1 - abs(t) / math.sqrt(2 + t * t), rel=1e-9
    )
    # [1, 2, 3] vs [4, 5, 6]: variances 1 and 1, n = 3 each: t = -3 / sqrt(2 / 3), df = 4;
    # with 4 df, F(|t|) = 1/2 + 3/8 u (1 - u^2 / 12) where u = |t| / sqrt(1 + t^2 / 4)
    t = -3 / math.sqrt(2 / 3)
    u = abs(t) / math.sqrt(1 + t * t / 4)
    upper = 0.5 - 3 / 8 * u * (1 - u * u / 12)  # P(T > |t|)
    assert stats.welch_p([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx(2 * upper, rel=1e-9)


def test_welch_decides_within_noise():
    best = [0.981, 0.979, 0.983]
    assert stats.within_noise(best, [0.980, 0.982, 0.978])  # overlapping: not worse
    assert not stats.within_noise(best, [0.950, 0.951, 0.949])  # clearly worse
    assert not stats.within_noise(best, [0.980])  # one seed: no test, no mark
    assert stats.welch_p([0.9, 0.9], [0.9, 0.9]) == 1.0  # no spread, equal
    assert stats.welch_p([0.9, 0.9], [0.8, 0.8]) == 0.0  # no spread, different
