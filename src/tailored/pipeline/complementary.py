"""Complementary items: what is bought together (association rules over baskets or sessions).

Baskets come from a ``basket_id`` column (``--basket-col``) or, failing that, from sessions: a user's interactions
less than 30 minutes apart (`tailored.data.baskets`; the counts are learned by `Recommender.fit`). For items i, j:
``support = baskets with both / baskets``, ``confidence(i -> j) = baskets with both / baskets with i`` and
``lift = confidence / support(j)``. Complements of i are ranked by ``confidence * sqrt(lift)`` among the pairs seen
together in at least ``min_count`` baskets: confidence is the chance that the other item is in the basket, lift how
much more than usual; lift alone favours rare pairs,
confidence alone the staples everyone buys (pasta sauce after spaghetti before the milk). A pair is a complement
only when its lift is above `MIN_LIFT` (1: bought together more often than by chance); a pair at or below it, however
often seen together, is at best backfilled as a popular item.
With ``backfill`` (the default) an item with fewer than ``k`` such pairs gets the most bought items after its
complements (``source`` says which is which), so that every list is full: on grocery baskets, where staples
dominate, a list of two complements would otherwise lose to "most popular".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailored.data.baskets import association_scores
from tailored.data.columns import ITEM_ID, RANK, SCORE
from tailored.errors import DataError
from tailored.models.base import top_k
from tailored.pipeline.recommender import Recommender

COMPLEMENTARY_ITEM_ID = "complementary_item_id"
MIN_LIFT = 1.0
"""A complement's lift must be above this: at 1 the other item is in the basket as often as in any basket."""


def complementary_items(recommender: Recommender, item_ids: np.ndarray, k: int = 10, min_count: int = 5,
                        backfill: bool = True) -> pd.DataFrame:
    """Top-``k`` complements per item (pairs with a lift above `MIN_LIFT`: ``item_id, complementary_item_id, score,
    lift, confidence, support, rank, source``), then the most bought items (``source`` "popular", score NaN) when
    ``backfill``."""
    counts = recommender.co_purchase_
    if counts is None:
        raise DataError("The model holds no co-purchase statistics: train it on interactions with a basket column "
                        "(--basket-col) or timestamps.")
    item_ids = np.asarray(item_ids).astype(str)
    indices = recommender.items_.index(item_ids, missing="mask")
    if (indices < 0).any():
        raise DataError(f"Unknown item(s) {item_ids[indices < 0][:5].tolist()}: complements need purchase history.")
    score, lift, confidence, together = association_scores(counts, recommender.basket_count_, indices, min_count)
    score[~(lift > MIN_LIFT)] = -np.inf
    score[:, ~recommender.candidate_items_[: score.shape[1]]] = -np.inf
    order = score
    if backfill:  # complements first (shifted above every count), then the items by number of baskets
        baskets = counts.diagonal().astype(np.float64)
        order = np.where(np.isfinite(score), score + baskets.max() + 1.0, baskets[None, :])
        order[:, ~recommender.candidate_items_[: score.shape[1]]] = -np.inf
        order[np.arange(len(indices)), indices] = -np.inf
    best, _ = top_k(order, k)
    valid = best >= 0
    rows, ranks = np.nonzero(valid)
    columns = best[valid]
    paired = np.isfinite(score[rows, columns])
    return pd.DataFrame({ITEM_ID: item_ids[rows], COMPLEMENTARY_ITEM_ID: recommender.items_.ids(columns),
                         SCORE: np.where(paired, score[rows, columns], np.nan), "lift": lift[rows, columns],
                         "confidence": confidence[rows, columns],
                         "support": together[rows, columns] / recommender.basket_count_, RANK: ranks + 1,
                         "source": np.where(paired, "complement", "popular")})
