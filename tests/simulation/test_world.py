"""The simulated world: seeded, the position-based click model, items arriving with attributes, drifting tastes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.errors import ConfigError
from tailored.simulation.run import Traffic, outcome
from tailored.simulation.world import ARRIVAL_SPAN, World, WorldSpec

SMALL = {"users": 300, "items": 200, "categories": 10}


def test_same_seed_same_world_and_history() -> None:
    first, again = World(WorldSpec(seed=3, **SMALL)), World(WorldSpec(seed=3, **SMALL))
    other = World(WorldSpec(seed=4, **SMALL))
    pd.testing.assert_frame_equal(first.history(), again.history())
    pd.testing.assert_frame_equal(first.item_table(), again.item_table())
    assert not first.history().equals(other.history())
    users, items = np.arange(20)[:, None], np.arange(200)[None, :]
    np.testing.assert_array_equal(first.attraction(users, items), again.attraction(users, items))


def test_empirical_click_rate_by_position_is_theta_times_attraction() -> None:
    world = World(WorldSpec(scenario="static", **SMALL))
    traffic = Traffic.of(world, 40_000, k=10, seed=1)
    shown = np.random.default_rng(0).choice(200, (len(traffic), 10))  # any lists: the model is about positions
    answer = outcome(world, traffic, slice(None), shown)
    attraction = world.attraction(traffic.users[:, None], shown)
    # clicks / attraction per position estimates theta_p (E[click / r] = theta_p given the list)
    estimate = (answer.clicks / attraction).mean(axis=0)
    error = (answer.clicks / attraction).std(axis=0) / np.sqrt(len(traffic))
    np.testing.assert_array_less(np.abs(estimate - world.theta(10)), 4 * error)
    assert world.theta(10)[0] == 1.0 and (np.diff(world.theta(10)) < 0).all()
    # and the click rate per list is the sum of theta_p r
    assert answer.clicks.sum(axis=1).mean() == pytest.approx(answer.expected.mean(), rel=0.03)
    assert not answer.purchases[~answer.clicks].any()
    np.testing.assert_array_equal(answer.revenue > 0, answer.purchases)


def test_new_items_arrive_later_carry_attributes_and_appeal_more() -> None:
    world = World(WorldSpec(scenario="new-items", **SMALL))
    assert world.new.sum() == pytest.approx(0.2 * 200, abs=SMALL["categories"])
    waves = world.arrivals()
    assert len(waves) > 1 and all(0 < moment < ARRIVAL_SPAN for moment, _ in waves)
    assert not world.available(0.0)[world.new].any() and world.available(1.0).all()
    trained = set(world.history()["item_id"])
    assert trained.isdisjoint(world.item_ids[world.new])
    table = world.item_table(np.flatnonzero(world.new))
    assert list(table.columns) == ["item_id", "category", "price"] and table["price"].gt(0).all()
    attraction = world.attraction(np.arange(300)[:, None], np.arange(200)[None, :])
    assert attraction[:, world.new].mean() > 1.2 * attraction[:, ~world.new].mean()
    assert not World(WorldSpec(scenario="static", **SMALL)).new.any()


def test_attributes_predict_part_of_the_attraction() -> None:
    """Items of one category are liked alike (their vectors share a centre): the attraction of a user to an item
    correlates with the same user's mean attraction to the item's category."""
    world = World(WorldSpec(scenario="static", users=300, items=1_000, categories=10))
    attraction = world.attraction(np.arange(300)[:, None], np.arange(1_000)[None, :])
    by_category = np.stack([attraction[:, world.categories == c].mean(axis=1) for c in range(10)], axis=1)
    correlation = np.corrcoef(attraction.ravel(), by_category[:, world.categories].ravel())[0, 1]
    assert 0.3 < correlation < 0.95
    log_price = np.log(world.prices)
    assert abs(np.corrcoef(log_price, world._items[:, 0])[0, 1]) > 0.3  # price tells of a latent factor


def test_drift_rotates_tastes_only_in_the_drift_scenario() -> None:
    users, items = np.arange(100)[:, None], np.arange(200)[None, :]
    drift = World(WorldSpec(scenario="drift", **SMALL))
    static = World(WorldSpec(scenario="static", **SMALL))
    np.testing.assert_array_equal(static.attraction(users, items, 0.0), static.attraction(users, items, 1.0))
    start, end = drift.attraction(users, items, 0.0), drift.attraction(users, items, 1.0)
    assert np.corrcoef(start.ravel(), end.ravel())[0, 1] < 0.6
    assert np.corrcoef(start.ravel(), drift.attraction(users, items, 0.05).ravel())[0, 1] > 0.95


def test_a_wider_taste_makes_users_disagree_more_and_drift_cost_more() -> None:
    """``taste`` scales the users' factors: users differ more on one item, and drifted tastes correlate less with
    the start (what a stale model loses), the items' appeal weighing less."""
    users, items = np.arange(200)[:, None], np.arange(200)[None, :]

    def spread_and_drift(taste: float) -> tuple[float, float]:
        world = World(WorldSpec(scenario="drift", taste=taste, **SMALL))
        logit = np.log(world.attraction(users, items, 0.0) / (1 - world.attraction(users, items, 0.0)))
        end = world.attraction(users, items, 1.0)
        return float(logit.std(axis=0).mean()), float(np.corrcoef(world.attraction(users, items, 0.0).ravel(),
                                                                   end.ravel())[0, 1])

    (narrow_spread, narrow_kept), (wide_spread, wide_kept) = spread_and_drift(1.2), spread_and_drift(3.0)
    assert wide_spread > 2 * narrow_spread and wide_kept < narrow_kept


def test_the_oracle_holds_the_best_available_items() -> None:
    world = World(WorldSpec(scenario="new-items", **SMALL))
    users, moments = np.arange(50), np.zeros(50)
    items, values = world.best(users, moments, 10)
    assert not world.new[items].any()
    attraction = world.attraction(users[:, None], np.flatnonzero(~world.new)[None, :])
    np.testing.assert_allclose(values, -np.sort(-attraction, axis=1)[:, :10])
    later_items, _ = world.best(users, np.ones(50), 10)
    assert world.new[later_items].any()


@pytest.mark.parametrize(("field", "value"), [("scenario", "seasonal"), ("users", 0), ("new_share", 1.5),
                                              ("items", 15), ("taste", -1.0)])
def test_bad_specs_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field if field != "scenario" else "seasonal"):
        WorldSpec(**{**SMALL, field: value})
