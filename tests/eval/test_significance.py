"""Paired tests agree with scipy, align users, and handle identical systems; the bootstrap's undefined resamples."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tailored.errors import DataError
from tailored.eval.measures import Pooled, intervals
from tailored.eval.significance import paired_test


def test_paired_test_matches_scipy_and_bootstrap() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(200)
    b = a - 0.05 + 0.1 * rng.standard_normal(200)
    result = paired_test(a, b, bootstrap=500, seed=3)
    assert result.n_users == 200 and result.mean_difference == pytest.approx(np.mean(a - b))
    assert result.t_pvalue == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert result.wilcoxon_pvalue == pytest.approx(stats.wilcoxon(a, b).pvalue)
    means = (a - b)[np.random.default_rng(3).integers(0, 200, (500, 200))].mean(axis=1)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    assert result.ci_low < result.mean_difference < result.ci_high


def test_identical_systems_have_p_one() -> None:
    values = np.array([0.1, 0.5, 0.2])
    result = paired_test(values, values.copy())
    assert (result.t_pvalue, result.wilcoxon_pvalue, result.mean_difference) == (1.0, 1.0, 0.0)


def test_describe_says_the_difference_its_interval_and_both_p_values() -> None:
    result = paired_test(np.array([0.5, 0.25, 1.0, 0.5]), np.array([0.25, 0.25, 0.5, 0.0]), confidence=0.9)
    sentence = result.describe("ease", "popularity", "ndcg@10")
    assert sentence.startswith("ease - popularity on ndcg@10 over the same 4 users: +0.3125 (0.5625 vs 0.2500; 90% "
                               f"bootstrap interval [{result.ci_low:+.4f}, {result.ci_high:+.4f}]), paired t-test p = ")
    assert sentence.endswith(f"Wilcoxon signed-rank p = {result.wilcoxon_pvalue:.3g}.")


def test_series_align_on_users_and_drop_nan_pairs() -> None:
    a = pd.Series([1.0, 0.0, 0.5, np.nan], index=["u1", "u2", "u3", "u4"])
    b = pd.Series([0.0, 0.5, 1.0, 0.2], index=["u4", "u3", "u1", "u2"])
    result = paired_test(a, b, bootstrap=0)
    # aligned pairs: u1 (1, 1), u2 (0, .2), u3 (.5, .5); u4 dropped (NaN)
    assert result.n_users == 3 and result.mean_difference == pytest.approx(-0.2 / 3)
    with pytest.raises(DataError, match="1 users are on one side only"):
        paired_test(a, b.drop("u2").rename({"u1": "u1"}).iloc[:3])


def test_an_interval_is_nan_when_a_resample_leaves_its_metric_undefined() -> None:
    once = Pooled.per_user("once", np.array([np.nan, np.nan, np.nan, np.nan, 1.0]))  # defined for one user in five
    everyone = Pooled.per_user("everyone", np.array([0.0, 0.5, 1.0, 0.5, 1.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning about it
        low, high = intervals([once, everyone], 200, 0, 0.95)
    assert np.isnan(low[0]) and np.isnan(high[0]) and 0.0 <= low[1] < high[1] <= 1.0
