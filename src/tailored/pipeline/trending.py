"""Trending items: those whose interactions rise over the last days against their own baseline.

`Recommender.fit` keeps each item's daily interaction counts over the last ``TREND_DAYS`` days of the training data
(`tailored.data.activity.daily_counts`). For a window of w days, an item with r interactions in the window and b in
the ``TREND_DAYS - w`` days before expects ``e = b * w / (TREND_DAYS - w)`` in the window; its trend score is the
Poisson z-score ``(r - e) / sqrt(e + 1)`` (the +1 keeps brand-new items from exploding), among items with at least
``min_count`` interactions in the window. Steady bestsellers score near 0: they are popular, not rising.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.columns import ITEM_ID, RANK, SCORE
from tailored.data.activity import TREND_DAYS
from tailored.errors import ConfigError, DataError
from tailored.models.base import top_k
from tailored.pipeline.recommender import Recommender

def trend_scores(counts: sp.csr_matrix, window_days: int, min_count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: the z-score (-inf under ``min_count``), the window's count and the expected count."""
    if not 1 <= window_days < TREND_DAYS:
        raise ConfigError(f"--window-days must be between 1 and {TREND_DAYS - 1}, got {window_days}.")
    dense = counts.toarray()
    recent = dense[:, -window_days:].sum(axis=1)
    expected = dense[:, :-window_days].sum(axis=1) * window_days / (TREND_DAYS - window_days)
    score = (recent - expected) / np.sqrt(expected + 1.0)
    return np.where(recent >= min_count, score, -np.inf), recent, expected


def trending_items(recommender: Recommender, k: int = 10, window_days: int = 7, min_count: int = 3,
                   item_ids: np.ndarray | None = None) -> pd.DataFrame:
    """The ``k`` most rising items (``item_id, score, window_count, expected_count, rank``), among ``item_ids`` when
    given (e.g. one category)."""
    if recommender.daily_counts_ is None:
        raise DataError("The model holds no daily counts: train it on interactions with timestamps to get trends.")
    score, recent, expected = trend_scores(recommender.daily_counts_, window_days, min_count)
    if item_ids is not None:
        allowed = np.zeros(len(score), bool)
        allowed[recommender.items_.index(np.asarray(item_ids).astype(str), missing="drop")] = True
        score = np.where(allowed, score, -np.inf)
    best, values = top_k(score[None, :], k)
    chosen = best[0][best[0] >= 0]
    return pd.DataFrame({ITEM_ID: recommender.items_.ids(chosen), SCORE: values[0][: len(chosen)].astype(np.float64),
                         "window_count": recent[chosen], "expected_count": expected[chosen],
                         RANK: np.arange(1, len(chosen) + 1)})
