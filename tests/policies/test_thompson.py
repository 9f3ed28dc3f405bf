"""thompson: exact propensities (sampling frequencies), order-independent state keyed by item ids, the scorer's prior,
learning from position-debiased clicks, new items (adaptive and reserved slots), erasure by rebuild."""

from __future__ import annotations

import numpy as np
import pytest

from tailored.errors import ConfigError, DataError
from tailored.policies.base import Candidates, Feedback, parse_policy, spec_of
from tailored.policies.draw_marginals import ranked_marginals
from tailored.policies.thompson import ThompsonPolicy


def pool(n: int = 30, new: int = 6, seed: int = 0, prefix: str = "i") -> Candidates:
    rng = np.random.default_rng(seed)
    flags = np.zeros(n, bool)
    flags[n - new:] = True
    return Candidates(np.array([f"{prefix}{c}" for c in range(n)], dtype=object),
                      np.round(np.sort(rng.normal(size=n))[::-1], 1), flags)  # rounded: ties on purpose


def rows_of(candidates: Candidates, rng: np.random.Generator, lists: int = 300) -> list[Feedback]:
    """Impressions and clicks of ``lists`` random lists of 10 candidates, as a service would feed them."""
    feedback = []
    for _ in range(lists):
        shown = candidates.item_ids[rng.choice(len(candidates), 10, replace=False)]
        positions = np.arange(1, 11)
        feedback.append(Feedback(shown, positions))
        clicked = rng.random(10) < 0.3 / positions
        feedback.append(Feedback(shown[clicked], positions[clicked], np.ones(int(clicked.sum()))))
    return feedback


def trained(feedback: list[Feedback], **params: object) -> ThompsonPolicy:
    policy = ThompsonPolicy(**params)  # type: ignore[arg-type]
    for rows in feedback:
        policy.learn(rows)
    return policy


@pytest.mark.parametrize("slots", [0, 2])
def test_propensities_are_the_sampling_frequencies(slots: int) -> None:
    candidates = pool()
    policy = trained(rows_of(candidates, np.random.default_rng(1), 40), new_item_slots=slots,
                     uniform_share=0.0)  # the ranking alone (its floor: test_thompson_floor.py)
    marginals = policy.marginals(candidates, 10)
    draws, counts = 6_000, np.zeros((len(candidates), 10))
    for seed in range(draws):
        slate = policy.choose(candidates, 10, np.random.default_rng(seed))
        counts[slate.chosen, np.arange(10)] += 1
        if seed < 50:
            np.testing.assert_allclose(slate.propensities, marginals[slate.chosen, np.arange(10)], rtol=1e-12)
    frequencies = counts / draws
    spread = 5 * np.sqrt(marginals * (1 - marginals) / draws) + 4 / draws  # 5 standard errors (+ rare cells' luck)
    assert np.abs(frequencies - marginals).max() < 0.03
    assert np.all(np.abs(frequencies - marginals) < spread)
    np.testing.assert_allclose(marginals.sum(axis=0), 1.0, atol=1e-12)
    if slots:
        np.testing.assert_allclose(marginals[candidates.new].sum(), slots, atol=1e-12)  # exactly 2 new per slate


def test_ranked_marginals_by_enumeration() -> None:
    """Three candidates with 3 draws each: every one of the 27 outcomes enumerated."""
    values = np.array([[0.0, 1.0, 2.0], [0.5, 1.0, 1.5], [-1.0, 0.9, 3.0]])
    weights = np.array([1 / 6, 2 / 3, 1 / 6])  # probabilities of ATOMS (-sqrt 3, 0, +sqrt 3) in this order
    order = np.argsort(np.polynomial.hermite_e.hermegauss(3)[0])
    values = values[:, np.argsort(order)]
    expected = np.zeros((3, 2))
    for a in range(3):
        for b in range(3):
            for c in range(3):
                draw = np.array([values[0, a], values[1, b], values[2, c]])
                top = np.lexsort((np.arange(3), -draw))[:2]
                probability = weights[order][a] * weights[order][b] * weights[order][c]
                expected[top, [0, 1]] += probability
    np.testing.assert_allclose(ranked_marginals(values, np.zeros(3, bool), (2, 2), np.arange(3)), expected,
                               atol=1e-12)


def test_learning_is_order_independent_and_keyed_by_ids() -> None:
    candidates = pool()
    feedback = rows_of(candidates, np.random.default_rng(2))
    shuffled = [feedback[i] for i in np.random.default_rng(3).permutation(len(feedback))]
    one, other = trained(feedback), trained(shuffled)
    for key, value in one.state().items():
        np.testing.assert_array_equal(value, other.state()[key])
    for seed in range(5):  # the same state decides the same slates
        np.testing.assert_array_equal(one.choose(candidates, 10, np.random.default_rng(seed)).chosen,
                                      other.choose(candidates, 10, np.random.default_rng(seed)).chosen)
    renamed = Candidates(np.array([f"x{c}" for c in range(len(candidates))], dtype=object), candidates.scores,
                         candidates.new)  # the same request over items without feedback: the prior alone
    np.testing.assert_allclose(one.marginals(renamed, 10), ThompsonPolicy().marginals(candidates, 10), atol=1e-12)
    assert not np.allclose(one.marginals(candidates, 10), ThompsonPolicy().marginals(candidates, 10))


