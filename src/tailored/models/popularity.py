"""Most-popular baseline, optionally time-decayed: the bar every personalised model must clear."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from tailored.data.dataset import Dataset
from tailored.data.transforms import time_decay_weights
from tailored.models.base import check_fitted, register


@register("popularity")
@dataclass(eq=False)
class PopularityScorer:
    """Scores each item by its number of training interactions (each weighted by ``0.5 ** (age / half-life)`` when
    ``half_life_days`` is set), after the Recommender's weighting (``binary`` counts distinct users)."""

    half_life_days: float | None = None

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = True
    handles_cold_items: ClassVar[bool] = False

    def fit(self, dataset: Dataset) -> Self:
        weights = np.ones(len(dataset))
        if self.half_life_days is not None and dataset.timestamps is not None:
            weights = time_decay_weights(dataset.timestamps, self.half_life_days)
        presence = dataset.matrix(values=weights)
        self.item_scores_ = np.asarray(presence.sum(axis=0), dtype=np.float32).ravel()
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "item_scores_")
        row = self.item_scores_ if items is None else self.item_scores_[items]
        return np.broadcast_to(row, (len(users), len(row))).copy()
