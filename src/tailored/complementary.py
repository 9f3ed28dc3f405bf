"""Complementary items: what is bought together (association rules over baskets or sessions).

Baskets come from a ``basket_id`` column (``--basket-col``) or, failing that, from sessions: a user's interactions
less than 30 minutes apart (`tailored.data.baskets`; the counts are learned by `Recommender.fit`). For items i, j: ``support = baskets with both / baskets``, ``confidence(i -> j) =
baskets with both / baskets with i`` and ``lift = confidence / support(j)``. Complements of i are ranked by
``confidence * ln(lift)`` among the pairs with lift above 1 seen together in at least ``min_count`` baskets: lift
alone favours rare pairs, confidence alone the staples everyone buys (pasta sauce after spaghetti, not the milk).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailored.data.baskets import association_scores
from tailored.data.columns import ITEM_ID, RANK, SCORE
from tailored.errors import DataError
from tailored.models.base import top_k
from tailored.pipeline import Recommender

COMPLEMENTARY_ITEM_ID = "complementary_item_id"


def complementary_items(recommender: Recommender, item_ids: np.ndarray, k: int = 10, min_count: int = 5) -> pd.DataFrame:
    """Top-``k`` complements per item (``item_id, complementary_item_id, score, lift, confidence, support, rank``)."""
    counts = recommender.co_purchase_
    if counts is None:
        raise DataError("The model holds no co-purchase statistics: train it on interactions with a basket column "
                        "(--basket-col) or timestamps.")
    item_ids = np.asarray(item_ids).astype(str)
    indices = recommender.items_.index(item_ids, missing="mask")
    if (indices < 0).any():
        raise DataError(f"Unknown item(s) {item_ids[indices < 0][:5].tolist()}: complements need purchase history.")
    score, lift, confidence, together = association_scores(counts, recommender.basket_count_, indices, min_count)
    score[:, ~recommender.candidate_items_[: score.shape[1]]] = -np.inf
    best, values = top_k(score, k)
    valid = best >= 0
    rows, ranks = np.nonzero(valid)
    columns = best[valid]
    return pd.DataFrame({ITEM_ID: item_ids[rows], COMPLEMENTARY_ITEM_ID: recommender.items_.ids(columns),
                         SCORE: values[valid], "lift": lift[rows, columns], "confidence": confidence[rows, columns],
                         "support": together[rows, columns] / recommender.basket_count_, RANK: ranks + 1})
