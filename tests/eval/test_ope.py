"""Off-policy estimators: exact agreement with Open Bandit Pipeline, coverage of the bootstrap intervals on a
simulated position-based world, support and effective-sample-size warnings, bad logs."""

from __future__ import annotations

import numpy as np
import pytest

from tailored.errors import ConfigError, DataError
from tailored.eval.ope import ESTIMATORS, PositionBasedRewards, SlateLog, estimate
from tests.conftest import require_extra

ITEMS, DEPTH = 20, 4
THETA = np.array([1.0, 0.7, 0.5, 0.35])


def random_log(seed: int, lists: int, lengths: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Arbitrary logged rows over a shared catalogue: per list a target distribution over items at each position
    (``action_dist`` as obp wants it), a reward model table, logged items, propensities and rewards."""
    rng = np.random.default_rng(seed)
    lengths = np.full(lists, DEPTH) if lengths is None else lengths
    list_of_row = np.repeat(np.arange(lists), lengths)
    positions = np.concatenate([np.arange(1, length + 1) for length in lengths])
    action_dist = rng.dirichlet(np.ones(ITEMS), size=(lists, DEPTH)).transpose(0, 2, 1)  # (lists, items, positions)
    q_hat = rng.uniform(0, 0.3, size=(lists, ITEMS, DEPTH))
    items = rng.integers(0, ITEMS, size=len(list_of_row))
    return {"lists": list_of_row, "positions": positions, "items": items, "action_dist": action_dist, "q_hat": q_hat,
            "propensities": rng.uniform(0.05, 1.0, len(items)), "rewards": rng.binomial(1, 0.3, len(items)) * 1.0}


def slate_log(data: dict[str, np.ndarray]) -> SlateLog:
    lists, slots, items = data["lists"], data["positions"] - 1, data["items"]
    expected = np.einsum("lip,lip->lp", data["action_dist"], data["q_hat"])[lists, slots]
    return SlateLog(lists, data["positions"], data["rewards"], data["propensities"],
                    data["action_dist"][lists, items, slots], data["q_hat"][lists, items, slots], expected)


def obp_values(data: dict[str, np.ndarray], rows: np.ndarray | None = None) -> dict[str, float]:
    ope = require_extra("feedback", "obp.ope")
    rows = np.arange(len(data["lists"])) if rows is None else rows
    lists = data["lists"][rows]
    common = {"reward": data["rewards"][rows], "action": data["items"][rows], "pscore": data["propensities"][rows],
              "action_dist": data["action_dist"][lists], "position": data["positions"][rows] - 1}
    q_hat = data["q_hat"][lists]
    return {
        "ips": ope.InverseProbabilityWeighting().estimate_policy_value(**common),
        "snips": ope.SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**common),
        "dm": ope.DirectMethod().estimate_policy_value(action_dist=common["action_dist"],
                                                       estimated_rewards_by_reg_model=q_hat,
                                                       position=common["position"]),
        "dr": ope.DoublyRobust().estimate_policy_value(**common, estimated_rewards_by_reg_model=q_hat),
    }


def test_ips_dm_dr_equal_len_list_times_obp_and_snips_obp_per_position() -> None:
    data = random_log(0, 300)
    ours = estimate(slate_log(data), ("ips", "snips", "dm", "dr"), samples=10).estimates
    theirs = obp_values(data)
    for name in ("ips", "dm", "dr"):
        assert ours[name].value == pytest.approx(DEPTH * theirs[name], abs=1e-9, rel=1e-12)
    per_position = [obp_values(data, np.flatnonzero(data["positions"] == p))["snips"] for p in range(1, DEPTH + 1)]
    assert ours["snips"].value == pytest.approx(sum(per_position), abs=1e-9, rel=1e-12)
    assert ours["snips"].value != pytest.approx(DEPTH * theirs["snips"], abs=1e-6)  # global normalisation differs


def test_lists_of_different_lengths_scale_by_rows_per_list() -> None:
    lengths = np.random.default_rng(1).integers(1, DEPTH + 1, 400)
    data = random_log(1, 400, lengths)
    ours = estimate(slate_log(data), ("ips", "snips", "dm", "dr"), samples=10).estimates
    theirs = obp_values(data)
    for name in ("ips", "dm", "dr"):
        assert ours[name].value == pytest.approx(lengths.mean() * theirs[name], abs=1e-9, rel=1e-12)
    shown = np.bincount(data["positions"], minlength=DEPTH + 1)[1:] / len(lengths)
    per_position = [obp_values(data, np.flatnonzero(data["positions"] == p))["snips"] for p in range(1, DEPTH + 1)]
    assert ours["snips"].value == pytest.approx(float(shown @ per_position), abs=1e-9, rel=1e-12)


def world_log(seed: int, lists: int) -> tuple[SlateLog, float]:
    """A uniformly random ranking policy's log in a position-based world (click = theta_p * r_i), and the truth for
    a target that shows the K most attractive items in order half of the time and a uniform ranking otherwise."""
    rng = np.random.default_rng(seed)
    attraction = np.random.default_rng(99).uniform(0.05, 0.6, ITEMS)
    best = np.argsort(-attraction)[:DEPTH]
    target = np.full((ITEMS, DEPTH), 0.5 / ITEMS)
    target[best, np.arange(DEPTH)] += 0.5
    truth = float(THETA @ (attraction @ target))
    shown = np.argsort(rng.random((lists, ITEMS)), axis=1)[:, :DEPTH].ravel()
    positions = np.tile(np.arange(1, DEPTH + 1), lists)
    clicks = rng.random(len(shown)) < THETA[positions - 1] * attraction[shown]
    list_of_row = np.repeat(np.arange(lists), DEPTH)
    model = PositionBasedRewards().fit(shown, positions, clicks.astype(float), ITEMS)
    expected = np.tile(model.expected(target, np.arange(ITEMS)), lists)
    log = SlateLog(list_of_row, positions, clicks.astype(float), np.full(len(shown), 1 / ITEMS),
                   target[shown, positions - 1], model.predict(shown, positions), expected)
    return log, truth


def test_bootstrap_intervals_contain_the_truth_in_most_seeds() -> None:
    covered = {name: 0 for name in ("ips", "snips", "dr")}
    for seed in range(20):
        log, truth = world_log(seed, 3000)
        report = estimate(log, (*covered, "dm"), samples=300, seed=seed)
        for name in covered:
            found = report.estimates[name]
            covered[name] += found.low <= truth <= found.high
            assert found.low <= found.value <= found.high
        assert report.estimates["dm"].value == pytest.approx(truth, rel=0.1)  # no model uncertainty in its interval
    assert all(count >= 17 for count in covered.values()), covered


def test_position_based_model_recovers_theta_and_gamma() -> None:
    rng = np.random.default_rng(3)
    gamma = rng.uniform(0.1, 0.8, ITEMS)
    items, positions = rng.integers(0, ITEMS, 200_000), rng.integers(1, DEPTH + 1, 200_000)
    clicks = (rng.random(200_000) < THETA[positions - 1] * gamma[items]).astype(float)
    model = PositionBasedRewards(prior=0.0).fit(items, positions, clicks, ITEMS)
    np.testing.assert_allclose(model.theta_, THETA, rtol=0.05)
    np.testing.assert_allclose(model.gamma_, gamma, rtol=0.1)
    assert model.attraction(np.array([ITEMS + 5]))[0] == pytest.approx(model.mean_)


def test_same_seed_same_interval_and_on_policy_target_recovers_the_logged_value() -> None:
    data = random_log(4, 200)
    log = SlateLog(data["lists"], data["positions"], data["rewards"], data["propensities"], data["propensities"])
    first, second = estimate(log, ("ips", "snips", "pi"), seed=5), estimate(log, ("ips", "snips", "pi"), seed=5)
    assert first == second
    for name in ("ips", "snips", "pi"):
        assert first.estimates[name].value == pytest.approx(first.logged_value)
    assert first.estimates["ips"].ess == pytest.approx(len(data["lists"]))
    assert first.warnings == []


def test_pseudo_inverse_is_unbiased_for_a_factorised_logging_policy() -> None:
    rng = np.random.default_rng(6)
    lists, attraction = 200_000, np.linspace(0.1, 0.5, 5)
    logging = np.array([0.4, 0.3, 0.1, 0.1, 0.1])  # each position drawn independently from the same distribution
    target = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    shown = rng.choice(5, size=(lists, 2), p=logging).ravel()
    positions = np.tile([1, 2], lists)
    clicks = (rng.random(len(shown)) < THETA[positions - 1] * attraction[shown]).astype(float)
    log = SlateLog(np.repeat(np.arange(lists), 2), positions, clicks, logging[shown], target[shown])
    truth = float(THETA[:2].sum() * (target @ attraction))
    found = estimate(log, ("pi",), samples=50).estimates["pi"]
    assert found.low <= truth <= found.high and found.value == pytest.approx(truth, rel=0.03)


def test_a_target_outside_the_logging_support_is_warned_about() -> None:
    log, _ = world_log(0, 500)
    greedy_logged = SlateLog(log.lists, log.positions, log.rewards, np.ones(len(log.lists)), log.target)
    warnings = estimate(greedy_logged, ("ips", "snips")).warnings
    assert any("propensity 1" in warning for warning in warnings)
    assert any("mean importance weight" in warning for warning in warnings)
    clean = estimate(log, ("ips", "snips")).warnings
    assert not any(warning.startswith("support") for warning in clean)


def test_tiny_effective_sample_size_is_warned_about() -> None:
    data = random_log(7, 500)
    target = np.where(np.arange(len(data["lists"])) == 3, 1.0, 1e-6)
    log = SlateLog(data["lists"], data["positions"], data["rewards"], np.full(len(target), 0.01), target)
    report = estimate(log, ("ips", "snips"), samples=20)
    assert report.estimates["ips"].ess < 2
    assert any(warning.startswith("ess: ips") for warning in report.warnings)


@pytest.mark.parametrize(("change", "message"), [
    ({"logging": 0.0}, "SlateLog.logging has 1 logging propensities outside (0, 1] (rows 2"),
    ({"logging": 1.5}, "SlateLog.logging has 1 logging propensities outside (0, 1] (rows 2"),
    ({"rewards": np.nan}, "SlateLog.rewards has 1 values that are NaN or infinite (rows 2"),
    ({"target": -0.1}, "SlateLog.target has 1 target probabilities outside [0, 1] (rows 2"),
])
def test_bad_arrays_raise_data_errors_naming_array_and_rows(change: dict[str, float], message: str) -> None:
    data = random_log(8, 5)
    arrays = {"lists": data["lists"], "positions": data["positions"], "rewards": data["rewards"],
              "logging": data["propensities"], "target": data["propensities"].copy()}
    for name, value in change.items():
        arrays[name] = arrays[name].astype(float).copy()
        arrays[name][2] = value
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        SlateLog(**arrays)


def test_a_repeated_position_and_a_missing_reward_model_are_refused() -> None:
    data = random_log(9, 3)
    positions = data["positions"].copy()
    positions[1] = 1
    with pytest.raises(DataError, match=r"1 logged rows repeat a \(list, position\).*rows 1,"):
        estimate(SlateLog(data["lists"], positions, data["rewards"], data["propensities"], data["propensities"]),
                 ("ips",))
    log = SlateLog(data["lists"], data["positions"], data["rewards"], data["propensities"], data["propensities"])
    with pytest.raises(ConfigError, match="dm, dr need a reward model"):
        estimate(log, ESTIMATORS)
    with pytest.raises(ConfigError, match="Unknown estimator"):
        estimate(log, ("ipw",))
