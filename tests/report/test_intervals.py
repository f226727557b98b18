"""The bootstrap interval of a difference and the t interval over seeds, against direct computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tune_app.report.intervals import RESAMPLES, bootstrap_difference, excludes_zero, mean_interval


def test_bootstrap_interval_matches_a_direct_resampling_loop():
    a, b = [0.81, 0.84, 0.86, 0.9], [0.78, 0.8, 0.83]
    rng = np.random.default_rng(0)
    # the same draws as the vectorised version: all of a's resamples, then all of b's
    ia = rng.integers(0, len(a), (RESAMPLES, len(a)))
    ib = rng.integers(0, len(b), (RESAMPLES, len(b)))
    diffs = [np.mean(np.array(a)[i]) - np.mean(np.array(b)[j]) for i, j in zip(ia, ib)]
    assert bootstrap_difference(a, b) == pytest.approx(tuple(np.quantile(diffs, [0.05, 0.95])))


def test_bootstrap_interval_brackets_the_difference_of_means_and_narrows_with_more_trials():
    rng = np.random.default_rng(1)
    few = bootstrap_difference(rng.normal(0.9, 0.02, 4), rng.normal(0.8, 0.02, 4))
    many = bootstrap_difference(rng.normal(0.9, 0.02, 100), rng.normal(0.8, 0.02, 100))
    assert few[0] < 0.1 + 0.05 and few[1] > 0.1 - 0.05
    assert many[0] < 0.1 < many[1]
    assert many[1] - many[0] < few[1] - few[0]


def test_a_group_of_one_gives_no_interval_and_nans_are_left_out():
    assert all(math.isnan(x) for x in bootstrap_difference([0.9], [0.8, 0.7]))
    assert all(math.isnan(x) for x in bootstrap_difference([0.9, math.nan], [0.8, 0.7]))
    assert not excludes_zero(math.nan, math.nan)
    assert excludes_zero(0.01, 0.2) and excludes_zero(-0.2, -0.01) and not excludes_zero(-0.01, 0.2)


def test_mean_interval_is_students_t_interval():
    values = [0.91, 0.93, 0.88]
    expected = stats.t.interval(0.9, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert mean_interval(values) == pytest.approx(expected)
    assert all(math.isnan(x) for x in mean_interval([0.9]))
