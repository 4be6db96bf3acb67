"""janus.evaluate.stats, the one statistics module (judge and toxicity): against hand-computed
values and against scipy.stats called directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from janus.evaluate.stats import bootstrap_mean_ci, pearson


def test_pearson_by_hand():
    # x = (1, 2, 3), y = (1, 3, 2): deviations (-1, 0, 1) and (-1, 1, 0): r = 1 / sqrt(2 * 2)
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    # (0, 0, 1, 1) vs (0, 1, 0, 1): uncorrelated
    assert pearson([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0)


def test_pearson_is_undefined_below_three_points_or_for_a_constant_side():
    assert pearson([0.2, 0.9], [0.1, 0.5]) is None  # two points: always +-1, measures nothing
    assert pearson([0.3], [0.4]) is None
    assert pearson([], []) is None
    assert pearson([0.5, 0.5, 0.5], [0.1, 0.9, 0.3]) is None
    with pytest.raises(ValueError, match="differ in length"):
        pearson([1, 2, 3], [1, 2])


def test_pearson_is_scipys():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(3, 30))
        x, y = rng.integers(1, 6, n).astype(float), rng.normal(size=n)
        if x.std() == 0:
            continue
        assert pearson(list(x), list(y)) == scipy_stats.pearsonr(x, y).statistic


def test_bootstrap_of_two_values_by_hand():
    # resampled means of (a, b) are a, (a + b) / 2 or b with chances 1/4, 1/2, 1/4: the 2.5th
    # and 97.5th percentiles are a and b
    assert bootstrap_mean_ci([0.0, 1.0], 2000, seed=1) == [0.0, 1.0]
    assert bootstrap_mean_ci([2.0, 4.0], 2000, seed=5) == [2.0, 4.0]


def test_bootstrap_edges():
    assert bootstrap_mean_ci([], 100, seed=0) is None
    assert bootstrap_mean_ci([0.4, 0.7], 0, seed=0) is None  # no resamples, no interval
    assert bootstrap_mean_ci([0.7], 100, seed=0) == [0.7, 0.7]  # one item (scipy needs two)
    assert bootstrap_mean_ci([3.0, 3.0, 3.0], 100, seed=0) == [3.0, 3.0]  # no spread, no width


def test_bootstrap_is_scipys_percentile_interval_and_seeded():
    values = [0.1, 0.2, 0.9, 0.4, 0.3, 0.8]
    low, high = bootstrap_mean_ci(values, 999, seed=3)
    expected = scipy_stats.bootstrap(
        (np.asarray(values),),
        np.mean,
        n_resamples=999,
        confidence_level=0.95,
        method="percentile",
        rng=np.random.default_rng(3),
    ).confidence_interval
    assert [low, high] == [expected.low, expected.high]
    assert low < sum(values) / len(values) < high
    assert bootstrap_mean_ci(values, 999, seed=3) == [low, high]
    assert bootstrap_mean_ci(values, 999, seed=4) != [low, high]
    # the mean's standard error shrinks like 1/sqrt(n): six copies of the data, a narrower CI
    narrow_low, narrow_high = bootstrap_mean_ci(values * 6, 999, seed=3)
    assert narrow_high - narrow_low < (high - low) / math.sqrt(6) * 1.5
