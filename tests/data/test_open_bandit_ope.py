"""The Open Bandit target: every estimator's 95 % interval of the Random policy's click rate, estimated from the
Bernoulli Thompson Sampling log of the sample shipped with obp, contains Random's on-policy rate; dm's interval holds
its reward model's error (refitted on each resample) instead of shrinking to the spread over records."""

from __future__ import annotations

from tests.conftest import require_extra


def test_every_interval_contains_the_random_policys_on_policy_rate() -> None:
    require_extra("feedback", "obp")
    from tailored.benchmarks.ope import open_bandit

    table = open_bandit("all", samples=400).set_index("estimator")
    assert table["contains"].all(), table
    on_policy = table["random_on_policy"].iloc[0]
    dm = table.loc["dm"]
    assert dm["ci_high"] - dm["ci_low"] > 0.2 * on_policy  # 40-odd clicks: the model is far from exact
