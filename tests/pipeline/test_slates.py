"""pipeline/slates: the candidates a policy chooses from are the model's best `candidate_count` items, then the
user's best `new_candidate_count` new items not among them -- the same from `candidates_of` (one request) and
`candidate_lists` (a block of users)."""

from __future__ import annotations

import numpy as np
import pytest

from tailored.pipeline.recommender import Recommender
from tailored.pipeline.slates import candidate_count, candidate_lists, candidates_of, new_candidate_count
from tailored.query import Query
from tailored.simulation.run import trained_model
from tailored.simulation.world import World, WorldSpec

K = 4


@pytest.fixture(scope="module")
def grown() -> tuple[World, Recommender]:
    world = World(WorldSpec(scenario="new-items", users=60, items=300, categories=5, seed=3, history_lists=10))
    arrived = np.concatenate([items for _, items in world.arrivals()])
    return world, trained_model(world).with_items(world.item_table(arrived))


def test_the_candidates_are_the_model_top_then_the_user_best_new_items(grown: tuple[World, Recommender]) -> None:
    world, model = grown
    new_only = model.restricted_to(model.new_items_.added["item_id"].to_numpy())
    for user in world.user_ids[:5]:
        candidates = candidates_of(model, Query(user), K)
        top = model.recommend_one(Query(user), candidate_count(K))
        assert candidates.item_ids[:len(top)].tolist() == top.item_ids.tolist()
        extra = candidates.item_ids[len(top):]
        assert len(extra) == new_candidate_count(K) and candidates.new[len(top):].all()
        ranked = [item for item in new_only.recommend_one(Query(user), 60).item_ids if item not in set(top.item_ids)]
        assert extra.tolist() == ranked[:new_candidate_count(K)]  # the best new items by attributes, in order
        assert len(set(candidates.item_ids)) == len(candidates)


def test_a_block_of_users_gets_the_candidates_of_each_request(grown: tuple[World, Recommender]) -> None:
    world, model = grown
    users = world.user_ids[:8]
    for user, block in zip(users, candidate_lists(model, users, K), strict=True):
        one = candidates_of(model, Query(user), K)
        assert block.item_ids.tolist() == one.item_ids.tolist()
        np.testing.assert_array_equal(block.new, one.new)
        np.testing.assert_allclose(block.scores, one.scores, rtol=1e-5, atol=1e-6)
