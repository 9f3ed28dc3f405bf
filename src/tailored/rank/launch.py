"""New-item launch: exploration slots so that items younger than ``max_age_days`` get shown before they have a
history to be ranked on.

An item's age is measured from its ``launch_column`` attribute (a date) when the items carry one, otherwise from its
first interaction; items with neither (added with their attributes only) are new. In each list the ``slots`` best
scored new items are kept -- they take the place of the lowest regular items -- and the list is ordered by score,
so a new item that ranks well on its own keeps its place and the others close the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd

from tailored.data.activity import DAY
from tailored.data.dataset import Dataset
from tailored.models.base import top_k
from tailored.rank.base import Request, register_stage


@register_stage("new-items")
@dataclass(eq=False)
class NewItemSlots:
    """Keeps up to ``slots`` new items in each list of n."""

    max_age_days: float = 30.0
    slots: int = 2
    launch_column: str = "launch_date"
    pool_factor: int = 1

    def fit(self, dataset: Dataset) -> Self:
        return self

    def ages_days(self, request: Request) -> np.ndarray:
        """Days since each item's launch (NaN: never interacted with, no launch date: new)."""
        catalogue = request.catalogue
        launched = np.full(len(catalogue), np.nan)
        if catalogue.first_seen is not None:
            launched[: len(catalogue.first_seen)] = catalogue.first_seen / DAY
        column = catalogue.column(self.launch_column)
        if column is not None:
            dates = pd.to_datetime(column, errors="coerce", utc=True)
            given = dates.notna().to_numpy()
            seconds = (dates[given] - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
            launched[: len(column)][given] = seconds / DAY
        return request.context.when().timestamp() / DAY - launched

    def is_new(self, request: Request) -> np.ndarray:
        ages = self.ages_days(request)
        return np.isnan(ages) | ((ages >= 0) & (ages <= self.max_age_days))

    def rerank(self, items: np.ndarray, scores: np.ndarray, request: Request, n: int) -> tuple[np.ndarray, np.ndarray]:
        new = self.is_new(request)
        if not new.any() or self.slots == 0:
            return items, scores
        fresh_items, fresh_scores = top_k(np.where(new, request.scores, -np.inf), min(self.slots, n))
        n_fresh = (fresh_items >= 0).sum(axis=1, keepdims=True)
        regular = (items >= 0) & ~new[np.maximum(items, 0)]
        regular_rank = np.cumsum(regular, axis=1) - 1
        keep = regular & (regular_rank < n - n_fresh)
        merged_items = np.hstack([np.where(keep, items, -1), fresh_items])
        merged_scores = np.hstack([np.where(keep, scores, -np.inf), fresh_scores]).astype(scores.dtype)
        order = np.argsort(-merged_scores, axis=1, kind="stable")[:, :n]
        return np.take_along_axis(merged_items, order, axis=1), np.take_along_axis(merged_scores, order, axis=1)

    def explain(self, items: np.ndarray, request: Request) -> np.ndarray:
        ages = self.ages_days(request)
        listed = np.where(items >= 0, ages[np.maximum(items, 0)], -1.0)
        new = (items >= 0) & (np.isnan(listed) | ((listed >= 0) & (listed <= self.max_age_days)))
        reasons = np.full(items.shape, "", dtype=object)
        reasons[new] = ["new item" if np.isnan(age) else f"new item ({age:.0f} days)" for age in listed[new]]
        return reasons
