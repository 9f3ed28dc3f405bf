"""Position bias of the position-based click model (PBM): the item at position p is clicked with probability
theta_p * alpha_i, where theta_p is the probability that position p is examined and alpha_i the item's attraction
(Chuklin, Markov & de Rijke 2015, "Click Models for Web Search", ch. 3; Wang et al. 2018, "Position Bias Estimation
for Unbiased Learning to Rank in Personal Search", whose regression-EM this is with one attraction per item).

theta is estimated by expectation-maximisation from the counts of impressions and clicks per (item, position):
an item shown at several positions tells how much its clicks fall with the position. Before data (and for the
positions few lists reached) the estimate leans on a prior: the DCG discount 1 / log2(p + 1), with the weight of
``prior_strength`` impressions per position. theta is normalised so that theta_1 = 1: a click at position p counts
as 1 / theta_p clicks at the top (`debiased`), so "a click in slot 8 counts for more than one in slot 1"."""

from __future__ import annotations

import numpy as np

from tailored.errors import ConfigError

PRIOR_STRENGTH = 100.0
"""Impressions per position that the prior weighs, by default."""
_EPSILON = 1e-6


def prior_examination(positions: int) -> np.ndarray:
    """The prior theta: 1 / log2(p + 1) for p = 1..positions (DCG's discount)."""
    return 1.0 / np.log2(np.arange(2, positions + 2))


def estimate_position_bias(impressions: np.ndarray, clicks: np.ndarray, prior_strength: float = PRIOR_STRENGTH,
                           iterations: int = 200, tolerance: float = 1e-7, start: np.ndarray | None = None
                           ) -> np.ndarray:
    """theta (one per column, theta_1 = 1) of the PBM from ``impressions`` and ``clicks`` (items x positions) by EM.

    E-step: an unclicked impression of item i at p was examined without attraction with probability
    theta_p (1 - alpha_i) / (1 - theta_p alpha_i), and attractive but unexamined with (1 - theta_p) alpha_i /
    (1 - theta_p alpha_i); clicked ones were both. M-step: theta_p = (examined impressions at p + prior) /
    (impressions at p + prior_strength), alpha_i = attractive impressions of i / impressions of i."""
    if prior_strength < 0:
        raise ConfigError(f"prior_strength={prior_strength} must be >= 0 (impressions per position of the prior).")
    impressions, clicks = np.asarray(impressions, np.float64), np.asarray(clicks, np.float64)
    prior = prior_examination(impressions.shape[1])
    shown = (impressions > 0).sum(axis=1) >= 2
    impressions, clicks = impressions[shown], np.minimum(clicks[shown], impressions[shown])
    if not shown.any():
        return prior
    unclicked, per_position, per_item = impressions - clicks, impressions.sum(axis=0), impressions.sum(axis=1)
    theta = prior.copy() if start is None or len(start) != len(prior) else np.array(start, np.float64)
    alpha = np.clip(clicks.sum(axis=1) / (impressions @ theta), _EPSILON, 1 - _EPSILON)
    for _ in range(iterations):
        product = np.clip(theta * alpha[:, None], None, 1 - _EPSILON)
        examined = clicks + unclicked * theta * (1 - alpha[:, None]) / (1 - product)
        attractive = clicks + unclicked * (1 - theta) * alpha[:, None] / (1 - product)
        updated = np.clip((examined.sum(axis=0) + prior_strength * prior) / (per_position + prior_strength),
                          _EPSILON, 1.0)
        alpha = np.clip(attractive.sum(axis=1) / per_item, _EPSILON, 1 - _EPSILON)
        change, theta = np.abs(updated - theta).max(), updated
        if change < tolerance:
            break
    return theta / theta[0]


def debiased(clicks: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Clicks per (item, position) counted as clicks at the top: clicks_p / theta_p."""
    return np.asarray(clicks) / theta[: np.shape(clicks)[-1]]


def examinations(impressions: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Each item's impressions weighted by the chance they were examined (relative to the top): sum_p N_p theta_p,
    the exposure that its clicks are to be compared with."""
    return np.asarray(impressions) @ theta[: np.shape(impressions)[-1]]
