from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tailored.errors import ConfigError, DataError
from tailored.experiments.statistics import (
    Moments,
    UserTotals,
    compare,
    cuped_theta,
    decide,
    estimate,
    group_sequential_p_value,
    msprt_p_value,
    needed_users,
    srm_p_value,
    sup_brownian_sf,
    verdict,
)


def clustered_arm(rng: np.random.Generator, users: int, rate: float, lift: float = 0.0) -> tuple[np.ndarray, ...]:
    """Per-user lists (1 + Poisson 4) and clicks Binomial(lists, p_u) with p_u ~ Beta(mean rate, strength 2):
    heterogeneous users, so a user's lists are correlated."""
    lists = 1 + rng.poisson(4.0, users)
    p = rng.beta(2 * rate, 2 * (1 - rate), users) * (1 + lift)
    return lists, rng.binomial(lists, np.clip(p, 0, 1))


def test_the_ratio_variance_is_the_delta_method_over_users() -> None:
    rng = np.random.default_rng(0)
    lists, clicks = clustered_arm(rng, 5000, 0.1)
    found = estimate(Moments.of(clicks, lists))
    ratio = clicks.sum() / lists.sum()
    influence = (clicks - ratio * lists) / lists.mean()
    assert found.value == pytest.approx(ratio, rel=1e-12)
    assert found.variance == pytest.approx(np.var(influence, ddof=1) / 5000, rel=1e-9)
    mean = estimate(Moments.of(clicks))
    assert mean.variance == pytest.approx(np.var(clicks, ddof=1) / 5000, rel=1e-9)


def test_the_lift_interval_covers_at_its_level_where_a_per_list_interval_does_not() -> None:
    rng = np.random.default_rng(1)
    runs, users = 400, 2000
    shape = (runs, users)
    lists = 1 + rng.poisson(4.0, (2, *shape))
    p = rng.beta(0.2, 1.8, (2, *shape))
    clicks = rng.binomial(lists, p)
    comparison = compare(Moments.of(clicks[0], lists[0]), Moments.of(clicks[1], lists[1]), "click_rate")
    covered = (comparison.ci_low <= 0) & (0 <= comparison.ci_high)
    assert abs(covered.mean() - 0.95) < 0.03
    naive_se = np.sqrt(2 * 0.1 * 0.9 / lists.sum(-1).mean()) / 0.1  # lists taken as independent Bernoulli trials
    assert np.mean(np.abs(comparison.lift) <= 1.96 * naive_se) < 0.85


def test_the_fixed_tests_match_their_closed_forms_and_scipy() -> None:
    converted = np.r_[np.ones(100), np.zeros(900)], np.r_[np.ones(130), np.zeros(870)]
    ones = np.ones(1000)
    conversion = compare(Moments.of(converted[0]), Moments.of(converted[1]), "conversion")
    pooled = 230 / 2000
    z = 0.03 / np.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert conversion.test == "two-proportion"
    assert float(conversion.test_p_value) == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)
    assert float(conversion.lift) == pytest.approx(0.3)
    rng = np.random.default_rng(2)
    control, treatment = rng.lognormal(0, 1, 800), rng.lognormal(0.1, 1.2, 1200)
    revenue = compare(Moments.of(control), Moments.of(treatment), "revenue_per_user")
    assert float(revenue.test_p_value) == pytest.approx(stats.ttest_ind(treatment, control, equal_var=False).pvalue)
    basket = compare(Moments.of(control, ones[:800]), Moments.of(treatment, np.ones(1200)), "average_basket")
    assert basket.test == "delta"
    with pytest.raises(ConfigError, match="Unknown metric 'ctr': choose one of click_rate, conversion"):
        compare(Moments.of(control), Moments.of(treatment), "ctr")


