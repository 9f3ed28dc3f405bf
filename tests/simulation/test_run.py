"""Policies driven through a world in process: common random numbers, the engine's candidates only, new items
joined as they arrive, the log for off-policy evaluation, the report."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest

from tailored.errors import ConfigError
from tailored.pipeline.slates import candidate_lists, candidates_of
from tailored.policies.base import Candidates, Feedback, Slate, parse_policy
from tailored.query import Query
from tailored.simulation.run import (LOG_COLUMNS, EngineDriver, SimulationReport, Traffic, oracle_clicks, simulate,
                                     trained_model)
from tailored.simulation.world import World, WorldSpec

SMALL = {"users": 200, "items": 250, "categories": 10}
IMPRESSIONS = 2_000


@dataclass(eq=False)
class SpyPolicy:
    """Greedy, recording what it is given."""

    policy: ClassVar[str] = "spy"
    seen: list[Candidates] = field(default_factory=list)
    learned: list[Feedback] = field(default_factory=list)

    def choose(self, candidates: Candidates, k: int, rng: np.random.Generator) -> Slate:
        self.seen.append(candidates)
        return Slate(np.arange(k), np.ones(k))

    def marginals(self, candidates: Candidates, k: int) -> np.ndarray:
        return np.eye(len(candidates), k)

    def learn(self, feedback: Feedback) -> None:
        self.learned.append(feedback)

    def params(self) -> dict[str, Any]:
        return {}


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldSpec(scenario="new-items", **SMALL))


@pytest.fixture(scope="module")
def report(world: World) -> SimulationReport:
    """greedy then uniform, with their logs."""
    return simulate(world, ["greedy", "uniform"], impressions=IMPRESSIONS, seed=2, keep_log=True)


def test_same_policy_twice_gets_the_same_clicks(world: World, report: SimulationReport) -> None:
    first, again = report.runs[1], simulate(world, ["uniform"], impressions=IMPRESSIONS, seed=2).runs[0]
    np.testing.assert_array_equal(first.clicks, again.clicks)
    np.testing.assert_array_equal(first.revenue, again.revenue)
    other_seed = simulate(world, ["uniform"], impressions=IMPRESSIONS, seed=6).runs[0]
    assert not np.array_equal(first.clicks, other_seed.clicks)


def test_policies_share_the_users_and_draws(report: SimulationReport) -> None:
    """Where two policies show the same item at the same position of the same list, they get the same click."""
    greedy, uniform = (run.log.set_index(["exposure_id", "position"]) for run in report.runs)
    assert (greedy["user_id"].groupby(level=0).first() == uniform["user_id"].groupby(level=0).first()).all()
    both = greedy.join(uniform.add_suffix("_uniform"), how="inner")
    same = both[both["item_id"] == both["item_id_uniform"]]
    assert len(same) > 20
    np.testing.assert_array_equal(same["click"], same["click_uniform"])
    np.testing.assert_array_equal(report.runs[0].oracle, report.runs[1].oracle)


def test_regret_is_never_negative_and_greedy_beats_random(report: SimulationReport) -> None:
    for run in report.runs:
        assert (run.oracle - run.expected >= -1e-12).all()
    greedy, uniform = (run.summary() for run in report.runs)
    assert greedy["expected_click_rate"] > 1.2 * uniform["expected_click_rate"]
    assert greedy["regret"] < uniform["regret"]


def test_policies_see_only_the_engine_candidates(world: World) -> None:
    spy = SpyPolicy()
    simulate(world, [spy], impressions=500)
    assert len(spy.seen) == 500
    model = trained_model(world)
    traffic = Traffic.of(world, 500)
    expected = candidates_of(model, Query(world.user_ids[traffic.users[0]]), 10)
    np.testing.assert_array_equal(spy.seen[0].item_ids, expected.item_ids)
    np.testing.assert_array_equal(spy.seen[0].scores, expected.scores)
    # nothing reachable from what the policy was given leads to the world's truth
    hidden = {id(world), id(world._users), id(world._items), id(world._appeal)}
    frontier, visited = [spy.seen[0], *spy.learned[:2]], set()
    for _ in range(4):
        frontier = [ref for obj in frontier for ref in gc.get_referents(obj) if id(ref) not in visited]
        visited |= {id(obj) for obj in frontier}
        assert not visited & hidden
    assert all(feedback.rewards is None or set(feedback.rewards) == {1.0} for feedback in spy.learned)
    # contextual policies learn each row's features: its list's user vector (the scorer's, als here)
    impressions = spy.learned[0]
    assert impressions.rewards is None and impressions.features.shape == (len(impressions.item_ids),
                                                                           len(expected.user_vector))
    np.testing.assert_allclose(impressions.features[:10], np.tile(spy.seen[0].user_vector, (10, 1)))


def test_batched_candidates_equal_candidates_of(world: World) -> None:
    model = trained_model(world).with_items(world.item_table(np.flatnonzero(world.new)))
    users = world.user_ids[[0, 7, 42, 199]]
    for user, batched in zip(users, candidate_lists(model, users, 10), strict=True):
        single = candidates_of(model, Query(user), 10)
        np.testing.assert_array_equal(batched.item_ids, single.item_ids)
        np.testing.assert_allclose(batched.scores, single.scores, rtol=1e-5)  # one block or one row: float32 sums
        np.testing.assert_array_equal(batched.new, single.new)
        np.testing.assert_allclose(batched.item_vectors, single.item_vectors)
        np.testing.assert_allclose(batched.user_vector, single.user_vector)


def test_new_items_become_candidates_when_they_arrive(world: World, report: SimulationReport) -> None:
    run, traffic = report.runs[1], Traffic.of(world, IMPRESSIONS, seed=2)
    first_wave = np.searchsorted(traffic.moments, world.arrivals()[0][0])
    assert run.new_shown[:first_wave].sum() == 0 and run.new_shown[first_wave:].sum() > 0
    log = run.log
    new_ids = set(world.item_ids[world.new])
    arrived = dict(zip(world.item_ids, world.timestamp(world.arrival), strict=True))
    shown_new = log[log["item_id"].isin(new_ids)]
    assert (shown_new["created_at"] >= shown_new["item_id"].map(arrived)).all()
    assert any(candidates.new.any() for candidates in run.candidates)


def test_keep_log_writes_the_feedback_log_format(report: SimulationReport) -> None:
    run = report.runs[1]
    log = run.log
    assert list(log.columns) == LOG_COLUMNS
    assert len(log) == IMPRESSIONS * 10 and log["exposure_id"].nunique() == IMPRESSIONS
    assert len(run.candidates) == IMPRESSIONS
    assert log["click"].sum() == run.clicks.sum() and log["revenue"].sum() == pytest.approx(run.revenue.sum())
    assert log["position"].between(1, 10).all() and log["propensity"].between(0, 1, inclusive="right").all()
    assert (log["policy"] == "uniform").all()
    # each list's candidates, in order: the logged items are among them, with the logged propensity
    first = log[log["exposure_id"] == log["exposure_id"].iloc[0]]
    candidates = run.candidates[0]
    assert set(first["item_id"]) <= set(candidates.item_ids)
    marginals = parse_policy("uniform").marginals(candidates, 10)
    rows = [int(np.flatnonzero(candidates.item_ids == item)[0]) for item in first["item_id"]]
    np.testing.assert_allclose(marginals[rows, first["position"] - 1], first["propensity"])


def test_report_sets_each_policy_beside_the_baseline(report: SimulationReport) -> None:
    data = report.to_dict()
    assert data["baseline"] == "greedy" and data["scenario"] == "new-items"
    greedy, uniform = data["policies"]
    assert greedy["vs_baseline"]["clicks"] == 1.0
    assert uniform["vs_baseline"]["clicks"] == pytest.approx(uniform["second_half"]["clicks"]
                                                             / greedy["second_half"]["clicks"])
    assert greedy["second_half"]["lists"] == IMPRESSIONS // 2


def test_oracle_clicks_match_the_best_lists(world: World) -> None:
    traffic = Traffic.of(world, 100)
    _, best = world.best(traffic.users, traffic.moments, 10)
    np.testing.assert_allclose(oracle_clicks(world, traffic, block=7), best @ world.theta(10))


def test_bad_runs_are_refused(world: World) -> None:
    with pytest.raises(ConfigError, match="at least one --policy"):
        simulate(world, [])
    with pytest.raises(ConfigError, match="impressions"):
        simulate(world, ["greedy"], impressions=1)
    with pytest.raises(ConfigError, match="update_every"):
        EngineDriver(update_every=0)
    with pytest.raises(ConfigError, match="nope"):
        simulate(world, ["greedy", "nope"])


def test_a_fixed_model_grows_stale_as_tastes_drift() -> None:
    drift = World(WorldSpec(scenario="drift"))  # the default size: the model learns tastes, not only appeal
    run = simulate(drift, ["greedy"], impressions=IMPRESSIONS).runs[0]
    whole, second = run.summary(), run.summary(second_half=True)
    first_half_rate = 2 * whole["expected_click_rate"] - second["expected_click_rate"]
    assert second["expected_click_rate"] < 0.9 * first_half_rate
    assert second["regret_per_list"] > whole["regret_per_list"]
