from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tailored.errors import ConfigError, DataError
from tailored.experiments.statistics import UserTotals, estimate
from tailored.experiments.status import arms_from_frame, experiment_status


def arm(rng: np.random.Generator, users: int, rate: float) -> UserTotals:
    lists = 1 + rng.poisson(3.0, users)
    clicks = rng.binomial(lists, rate)
    purchases = rng.binomial(clicks, 0.2)
    revenue = purchases * rng.lognormal(3, 0.5, users)
    return UserTotals(lists, clicks, purchases, revenue, pre_period=revenue * 0.5 + rng.normal(0, 5, users))


def test_the_status_reads_like_the_contract() -> None:
    rng = np.random.default_rng(0)
    arms = {"control": arm(rng, 45_000, 0.10), "treatment": arm(rng, 45_000, 0.12), "holdout": arm(rng, 10_000, 0.05)}
    status = experiment_status("checkout", arms, {"control": 45, "treatment": 45, "holdout": 10}, cuped=True)
    json.dumps(status)  # plain JSON
    assert status["name"] == "checkout"
    control = status["arms"]["control"]
    assert control["users"] == 45_000 and control["exposures"] == int(arms["control"].lists.sum())
    rate = arms["control"].clicks.sum() / arms["control"].lists.sum()
    assert control["click_rate"]["value"] == pytest.approx(rate)
    low, high = control["click_rate"]["ci"]
    assert low < rate < high
    assert control["average_basket"]["value"] == pytest.approx(arms["control"].revenue.sum()
                                                               / arms["control"].purchases.sum())
    assert control["conversion"]["value"] == pytest.approx(np.mean(arms["control"].purchases > 0))
    lift = status["lift"]["treatment"]["click_rate"]
    assert lift["value"] == pytest.approx(0.2, abs=0.03) and lift["ci"][0] < lift["value"] < lift["ci"][1]
    assert lift["p_value"] < 0.05 and lift["test"] == "delta"
    assert status["lift"]["holdout"]["click_rate"]["value"] == pytest.approx(-0.5, abs=0.03)
    assert status["lift"]["treatment"]["conversion"]["test"] == "welch"  # CUPED-adjusted values: Welch, not pooled z
    assert status["decision"] == "ship" and status["needed_users"] == 0
    assert status["srm_p_value"] > 0.001 and status["warnings"] == []


def test_a_broken_split_warns_and_an_early_status_asks_for_users() -> None:
    rng = np.random.default_rng(1)
    arms = {"control": arm(rng, 600, 0.10), "treatment": arm(rng, 500, 0.10)}
    status = experiment_status("early", arms, {"control": 50, "treatment": 50})
    assert status["srm_p_value"] < 0.01
    assert status["decision"] == f"keep running: {status['needed_users']:,} more users needed"
    assert status["needed_users"] > 1000
    skewed = experiment_status("skewed", {"control": arm(rng, 6000, 0.1), "treatment": arm(rng, 5000, 0.1)},
                               {"control": 50, "treatment": 50})
    assert skewed["warnings"] and skewed["warnings"][0].startswith("sample-ratio mismatch")


def test_a_group_sequential_status_counts_down_to_its_planned_users() -> None:
    rng = np.random.default_rng(4)
    arms = {"control": arm(rng, 3000, 0.10), "treatment": arm(rng, 3000, 0.10)}
    status = experiment_status("planned", arms, {"control": 50, "treatment": 50}, planned_users=10_000)
    assert status["rule"] == "group-sequential"
    assert status["decision"] == "keep running: 4,000 more users needed" and status["needed_users"] == 4000
    lift = status["lift"]["treatment"]["click_rate"]
    assert lift["p_value"] >= lift["test_p_value"]  # the boundary is wider than one fixed look's


def test_empty_or_clickless_arms_give_nulls_and_ask_for_users() -> None:
    empty = UserTotals(*(np.array([]) for _ in range(4)))
    clickless = UserTotals(np.ones(500), np.zeros(500), np.zeros(500), np.zeros(500))
    with np.errstate(all="raise"):
        status = experiment_status("x", {"control": empty, "treatment": clickless}, {"control": 50, "treatment": 50})
    assert status["arms"]["control"]["click_rate"] == {"value": None, "ci": [None, None]}
    assert status["lift"]["treatment"]["click_rate"]["p_value"] == 1.0
    assert status["decision"] == "keep running: 100 more users needed"
    json.dumps(status)


def test_arms_from_a_frame_leave_out_unexposed_rows() -> None:
    frame = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "arm": ["control", "treatment", "control", "control"],
                          "lists": [2, 3, 0, 1], "clicks": [1, 0, 0, 1], "purchases": [0, 0, 0, 1],
                          "revenue": [0.0, 0.0, 0.0, 9.5], "spend_before": [1.0, 2.0, 3.0, 4.0]})
    arms = arms_from_frame(frame, covariate="spend_before")
    assert arms["control"].users == 2 and arms["treatment"].users == 1
    assert arms["control"].pre_period.tolist() == [1.0, 4.0]
    assert float(estimate(arms["control"].moments("click_rate")).value) == pytest.approx(2 / 3)
    with pytest.raises(DataError, match=r"lacks the columns \['revenue'\]"):
        arms_from_frame(frame.drop(columns="revenue"))


def test_the_holdout_is_reported_but_never_decides() -> None:
    rng = np.random.default_rng(3)
    arms = {"control": arm(rng, 20_000, 0.10), "treatment": arm(rng, 20_000, 0.10), "holdout": arm(rng, 5000, 0.05)}
    status = experiment_status("value", arms, {"control": 45, "treatment": 45, "holdout": 10})
    assert status["lift"]["holdout"]["click_rate"]["p_value"] < 1e-6  # the engine's value is plain
    assert status["decision"].startswith("keep running")
    with pytest.raises(ConfigError, match="has no treatment arm beside 'control' and the holdout"):
        experiment_status("value", {"control": arms["control"], "holdout": arms["holdout"]},
                          {"control": 90, "holdout": 10})


@pytest.mark.parametrize(("shares", "control", "message"), [
    ({"control": 50, "treatment": 50}, "baseline", "Control arm 'baseline' is not among the arms"),
    ({"control": 100}, "control", "Traffic shares name arms \\['control'\\] but the data has arms"),
])
def test_bad_status_requests_are_named(shares: dict[str, int], control: str, message: str) -> None:
    rng = np.random.default_rng(2)
    with pytest.raises(ConfigError, match=message):
        experiment_status("x", {"control": arm(rng, 100, 0.1), "treatment": arm(rng, 100, 0.1)}, shares,
                          control=control)
