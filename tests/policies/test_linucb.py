"""linucb: the A and b sums (position-weighted), the upper confidence bound on a hand-computed case, order
independence, deterministic propensities."""

from __future__ import annotations

import numpy as np
import pytest

from tailored.errors import ConfigError, DataError
from tailored.policies.base import Candidates, Feedback, parse_policy, spec_of
from tailored.policies.linucb import LinUCBPolicy

USER = np.array([1.0, 0.0])


def two_items() -> Candidates:
    return Candidates(np.array(["a", "b"], dtype=object), np.zeros(2), np.zeros(2, bool), user_vector=USER,
                      item_vectors=np.zeros((2, 2)))


def learned(alpha: float) -> LinUCBPolicy:
    policy = LinUCBPolicy(alpha=alpha, prior_weight=0.0)
    rows = np.array(["a", "a", "a"], dtype=object)
    policy.learn(Feedback(rows, np.array([1, 1, 3]), features=np.tile(USER, (3, 1))))
    policy.learn(Feedback(rows[:2], np.array([1, 3]), np.array([1.0, 1.0]), np.tile(USER, (2, 1))))
    return policy


def test_sums_weigh_rows_by_the_examination_of_their_position() -> None:
    state = learned(1.0).state()
    theta_3 = 1 / np.log2(4)  # 0.5
    np.testing.assert_allclose(state["A"][0], [[2 + theta_3**2, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(state["b"][0], [1 + theta_3, 0.0])


@pytest.mark.parametrize(("alpha", "first"), [(2.0, "b"), (0.1, "a")])
def test_upper_confidence_bound_by_hand(alpha: float, first: str) -> None:
    policy = learned(alpha)
    a_design = 1.0 + 2.25  # reg + 1 + 1 + 0.25 on the first coordinate
    expected_a = 1.5 / a_design + alpha * np.sqrt(1 / a_design)
    expected_b = alpha * 1.0  # no feedback: A = I, b = 0
    np.testing.assert_allclose(policy.upper_bounds(two_items()), [expected_a, expected_b])
    slate = policy.choose(two_items(), 2, np.random.default_rng(0))
    assert two_items().item_ids[slate.chosen[0]] == first
    np.testing.assert_array_equal(slate.propensities, [1.0, 1.0])
    np.testing.assert_array_equal(policy.marginals(two_items(), 2)[slate.chosen, [0, 1]], [1.0, 1.0])


def test_learning_is_order_independent() -> None:
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(40):
        items = np.array([f"i{c}" for c in rng.choice(20, 5, replace=False)], dtype=object)
        features = np.tile(rng.normal(size=4), (5, 1))
        batches.append(Feedback(items, np.arange(1, 6), features=features))
        batches.append(Feedback(items, np.arange(1, 6), (rng.random(5) < 0.3).astype(float), features))
    one, other = LinUCBPolicy(), LinUCBPolicy()
    for batch in batches:
        one.learn(batch)
    for index in rng.permutation(len(batches)):
        other.learn(batches[index])
    np.testing.assert_array_equal(one.state()["item_ids"], other.state()["item_ids"])
    for key in ("A", "b"):
        np.testing.assert_allclose(one.state()[key], other.state()[key], rtol=1e-12, atol=1e-12)


def test_without_feedback_the_scorers_order_stands() -> None:
    candidates = Candidates(np.array(["x", "y", "z"], dtype=object), np.array([3.0, 2.0, 1.0]), np.zeros(3, bool),
                            user_vector=np.ones(2))
    for prior_weight in (0.0, 0.05):
        slate = LinUCBPolicy(prior_weight=prior_weight).choose(candidates, 3, np.random.default_rng(0))
        np.testing.assert_array_equal(slate.chosen, [0, 1, 2])


def test_bad_parameters_and_features_are_named() -> None:
    assert spec_of(parse_policy("linucb:alpha=1.0")) == "linucb:alpha=1.0,reg=1.0,prior_weight=0.05"
    with pytest.raises(ConfigError, match="alpha"):
        parse_policy("linucb:alpha=-1")
    with pytest.raises(ConfigError, match="reg"):
        parse_policy("linucb:reg=0")
    policy = learned(1.0)
    with pytest.raises(DataError, match="3 columns"):
        policy.learn(Feedback(np.array(["a"], dtype=object), np.array([1]), features=np.ones((1, 3))))