def test_cuped_theta_is_cov_over_var_and_narrows_by_the_correlation() -> None:
    rng = np.random.default_rng(3)
    runs, users, rho = 300, 3000, 0.8
    pre = rng.normal(10, 2, (2, runs, users))
    spend = 10 + rho * (pre - 10) + np.sqrt(1 - rho**2) * rng.normal(0, 2, (2, runs, users))
    spend[1] += 0.1  # a true difference of 0.1 (lift 1 %)
    arms = [Moments.of(spend[a], covariate=pre[a]) for a in range(2)]
    theta = cuped_theta(arms)
    covariance = sum(np.cov(pre[a, 0], spend[a, 0])[0, 1] for a in range(2))
    assert theta[0] == pytest.approx(covariance / sum(np.var(pre[a, 0], ddof=1) for a in range(2)), rel=1e-9)
    plain = compare(*arms, "revenue_per_user")
    adjusted = compare(*arms, "revenue_per_user", cuped=True)
    ratio = np.median((adjusted.ci_high - adjusted.ci_low) / (plain.ci_high - plain.ci_low))
    assert ratio == pytest.approx(np.sqrt(1 - rho**2), abs=0.02)
    assert np.mean(adjusted.lift) == pytest.approx(0.01, abs=0.001)  # unbiased
    assert np.std(adjusted.lift) < 0.7 * np.std(plain.lift)


def test_srm_is_the_chi_square_against_the_shares() -> None:
    assert srm_p_value([50_500, 49_500], [50, 50]) == pytest.approx(stats.chi2.sf(10.0, 1), rel=1e-9)
    assert srm_p_value([45_000, 45_000, 10_000], [45, 45, 10]) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="one share per arm"):
        srm_p_value([1, 2], [100])


def test_msprt_p_value_closed_form() -> None:
    assert msprt_p_value(np.array(0.0), np.array(0.01), 0.1) == 1.0
    expected = 1 / (np.sqrt(0.5) * np.exp(0.04 / (4 * 0.01)))  # v = tau^2 = 0.01, lift 0.2
    assert float(msprt_p_value(np.array(0.2), np.array(0.01), 0.1)) == pytest.approx(expected)


def test_the_brownian_maximum_matches_a_random_walk_and_its_known_quantile() -> None:
    assert float(sup_brownian_sf(np.array(2.2414))) == pytest.approx(0.05, abs=1e-5)
    assert float(sup_brownian_sf(np.array(1.0))) == pytest.approx(float(sup_brownian_sf(np.array(0.9999999))))
    rng = np.random.default_rng(7)
    walk = np.abs(np.cumsum(rng.normal(0, 1 / np.sqrt(2000), (4000, 2000)), -1)).max(-1)
    for c in (1.0, 1.5, 2.0):
        assert np.mean(walk >= c) == pytest.approx(float(sup_brownian_sf(np.array(c))), abs=0.025)


def test_the_group_sequential_boundary_is_obrien_fleming_shaped() -> None:
    lift, variance = np.array([0.1, 0.1]), np.array([0.0025, 0.0025])  # z = 2 at both
    half, full = group_sequential_p_value(lift, variance, np.array([500, 1000]), 1000)
    assert float(full) == pytest.approx(float(sup_brownian_sf(np.array(2.0))))
    assert float(half) == pytest.approx(float(sup_brownian_sf(np.array(2.0 * np.sqrt(0.5)))))
    assert half > full > 2 * stats.norm.sf(2.0)  # early looks pay more; the final look a little


def daily_peeks(rng: np.random.Generator, runs: int, users: int, lift: float,
                days: int = 14) -> tuple[Moments, Moments]:
    """Each arm's (run, day) moments of clicks over lists, from cumulative per-user totals at each day's end: users
    arrive over the days, list counts Poisson(Gamma) per day, clicks Binomial(lists, Beta)."""
    arrival = rng.integers(0, days, (2, runs, users))
    rate = rng.gamma(0.5, 1.0, (2, runs, users))
    per_day = rng.poisson(rate[..., None] * (np.arange(days) >= arrival[..., None]))
    p = rng.beta(0.5, 4.5, (2, runs, users)) * np.array([1.0, 1.0 + lift])[:, None, None]
    clicks = rng.binomial(per_day, p[..., None]).cumsum(-1)
    lists = per_day.cumsum(-1)
    clicks, lists = np.moveaxis(clicks, -1, -2), np.moveaxis(lists, -1, -2)
    control, treatment = (Moments.of(clicks[arm], lists[arm], where=lists[arm] > 0) for arm in range(2))
    return control, treatment


