"""The stateless policies (greedy, uniform, epsilon-greedy, softmax): exact propensities, checked against brute force
and against sampling frequencies."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tailored.policies.base import Candidates, Feedback, parse_policy

SPECS = ["greedy", "uniform", "softmax:temperature=0.5", "softmax:temperature=0.05", "epsilon-greedy:epsilon=0.3",
         "epsilon-greedy:epsilon=1", "epsilon-greedy:epsilon=0"]


def candidates(n: int, seed: int = 0) -> Candidates:
    scores = np.sort(np.random.default_rng(seed).normal(size=n))[::-1]
    return Candidates(np.array([f"i{c}" for c in range(n)]), scores, np.zeros(n, bool))


def frequencies(spec: str, pool: Candidates, k: int, draws: int, seed: int = 1) -> np.ndarray:
    """How often each candidate landed at each position over ``draws`` slates, checking every slate's propensities
    against the marginals on the way."""
    policy = parse_policy(spec)
    marginals = policy.marginals(pool, k)
    rng = np.random.default_rng(seed)
    counts = np.zeros((len(pool), k))
    for _ in range(draws):
        slate = policy.choose(pool, k, rng)
        positions = np.arange(len(slate))
        np.testing.assert_allclose(slate.propensities, marginals[slate.chosen, positions], rtol=0, atol=1e-12)
        counts[slate.chosen, positions] += 1
    return counts / draws


def assert_matches_sampling(frequency: np.ndarray, marginals: np.ndarray, draws: int) -> None:
    """Every cell within 5 standard errors of its binomial frequency (plus a hair for the exact zeros and ones)."""
    tolerance = 5 * np.sqrt(np.clip(marginals * (1 - marginals), 0, None) / draws) + 1e-9
    assert np.all(np.abs(frequency - marginals) <= tolerance), np.abs(frequency - marginals).max()


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(("n", "k"), [(5, 3), (4, 4), (3, 5), (12, 4)])
def test_sampling_frequencies_match_the_marginals(spec: str, n: int, k: int) -> None:
    pool = candidates(n)
    marginals = parse_policy(spec).marginals(pool, k)
    assert marginals.shape == (n, k)
    np.testing.assert_allclose(marginals.sum(axis=0)[: min(n, k)], 1.0, atol=1e-12)
    assert np.all(marginals[:, min(n, k):] == 0)
    assert np.all(marginals.sum(axis=1) <= 1 + 1e-12)
    draws = 3000
    assert_matches_sampling(frequencies(spec, pool, k, draws), marginals, draws)


def brute_force_epsilon_greedy(epsilon: float, n: int, k: int) -> np.ndarray:
    """Enumerates every explored set and every ordered draw of the pool: the marginals by definition."""
    marginals = np.zeros((n, k))
    for explored in itertools.product([False, True], repeat=k):
        weight = np.prod([epsilon if e else 1 - epsilon for e in explored])
        kept = {p for p in range(k) if not explored[p]}
        pool = [c for c in range(n) if c not in kept]
        holes = [p for p in range(k) if explored[p]]
        draws = list(itertools.permutations(pool, len(holes)))
        for p in kept:
            marginals[p, p] += weight
        for draw in draws:
            for p, c in zip(holes, draw):
                marginals[c, p] += weight / len(draws)
    return marginals


@pytest.mark.parametrize("epsilon", [0.0, 0.2, 0.7, 1.0])
@pytest.mark.parametrize(("n", "k"), [(5, 3), (4, 4), (6, 2)])
def test_epsilon_greedy_marginals_equal_enumeration(epsilon: float, n: int, k: int) -> None:
    policy = parse_policy(f"epsilon-greedy:epsilon={epsilon}")
    np.testing.assert_allclose(policy.marginals(candidates(n), k), brute_force_epsilon_greedy(epsilon, n, k),
                               rtol=0, atol=1e-12)


def test_epsilon_extremes_are_greedy_and_uniform() -> None:
    pool = candidates(9)
    np.testing.assert_array_equal(parse_policy("epsilon-greedy:epsilon=0").marginals(pool, 4),
                                  parse_policy("greedy").marginals(pool, 4))
    np.testing.assert_allclose(parse_policy("epsilon-greedy:epsilon=1").marginals(pool, 4),
                               parse_policy("uniform").marginals(pool, 4), atol=1e-15)


def test_greedy_shows_the_candidates_order() -> None:
    slate = parse_policy("greedy").choose(candidates(20), 5, np.random.default_rng(0))
    np.testing.assert_array_equal(slate.chosen, np.arange(5))
    np.testing.assert_array_equal(slate.propensities, np.ones(5))


@pytest.mark.parametrize("spec", SPECS)
def test_same_seed_same_slate_and_learning_changes_nothing(spec: str) -> None:
    policy, pool = parse_policy(spec), candidates(50)
    before = policy.marginals(pool, 10)
    policy.learn(Feedback(np.array(["i3"]), np.array([1]), np.array([1.0])))
    np.testing.assert_array_equal(policy.marginals(pool, 10), before)
    first = [policy.choose(pool, 10, np.random.default_rng([7, seed])) for seed in range(20)]
    again = [policy.choose(pool, 10, np.random.default_rng([7, seed])) for seed in range(20)]
    for one, two in zip(first, again):
        np.testing.assert_array_equal(one.chosen, two.chosen)
        np.testing.assert_array_equal(one.propensities, two.propensities)
        assert len(np.unique(one.chosen)) == 10
