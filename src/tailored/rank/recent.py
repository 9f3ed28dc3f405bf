"""Recent activity: what a user (or an anonymous session) just viewed or bought steers the list -- the items that
go with it first, the items like it next.

At fit the stage keeps each user's last ``window`` items and when they happened; at request time those younger than
``max_age_days`` (relative to the request date) and the context's ``recent`` ids (live activity or a session
without a user id, always counted) are the user's recent items R. For a candidate j:

- complement ``c(j) = max_{r in R} confidence(r -> j) * sqrt(lift(r, j))`` over pairs seen in at least ``min_count``
  baskets with lift above 1 (the association score of `tailored.pipeline.complementary`), divided by the row's largest,
  so in [0, 1];
- similarity ``s(j) = max_{r in R}`` blended collaborative/attribute cosine (`tailored.data.similarity`).

The adjusted score is the user's standardised score ``+ complement_weight * c(j) + similar_weight * s(j)``; with
``complement_weight > similar_weight`` complements come first. Users without recent items keep their scores; the
context's ``recent`` items themselves are not recommended again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from tailored.data.baskets import association_scores
from tailored.data.dataset import Dataset
from tailored.rank.base import Request, item_similarity, register_stage
from tailored.rank.explain import item_labels
from tailored.data.activity import DAY
from tailored.rank.lift import bounded


@register_stage("recent-activity")
@dataclass(eq=False)
class RecentActivityBooster:
    """Boosts the complements and the look-alikes of each user's recent items."""

    learns: ClassVar[bool] = True

    window: int = 5
    max_age_days: float = 30.0
    complement_weight: float = 2.0
    similar_weight: float = 1.0
    min_count: int = 3

    def fit(self, dataset: Dataset) -> Self:
        self.recent_ = np.full((dataset.n_users, self.window), -1, np.int64)
        self.recent_days_ = np.full((dataset.n_users, self.window), np.nan)
        if dataset.timestamps is None or len(dataset) == 0:
            return self
        times = np.asarray(dataset.timestamps, np.float64)
        order = np.lexsort((-times, dataset.user_index))  # each user's latest first
        users = dataset.user_index[order]
        starts = np.searchsorted(users, np.arange(dataset.n_users))
        position = np.arange(len(order)) - starts[users]
        keep = position < self.window
        self.recent_[users[keep], position[keep]] = dataset.item_index[order][keep]
        self.recent_days_[users[keep], position[keep]] = times[order][keep] / DAY
        return self

    def recent_items(self, request: Request) -> np.ndarray:
        """``[b, window + live]`` item indices of each user's recent items (-1 = none)."""
        today = request.context.when().timestamp() / DAY
        known = request.users >= 0
        learned = np.full((len(request.users), self.window), -1, np.int64)
        rows = request.users[known]
        fresh = today - self.recent_days_[rows] <= self.max_age_days
        learned[known] = np.where(fresh, self.recent_[rows], -1)
        live = request.catalogue.index(request.context.recent)
        return np.hstack([learned, np.tile(live, (len(request.users), 1))])

    def signals(self, request: Request) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Complement and similarity of every item to each user's recent items ``[b, items]``, and which recent item
        gave each (indices, -1 = none)."""
        recent = self.recent_items(request)
        shape = (len(recent), len(request.catalogue))
        complement, similarity = np.zeros(shape), np.zeros(shape)
        complement_source, similarity_source = np.full(shape, -1), np.full(shape, -1)
        catalogue = request.catalogue
        for column in recent.T:
            present = np.flatnonzero(column >= 0)
            if len(present) == 0:
                continue
            unique, inverse = np.unique(column[present], return_inverse=True)
            if catalogue.co_purchase is not None:
                trained = unique < catalogue.co_purchase.shape[0]
                rows = np.zeros((len(unique), shape[1]))
                if trained.any():
                    score, lift, _, _ = association_scores(catalogue.co_purchase, catalogue.basket_count,
                                                           unique[trained], self.min_count)
                    rows[trained, : score.shape[1]] = np.where(lift > 1.0, np.maximum(score, 0.0), 0.0)
                _keep_max(complement, complement_source, present, rows[inverse], column[present])
            if catalogue.interactions is not None:
                rows = item_similarity(request).rows(unique)
                rows[np.arange(len(unique)), unique] = 0.0
                _keep_max(similarity, similarity_source, present, rows[inverse], column[present])
        complement /= np.maximum(complement.max(axis=1, keepdims=True), 1e-12)
        return complement, complement_source, similarity, similarity_source

    def adjust(self, scores: np.ndarray, request: Request) -> np.ndarray:
        if not (self.recent_items(request) >= 0).any():
            return scores
        complement, _, similarity, _ = self.signals(request)
        boost = self.complement_weight * complement + self.similar_weight * similarity
        adjusted = bounded(scores) + boost.astype(scores.dtype)
        adjusted[:, request.catalogue.index(request.context.recent)] = -np.inf
        return adjusted

    def explain(self, items: np.ndarray, request: Request) -> np.ndarray:
        reasons = np.full(items.shape, "", dtype=object)
        if not (self.recent_items(request) >= 0).any():
            return reasons
        complement, complement_source, similarity, similarity_source = self.signals(request)
        rows = np.arange(len(items))[:, None]
        listed = np.maximum(items, 0)
        goes_with = (items >= 0) & (complement[rows, listed] > 0)
        alike = (items >= 0) & ~goes_with & (similarity[rows, listed] > 0)
        ids = item_labels(request.catalogue)  # titles where known
        reasons[goes_with] = [f"goes with {ids[i]}" for i in complement_source[rows, listed][goes_with]]
        reasons[alike] = [f"similar to {ids[i]}" for i in similarity_source[rows, listed][alike]]
        return reasons


def _keep_max(best: np.ndarray, source: np.ndarray, rows: np.ndarray, values: np.ndarray, origin: np.ndarray) -> None:
    """Where ``values`` beats ``best[rows]``, take it and remember the recent item it came from."""
    better = values > best[rows]
    best[rows] = np.where(better, values, best[rows])
    source[rows] = np.where(better, origin[:, None], source[rows])