def test_erasure_is_the_rebuild_without_the_users_rows() -> None:
    candidates = pool()
    rng = np.random.default_rng(5)
    kept, erased = rows_of(candidates, rng, 100), rows_of(candidates, rng, 30)
    online = trained(kept + erased)
    rebuilt = trained(kept)
    assert not np.array_equal(online.state()["impressions"], rebuilt.state()["impressions"])
    for key, value in trained(kept[::-1]).state().items():
        np.testing.assert_array_equal(value, rebuilt.state()[key])


def test_a_new_item_with_many_clicks_rises() -> None:
    candidates = pool(new=6)
    star = candidates.item_ids[-1]  # the lowest-scored new item
    policy = ThompsonPolicy(uniform_share=0.0)  # the ranking alone: no uniformly drawn lists
    before = policy.marginals(candidates, 10)[-1].sum()
    positions = np.repeat(np.arange(1, 11), 20)
    policy.learn(Feedback(np.repeat(star, len(positions)), positions))
    policy.learn(Feedback(np.repeat(star, len(positions)), positions, np.ones(len(positions))))
    others = candidates.item_ids[:10]
    policy.learn(Feedback(np.tile(others, 20), np.tile(np.arange(1, 11), 20)))
    after = policy.marginals(candidates, 10)
    assert after[-1].sum() > 0.99 > 0.5 > before
    assert after[-1].sum() > after[:10].sum(axis=1).max()  # shown more often than the unclicked known items
    means, _ = policy.posterior(candidates, 10)
    assert means[-1] > means[candidates.new][:-1].mean() - 1.0  # the pool's average new item lifts less than it


def test_a_known_item_starts_where_the_model_puts_it() -> None:
    candidates = pool(new=0)
    marginals = ThompsonPolicy().marginals(candidates, 10)
    assert np.all(np.diff(marginals.sum(axis=1)) <= 1e-12)  # a better score is never shown less often
    assert np.all(np.diff(marginals[:, 0]) <= 1e-12)  # nor first less often
    assert marginals[0, 0] > 2 * marginals[9, 0] and marginals[:10].sum() > 0.5 * 10  # the model's top mostly shown


def test_clicks_low_in_the_list_count_for_more() -> None:
    """Two items with the same clicks: the one clicked at position 8 had fewer examinations, so it ranks higher."""
    candidates = Candidates(np.array(["top", "deep"], dtype=object), np.zeros(2), np.zeros(2, bool))
    policy = ThompsonPolicy()
    for position, item in ((1, "top"), (8, "deep")):
        policy.learn(Feedback(np.repeat(item, 200), np.full(200, position)))
        policy.learn(Feedback(np.repeat(item, 20), np.full(20, position), np.ones(20)))
    means, _ = policy.posterior(candidates, 1)
    assert means[1] > means[0]


def test_state_grows_with_new_items_while_serving() -> None:
    policy = ThompsonPolicy()
    policy.learn(Feedback(np.array(["a", "b"], dtype=object), np.array([1, 2])))
    grown = [f"n{c}" for c in range(40)]
    policy.learn(Feedback(np.array(grown, dtype=object), np.arange(1, 41)))  # deeper positions too
    policy.learn(Feedback(np.array(["a"], dtype=object), np.array([1]), np.array([1.0])))
    state = policy.state()
    assert len(state["item_ids"]) == 42 and state["impressions"].shape == (42, 40)
    assert state["impressions"][list(state["item_ids"]).index("a"), 0] == 1
    assert state["rewards"][list(state["item_ids"]).index("a"), 0] == 1
    assert state["impressions"][list(state["item_ids"]).index("n39"), 39] == 1


def test_reserved_slots_hold_exactly_that_many_new_items() -> None:
    candidates = pool(new=6)
    policy = parse_policy("thompson:new_item_slots=3,uniform_share=0")  # uniformly drawn lists hold any mix
    for seed in range(20):
        slate = policy.choose(candidates, 10, np.random.default_rng(seed))
        assert candidates.new[slate.chosen].sum() == 3
    assert parse_policy(spec_of(policy)).params() == policy.params()


def test_bad_parameters_and_feedback_are_named() -> None:
    with pytest.raises(ConfigError, match="prior_clicks"):
        parse_policy("thompson:prior_clicks=0")
    with pytest.raises(ConfigError, match="new_item_slots"):
        parse_policy("thompson:new_item_slots=-1")
    with pytest.raises(DataError, match="position 0"):
        ThompsonPolicy().learn(Feedback(np.array(["a"], dtype=object), np.array([0])))


def test_atoms_drawn_by_inversion_are_numpys_weighted_choice() -> None:
    """`choose` draws each candidate's atom by inverting the cumulative weights: the very stream of
    ``rng.choice(3, n, p=WEIGHTS)`` (so a logged list is drawn again the same way), at a fraction of its cost."""
    from tailored.policies.draw_marginals import WEIGHTS
    from tailored.policies.thompson import _CUMULATIVE

    for seed in range(50):
        n = 1 + seed * 7
        expected = np.random.default_rng(seed).choice(3, n, p=WEIGHTS)
        drawn = np.searchsorted(_CUMULATIVE, np.random.default_rng(seed).random(n), side="right")
        np.testing.assert_array_equal(drawn, expected)
