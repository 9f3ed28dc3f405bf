"""Similar items: the nearest catalogue items of each query item by blended collaborative and attribute similarity
(`tailored.data.similarity`); new items are matched on their attributes alone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, RANK, SCORE
from tailored.data.similarity import ItemSimilarity
from tailored.errors import DataError
from tailored.models.base import top_k
from tailored.pipeline.recommender import Recommender

SIMILAR_ITEM_ID = "similar_item_id"


def similar_items(recommender: Recommender, item_ids: np.ndarray, k: int = 10, shrink: float = 10.0) -> pd.DataFrame:
    """Top-``k`` similar catalogue items per query item (``item_id, similar_item_id, score, rank``); the query item
    itself and items that cannot be recommended are left out."""
    item_ids = np.asarray(item_ids).astype(str)
    indices = recommender.items_.index(item_ids, missing="mask")
    if (indices < 0).any():
        raise DataError(f"Unknown item(s) {item_ids[indices < 0][:5].tolist()}: give new items with their attributes.")
    scores = ItemSimilarity(recommender.seen_, recommender.item_features_, shrink).rows(indices)
    scores[:, ~recommender.candidate_items_] = -np.inf
    scores[np.arange(len(indices)), indices] = -np.inf
    best, values = top_k(scores, k)
    valid = best >= 0
    rows, ranks = np.nonzero(valid)
    return pd.DataFrame({ITEM_ID: item_ids[rows], SIMILAR_ITEM_ID: recommender.items_.ids(best[valid]),
                         SCORE: values[valid].astype(np.float64), RANK: ranks + 1})
