"""Position bias by EM on the position-based model: recovers theta from simulated counts, leans on the prior
without data, and counts a deep click for more."""

from __future__ import annotations

import numpy as np
import pytest

from tailored.errors import ConfigError
from tailored.data.position_bias import debiased, estimate_position_bias, examinations, prior_examination


def simulated(seed: int, items: int = 400, positions: int = 10, lists: int = 150) -> tuple[np.ndarray, ...]:
    """PBM counts: each item shown ~lists times at every position, clicked with theta_p * alpha_i."""
    rng = np.random.default_rng(seed)
    theta = np.arange(1, positions + 1) ** -0.8
    alpha = rng.beta(1.0, 5.0, items)
    impressions = rng.poisson(lists, (items, positions))
    clicks = rng.binomial(impressions, theta * alpha[:, None])
    return impressions.astype(float), clicks.astype(float), theta


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_em_recovers_theta_from_simulated_counts(seed: int) -> None:
    impressions, clicks, theta = simulated(seed)
    estimate = estimate_position_bias(impressions, clicks)
    assert estimate[0] == 1.0
    np.testing.assert_allclose(estimate, theta / theta[0], atol=0.03)
    naive = clicks.sum(axis=0) / impressions.sum(axis=0)
    assert np.abs(estimate - theta).max() < np.abs(naive / naive[0] - theta).max() + 0.03


def test_em_untangles_items_shown_at_one_position_each() -> None:
    """Better items shown higher (as a ranker does): the raw click rates per position fall faster than theta."""
    rng = np.random.default_rng(3)
    items, positions = 300, 5
    theta = 1.0 / np.arange(1, positions + 1)
    alpha = np.sort(rng.beta(2.0, 5.0, items))[::-1]
    impressions = np.zeros((items, positions))
    home = np.minimum(np.arange(items) * positions // items, positions - 1)
    impressions[np.arange(items), home] = 400  # mostly at one position, by quality
    impressions += rng.poisson(20, (items, positions))  # and some exploration everywhere
    clicks = rng.binomial(impressions.astype(int), theta * alpha[:, None]).astype(float)
    estimate = estimate_position_bias(impressions, clicks)
    naive = clicks.sum(axis=0) / impressions.sum(axis=0)
    assert np.abs(estimate - theta).max() < 0.06 < np.abs(naive / naive[0] - theta).max()


def test_the_prior_answers_before_data() -> None:
    prior = prior_examination(5)
    np.testing.assert_allclose(prior, 1 / np.log2(np.arange(2, 7)))
    np.testing.assert_allclose(estimate_position_bias(np.zeros((3, 5)), np.zeros((3, 5))), prior)
    few = np.zeros((2, 5))
    few[0, :2] = 2  # four impressions do not move it far
    assert np.abs(estimate_position_bias(few, np.zeros((2, 5))) - prior).max() < 0.1


def test_a_click_in_slot_8_counts_for_more_than_one_in_slot_1() -> None:
    theta = prior_examination(10)
    clicks = np.zeros((2, 10))
    clicks[0, 0], clicks[1, 7] = 1, 1
    counted = debiased(clicks, theta).sum(axis=1)
    assert counted[1] > counted[0] == 1.0
    np.testing.assert_allclose(counted[1], 1 / theta[7])
    np.testing.assert_allclose(examinations(np.ones((1, 10)), theta), theta.sum())


def test_bad_prior_strength_is_named() -> None:
    with pytest.raises(ConfigError, match="prior_strength"):
        estimate_position_bias(np.ones((1, 3)), np.zeros((1, 3)), prior_strength=-1)


def test_a_refit_from_the_last_estimate_lands_on_the_same_theta() -> None:
    impressions, clicks, theta = simulated(4)
    cold = estimate_position_bias(impressions, clicks)
    warm = estimate_position_bias(impressions, clicks, start=estimate_position_bias(impressions * 0.9, clicks * 0.9))
    np.testing.assert_allclose(warm, cold, atol=2e-3)
    np.testing.assert_allclose(warm, theta / theta[0], atol=0.03)
