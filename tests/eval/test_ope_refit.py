"""dm's and dr's reward model: shrinkage chosen by cross-validation on the log, and refitted on every bootstrap
resample so that dm's interval holds the model's own error."""

from __future__ import annotations

import numpy as np
import pytest

from tailored.errors import DataError
from tailored.eval.ope import SHRINKAGE_GRID, PositionBasedRewards, RewardRefit, SlateLog, _Refit, estimate

ITEMS, DEPTH = 30, 3
THETA = np.array([1.0, 0.7, 0.5])


def world(seed: int, lists: int, attraction: np.ndarray, select: bool = True) -> tuple[SlateLog, float]:
    """A uniformly random ranking's log in a position-based world; the target shows the DEPTH most attractive items
    in order half of the time and a uniform ranking otherwise. The log carries a reward model (selected on it, or
    with almost no shrinkage) and what refitting it needs; returns the log and the target's true clicks per list."""
    rng = np.random.default_rng(seed)
    best = np.argsort(-attraction)[:DEPTH]
    target = np.full((ITEMS, DEPTH), 0.5 / ITEMS)
    target[best, np.arange(DEPTH)] += 0.5
    shown = np.argsort(rng.random((lists, ITEMS)), axis=1)[:, :DEPTH].ravel()
    positions = np.tile(np.arange(1, DEPTH + 1), lists)
    clicks = (rng.random(len(shown)) < THETA[positions - 1] * attraction[shown]).astype(float)
    list_of_row = np.repeat(np.arange(lists), DEPTH)
    propensities = np.full(len(shown), 1 / ITEMS)
    probabilities = target[shown, positions - 1]
    model = (PositionBasedRewards.select(shown, positions, clicks, ITEMS, list_of_row, probabilities / propensities)
             if select else PositionBasedRewards(prior=0.1).fit(shown, positions, clicks, ITEMS))
    mass = np.hstack([lists * target.T, np.zeros((DEPTH, 1))])
    log = SlateLog(list_of_row, positions, clicks, propensities, probabilities, model.predict(shown, positions),
                   np.tile(model.expected(target, np.arange(ITEMS)), lists), RewardRefit(model, shown, mass))
    return log, float(THETA @ (attraction @ target))


def test_refitted_dm_intervals_contain_the_truth_where_fixed_ones_do_not() -> None:
    """With a nearly unshrunk (so nearly unbiased) model, dm's error is the model's sampling error: only an interval
    that refits the model holds it."""
    attraction = np.random.default_rng(99).uniform(0.05, 0.3, ITEMS)
    refitted = fixed = 0
    for seed in range(20):
        log, truth = world(seed, 1000, attraction, select=False)
        found = estimate(log, ("dm", "dr"), samples=300, seed=seed).estimates
        held = estimate(SlateLog(log.lists, log.positions, log.rewards, log.logging, log.target, log.predicted,
                                 log.expected), ("dm",), samples=300, seed=seed).estimates["dm"]
        assert found["dm"].value == held.value
        assert found["dm"].high - found["dm"].low > 2 * (held.high - held.low)
        refitted += found["dm"].low <= truth <= found["dm"].high
        fixed += held.low <= truth <= held.high
    assert refitted >= 17 and fixed <= 12, (refitted, fixed)


def test_a_resample_refit_equals_a_fit_on_the_resampled_rows() -> None:
    log, _ = world(1, 300, np.random.default_rng(5).uniform(0.05, 0.4, ITEMS))
    assert log.refit is not None
    refit = _Refit(log, 300)
    np.testing.assert_allclose(refit.shifts(np.ones((1, 300))), 0.0, atol=1e-9)
    counts = np.bincount(np.random.default_rng(2).integers(0, 300, 300), minlength=300).astype(float)
    rows = np.repeat(np.arange(len(log.lists)), counts[log.lists].astype(int))
    model = PositionBasedRewards(log.refit.model.prior, log.refit.model.position_prior).fit(
        log.refit.items[rows], log.positions[rows], log.rewards[rows], ITEMS)
    moved = refit._values(model.theta_[None], model.gamma_[None], np.array([model.mean_])) - refit.base
    np.testing.assert_allclose(refit.shifts(counts[None]), moved, atol=1e-6)  # refits stop at theta +-1e-6
    assert abs(moved[0, 0]) > 1e-4


def test_cross_validation_shrinks_hard_without_item_effects_and_little_with_strong_ones() -> None:
    rng = np.random.default_rng(7)
    rows = 60_000
    items, positions = rng.integers(0, ITEMS, rows), rng.integers(1, DEPTH + 1, rows)
    lists = np.arange(rows)
    flat = (rng.random(rows) < 0.2).astype(float)
    strong = (rng.random(rows) < THETA[positions - 1] * np.linspace(0.02, 0.6, ITEMS)[items]).astype(float)
    none = PositionBasedRewards.select(items, positions, flat, ITEMS, lists)
    some = PositionBasedRewards.select(items, positions, strong, ITEMS, lists)
    assert none.prior >= 1000 and none.position_prior >= 1000
    assert some.prior <= 100 and some.position_prior <= 100
    np.testing.assert_allclose(some.theta_, THETA, rtol=0.05)
    assert (none.prior, none.position_prior) in SHRINKAGE_GRID


def test_refit_arrays_that_do_not_fit_the_log_are_refused() -> None:
    log, _ = world(0, 20, np.full(ITEMS, 0.3))
    assert log.refit is not None
    with pytest.raises(DataError, match=r"RewardRefit.target_mass has shape \(2, 31\)"):
        SlateLog(log.lists, log.positions, log.rewards, log.logging, log.target,
                 refit=RewardRefit(log.refit.model, log.refit.items, log.refit.target_mass[:2]))
    with pytest.raises(DataError, match=r"refit.items has 1 item codes outside \[0, 30\) \(rows 4,"):
        items = log.refit.items.copy()
        items[4] = ITEMS
        SlateLog(log.lists, log.positions, log.rewards, log.logging, log.target,
                 refit=RewardRefit(log.refit.model, items, log.refit.target_mass))
