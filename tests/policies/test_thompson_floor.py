"""thompson's propensity floor (``uniform_share``): a share of the lists drawn as `uniform` draws them. Its
propensities are the exact mixture marginals (enumeration, sampling frequencies), every (candidate, position) is
supported, so importance weights against other policies are bounded, and the lists not explored are thompson's."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tailored.errors import ConfigError
from tailored.policies.base import Candidates, Feedback, parse_policy, spec_of
from tailored.policies.draw_marginals import ATOMS, WEIGHTS
from tailored.policies.thompson import ThompsonPolicy
from tailored.policies.uniform import UniformPolicy


def pool(n: int = 30, new: int = 6, spread: float = 1.0) -> Candidates:
    flags = np.zeros(n, bool)
    flags[n - new:] = True
    scores = np.round(spread * np.sort(np.random.default_rng(0).normal(size=n))[::-1], 1)  # rounded: ties
    return Candidates(np.array([f"i{c}" for c in range(n)], dtype=object), scores, flags)


def sure(candidates: Candidates, **params: object) -> ThompsonPolicy:
    """A thompson whose posterior is sure of the candidates' order: many lists with clicks in the model's order."""
    policy = ThompsonPolicy(**params)  # type: ignore[arg-type]
    items, positions = np.tile(candidates.item_ids, 200), np.tile(np.arange(1, len(candidates) + 1), 200)
    policy.learn(Feedback(items, positions))
    clicked = np.random.default_rng(1).random(len(items)) < 0.5 * 0.8 ** (positions - 1)
    policy.learn(Feedback(items[clicked], positions[clicked], np.ones(int(clicked.sum()))))
    return policy


@pytest.mark.parametrize("slots", [0, 2])
def test_propensities_are_the_mixtures_sampling_frequencies(slots: int) -> None:
    candidates = pool()
    policy = sure(candidates, new_item_slots=slots, uniform_share=0.3)
    marginals = policy.marginals(candidates, 10)
    draws, counts = 8_000, np.zeros((len(candidates), 10))
    for seed in range(draws):
        slate = policy.choose(candidates, 10, np.random.default_rng(seed))
        counts[slate.chosen, np.arange(10)] += 1
        np.testing.assert_allclose(slate.propensities, marginals[slate.chosen, np.arange(10)], rtol=1e-12)
    frequencies = counts / draws
    assert np.all(np.abs(frequencies - marginals) < 5 * np.sqrt(marginals * (1 - marginals) / draws) + 4 / draws)
    np.testing.assert_allclose(marginals.sum(axis=0), 1.0, atol=1e-12)
    assert np.all(marginals.sum(axis=1) <= 1 + 1e-12)
    assert marginals.min() >= 0.3 / len(candidates) - 1e-15  # the floor


def test_mixture_marginals_by_enumeration() -> None:
    """Three candidates, two positions: the 27 atom outcomes of the sampler and the 6 ordered uniform lists, each
    enumerated with its probability."""
    candidates = Candidates(np.array(["a", "b", "c"], dtype=object), np.array([1.0, 0.2, -0.7]), np.zeros(3, bool))
    share = 0.25
    policy = ThompsonPolicy(uniform_share=share)
    values = policy.draws(candidates, 2)
    expected = np.zeros((3, 2))
    for atoms in itertools.product(range(len(ATOMS)), repeat=3):
        draw = values[np.arange(3), atoms]
        top = np.lexsort((np.arange(3), -draw))[:2]
        expected[top, [0, 1]] += (1 - share) * np.prod(WEIGHTS[list(atoms)])
    for ordered in itertools.permutations(range(3), 2):
        expected[list(ordered), [0, 1]] += share / 6
    np.testing.assert_allclose(policy.marginals(candidates, 2), expected, atol=1e-12)
    padded = policy.marginals(candidates, 4)
    assert padded.shape == (3, 4) and np.all(padded[:, 3] == 0)  # no fourth candidate: nothing at position 4


def test_the_floor_bounds_importance_weights_where_thompson_is_sure() -> None:
    """thompson sure of its order leaves other policies' cells unsupported (propensity 0 where they put mass); the
    floor bounds every weight target / logging by n / uniform_share, and epsilon-greedy's explored cells by about
    epsilon / uniform_share."""
    candidates = pool(n=50, new=0, spread=3.0)
    n, share = len(candidates), 0.02
    bare, floored = sure(candidates, uniform_share=0.0), sure(candidates, uniform_share=share)
    logged_bare, logged = bare.marginals(candidates, 10), floored.marginals(candidates, 10)
    assert (logged_bare == 0).sum() > n  # many (candidate, position) cells thompson never fills
    np.testing.assert_allclose(logged, (1 - share) * logged_bare + share / n, atol=1e-15)
    for spec in ("greedy", "epsilon-greedy:epsilon=0.1", "softmax:temperature=0.5", "uniform"):
        target = parse_policy(spec).marginals(candidates, 10)
        if spec.startswith(("epsilon", "uniform")):  # exploring targets leave the bare sampler's support
            assert np.any((target > 0) & (logged_bare == 0)), spec
        assert (target / logged).max() <= n / share + 1e-9, spec
    explored = parse_policy("epsilon-greedy:epsilon=0.1").marginals(candidates, 10)
    outside = logged_bare == 0
    assert (explored[outside] / logged[outside]).max() <= 0.1 / share * n / (n - 9) + 1e-9


def test_lists_not_explored_are_thompsons_own() -> None:
    """The explore draw comes after the sampler's: with the same stream, a floored list is either the list of
    ``uniform_share=0`` or an explored one, the explored share is ``uniform_share``, and share 0 draws nothing more."""
    candidates = pool()
    bare, floored = ThompsonPolicy(uniform_share=0.0), ThompsonPolicy(uniform_share=0.2)
    lists, same = 3_000, 0
    for seed in range(lists):
        ours = floored.choose(candidates, 10, np.random.default_rng(seed))
        theirs = bare.choose(candidates, 10, np.random.default_rng(seed))
        same += np.array_equal(ours.chosen, theirs.chosen)
    explored = 1 - same / lists
    assert abs(explored - 0.2) < 5 * np.sqrt(0.2 * 0.8 / lists)
    rng = np.random.default_rng(7)
    bare.choose(candidates, 10, rng)
    after = rng.random()
    rng = np.random.default_rng(7)
    rng.random(len(candidates))  # the sampler's one draw per candidate, nothing else
    assert rng.random() == after


def test_share_one_is_uniform_and_bad_shares_are_named() -> None:
    candidates = pool()
    np.testing.assert_allclose(ThompsonPolicy(uniform_share=1.0).marginals(candidates, 10),
                               UniformPolicy().marginals(candidates, 10), atol=1e-15)
    for bad in ("-0.1", "1.5", "nan"):
        with pytest.raises(ConfigError, match="uniform_share"):
            parse_policy(f"thompson:uniform_share={bad}")
    policy = parse_policy("thompson:uniform_share=0.05,new_item_slots=2")
    assert parse_policy(spec_of(policy)).params() == policy.params()
    assert ThompsonPolicy(uniform_share=0.5).marginals(Candidates(np.array([], dtype=object), np.array([]),
                                                                  np.array([], bool)), 10).shape == (0, 10)