def test_peeking_every_day_keeps_the_msprt_false_positive_rate_below_alpha() -> None:
    control, treatment = daily_peeks(np.random.default_rng(4), 300, 600, 0.0)
    comparison = compare(control, treatment, "click_rate", tau=0.05)
    enough = np.minimum(control.n, treatment.n) >= 100
    msprt_winner = (verdict(comparison, alpha=0.05, min_users=100) != 0).any(-1)
    naive_winner = ((comparison.test_p_value <= 0.05) & enough).any(-1)
    final_look = comparison.test_p_value[:, -1] <= 0.05
    assert msprt_winner.mean() <= 0.05
    users = control.n + treatment.n
    sequential = group_sequential_p_value(comparison.lift, comparison.lift_variance, users, users[:, -1:])
    assert ((sequential <= 0.05) & enough).any(-1).mean() <= 0.05
    assert naive_winner.mean() > 0.09  # peeking at the fixed test inflates its 5 % (0.123 with this seed)
    assert abs(final_look.mean() - 0.05) < 0.03  # one look at the fixed test is honest


def test_needed_users_gives_the_power_it_promises() -> None:
    rng = np.random.default_rng(5)
    variance_per_user, mde = 2.0, 0.05
    needed = needed_users(10_000, variance_per_user / 10_000, mde, alpha=0.05, power=0.8)
    variance = variance_per_user / needed
    lifts = rng.normal(mde, np.sqrt(variance), 20_000)
    assert np.mean(msprt_p_value(lifts, np.full_like(lifts, variance), mde) <= 0.05) == pytest.approx(0.8, abs=0.015)
    larger = needed_users(10_000, variance_per_user / 10_000, mde / 2)
    assert larger > 3 * needed
    with pytest.raises(DataError, match="Cannot size the experiment"):
        needed_users(0, 1.0, 0.05)


def test_the_decision_reads_ship_roll_back_or_keep_running() -> None:
    rng = np.random.default_rng(6)

    def arms(lift: float, users: int) -> tuple[Moments, Moments]:
        return tuple(Moments.of(*clustered_arm(rng, users, 0.1, arm_lift)[::-1]) for arm_lift in (0.0, lift))

    assert decide(compare(*arms(0.3, 20_000), "click_rate")).text == "ship"
    assert decide(compare(*arms(-0.3, 20_000), "click_rate")).text == "roll back"
    waiting = decide(compare(*arms(0.0, 500), "click_rate"), mde=0.05)
    assert waiting.text == f"keep running: {waiting.needed_users:,} more users needed"
    assert waiting.needed_users > 10_000
    too_few = decide(compare(*arms(0.3, 50), "click_rate"), min_users=100)
    assert too_few.text.startswith("keep running")
    worse_guardrail = compare(*arms(-0.3, 20_000), "click_rate")
    assert decide(compare(*arms(0.3, 20_000), "click_rate"), guardrails={"conversion": worse_guardrail}).text == (
        "roll back")


def test_user_totals_name_the_bad_field() -> None:
    with pytest.raises(DataError, match="User totals 'revenue' has an invalid value -1.0 at row 1"):
        UserTotals(np.ones(3), np.zeros(3), np.zeros(3), np.array([0.0, -1.0, 2.0]))
    with pytest.raises(DataError, match="different lengths"):
        UserTotals(np.ones(3), np.zeros(2), np.zeros(3), np.zeros(3))
