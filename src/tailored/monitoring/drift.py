"""Drift between the interactions a model was trained on and recent ones: is retraining due?

Population stability index ``PSI = sum_b (a_b - e_b) ln(a_b / e_b)`` of item popularity: the share of user-item
pairs per item, items unknown to the model pooled into one bucket; plus the shares of pairs on new items and of users
new to the model. A small window inflates the PSI by sampling noise alone: the noise floor is the 95th percentile
of the PSI of ``NOISE_DRAWS`` windows of the same size drawn from the training distribution itself (seeded), and the
verdict reads the PSI above it: below 0.1 stable, 0.1 to 0.25 moderate, above 0.25 a significant shift: retrain on
the recent window.

User activity is compared the same way over **activity segments**: training users fall into ``ACTIVITY_SEGMENTS``
quantile buckets of their number of training pairs (light to heavy buyers), plus one bucket for users new to the
model; the PSI compares each segment's share of the pairs in training and in the window. Shares, not counts, so
windows of any length compare: heavy buyers leaving or a wave of newcomers moves it, a quiet week does not. The
verdict reads whichever PSI lies further above its own noise floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID
from tailored.errors import DataError
from tailored.pipeline.recommender import Recommender

EPSILON = 1e-4
MODERATE, SIGNIFICANT = 0.1, 0.25
NOISE_DRAWS = 20
ACTIVITY_SEGMENTS = 5


def population_stability_index(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of two histograms over the same buckets (counts or shares; empty buckets smoothed by EPSILON)."""
    expected = np.asarray(expected, np.float64) / max(float(np.sum(expected)), 1e-12) + EPSILON
    actual = np.asarray(actual, np.float64) / max(float(np.sum(actual)), 1e-12) + EPSILON
    return float(np.sum((actual - expected) * np.log(actual / expected)))


@dataclass(frozen=True)
class DriftReport:
    item_popularity_psi: float
    noise_floor: float
    user_activity_psi: float
    activity_noise_floor: float
    new_item_share: float
    new_user_share: float
    interactions: int

    @property
    def verdict(self) -> str:
        excess = max(self.item_popularity_psi - self.noise_floor, self.user_activity_psi - self.activity_noise_floor)
        if excess > SIGNIFICANT:
            return "significant drift: retraining is due"
        return "moderate drift: watch it" if excess > MODERATE else "stable"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"measure": ["item popularity PSI", "PSI noise floor for this window",
                                         "user activity PSI", "user activity PSI noise floor",
                                         "share of pairs on new items", "share of users new to the model",
                                         "interactions in the window"],
                             "value": [self.item_popularity_psi, self.noise_floor, self.user_activity_psi,
                                       self.activity_noise_floor, self.new_item_share, self.new_user_share,
                                       float(self.interactions)]})


def noise_floor(expected: np.ndarray, size: int, seed: int = 0) -> float:
    """95th percentile of the PSI between ``expected`` and windows of ``size`` draws from it: drift-free noise."""
    draws = np.random.default_rng(seed).multinomial(size, expected / expected.sum(), size=NOISE_DRAWS)
    return float(np.percentile([population_stability_index(expected, draw) for draw in draws], 95))


def recent_window(frame: pd.DataFrame, days: float | None) -> pd.DataFrame:
    """The interactions of the last ``days`` days of the frame (all of them when None)."""
    if days is None:
        return frame
    if TIMESTAMP not in frame.columns:
        raise DataError("A window in days needs a timestamp column in the interactions.")
    return frame[frame[TIMESTAMP] > frame[TIMESTAMP].max() - days * 86_400]


def activity_segments(recommender: Recommender, pair_users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs per activity segment in training and in the window (``pair_users``: the user index of each window
    pair, -1 = new user, counted in the last bucket)."""
    activity = recommender.seen_.getnnz(axis=1)
    active = activity > 0
    edges = np.unique(np.quantile(activity[active], np.linspace(0, 1, ACTIVITY_SEGMENTS + 1)[1:-1]))
    segment = np.searchsorted(edges, activity, side="right")
    n_segments = len(edges) + 2  # the last one: users new to the model
    trained = np.bincount(segment[active], weights=activity[active], minlength=n_segments)
    recent = np.bincount(np.where(pair_users >= 0, segment[np.maximum(pair_users, 0)], n_segments - 1),
                         minlength=n_segments)
    return trained, recent


def drift_report(recommender: Recommender, recent: pd.DataFrame) -> DriftReport:
    """Compare ``recent`` interactions (``user_id, item_id``, ...) with the model's training interactions."""
    if recent.empty:
        raise DataError("No interactions in the window: nothing to compare with the training data.")
    pairs = recent[[USER_ID, ITEM_ID]].astype(str).drop_duplicates()
    items = recommender.items_.index(pairs[ITEM_ID].to_numpy(), missing="mask")
    trained_items = np.append(recommender.seen_.getnnz(axis=0), 0)  # last bucket: items new to the model
    recent_items = np.bincount(np.where(items >= 0, items, len(trained_items) - 1), minlength=len(trained_items))
    users = recommender.users_.index(pairs[USER_ID].unique(), missing="mask")
    pair_users = recommender.users_.index(pairs[USER_ID].to_numpy(), missing="mask")
    trained_segments, recent_segments = activity_segments(recommender, pair_users)
    return DriftReport(
        item_popularity_psi=population_stability_index(trained_items, recent_items),
        noise_floor=noise_floor(trained_items, len(pairs)),
        user_activity_psi=population_stability_index(trained_segments, recent_segments),
        activity_noise_floor=noise_floor(trained_segments, len(pairs)),
        new_item_share=float(np.mean(items < 0)),
        new_user_share=float(np.mean(users < 0)),
        interactions=len(recent),
    )

