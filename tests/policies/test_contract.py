"""What every registered policy promises (`Policy` protocol): a slate of distinct candidates, propensities in (0, 1]
that are the exact position marginals, the same slate for the same random stream, before and after learning."""

from __future__ import annotations

import numpy as np
import pytest

from tailored.policies.base import POLICIES, Candidates, Feedback, Policy, Slate


def candidates(n: int, seed: int = 0, new: int = 0) -> Candidates:
    """A request's candidates, best first, with vectors and context for the contextual policies."""
    rng = np.random.default_rng(seed)
    flags = np.zeros(n, bool)
    flags[rng.choice(n, size=new, replace=False)] = True
    return Candidates(np.array([f"item-{seed}-{c}" for c in range(n)]), np.sort(rng.normal(size=n))[::-1], flags,
                      user_vector=rng.normal(size=8), item_vectors=rng.normal(size=(n, 8)), context=rng.normal(size=3))


def assert_slate_contract(policy: Policy, pool: Candidates, k: int, seed: int) -> Slate:
    slate = policy.choose(pool, k, np.random.default_rng([seed, 1]))
    shown = min(k, len(pool))
    assert len(slate.chosen) == len(slate.propensities) == shown
    assert np.issubdtype(slate.chosen.dtype, np.integer)
    assert len(np.unique(slate.chosen)) == shown and np.all((slate.chosen >= 0) & (slate.chosen < len(pool)))
    assert np.all((slate.propensities > 0) & (slate.propensities <= 1))
    marginals = policy.marginals(pool, k)
    assert marginals.shape == (len(pool), k)
    np.testing.assert_allclose(slate.propensities, marginals[slate.chosen, np.arange(shown)], rtol=1e-9, atol=1e-12)
    assert np.all(marginals >= 0) and np.all(marginals.sum(axis=1) <= 1 + 1e-6)
    np.testing.assert_allclose(marginals.sum(axis=0)[:shown], 1.0, atol=1e-6)
    assert np.all(marginals[:, shown:] == 0)
    again = policy.choose(pool, k, np.random.default_rng([seed, 1]))
    np.testing.assert_array_equal(again.chosen, slate.chosen)
    np.testing.assert_array_equal(again.propensities, slate.propensities)
    return slate


@pytest.mark.parametrize("name", POLICIES.names())
@pytest.mark.parametrize(("n", "k", "new"), [(50, 10, 0), (50, 10, 10), (6, 10, 1), (1, 3, 0)])
def test_every_policy_keeps_the_contract(name: str, n: int, k: int, new: int) -> None:
    policy = POLICIES[name]()
    for seed in range(3):
        assert_slate_contract(policy, candidates(n, seed, new), k, seed)


@pytest.mark.parametrize("name", POLICIES.names())
def test_every_policy_keeps_the_contract_after_learning(name: str) -> None:
    policy, pool = POLICIES[name](), candidates(50, 0, new=10)
    rng = np.random.default_rng(5)
    for _ in range(30):
        slate = policy.choose(pool, 10, rng)
        shown_ids, positions = pool.item_ids[slate.chosen], np.arange(1, 11)
        policy.learn(Feedback(shown_ids, positions))
        clicks = (rng.random(10) < 0.3 / positions).astype(float)
        features = None if pool.item_vectors is None else pool.item_vectors[slate.chosen]
        policy.learn(Feedback(shown_ids, positions, clicks, features))
    for seed in range(3):
        assert_slate_contract(policy, pool, 10, seed)


@pytest.mark.parametrize("name", POLICIES.names())
def test_every_policy_chooses_nothing_from_nothing(name: str) -> None:
    pool = candidates(0)
    slate = POLICIES[name]().choose(pool, 10, np.random.default_rng(0))
    assert len(slate.chosen) == 0
    assert POLICIES[name]().marginals(pool, 10).shape == (0, 10)
