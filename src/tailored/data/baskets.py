"""Baskets and sessions: which interactions happened together, and how often two items were bought together."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.columns import BASKET_ID, ITEM_INDEX, TIMESTAMP, USER_INDEX
from tailored.data.dataset import Dataset

SESSION_GAP = 30 * 60
LIFT_WEIGHT = 0.5
"""Confidence (the chance the other item is in the basket) times lift to this power: 0 ranks the staples first, 1 the
rare pairs; 0.5 kept "most bought"'s hit rate while more than doubling the lift on the synthetic baskets
(docs/stages.md)."""


def basket_index(dataset: Dataset) -> np.ndarray | None:
    """A dense basket number per interaction: the basket column, else sessions of each user; None without either."""
    frame = dataset.interactions
    if BASKET_ID in frame:
        return pd.factorize(frame[USER_INDEX].astype(str) + "\x1f" + frame[BASKET_ID].astype(str))[0]
    if TIMESTAMP not in frame:
        return None
    order = np.lexsort((frame[TIMESTAMP].to_numpy(), frame[USER_INDEX].to_numpy()))
    users, times = frame[USER_INDEX].to_numpy()[order], frame[TIMESTAMP].to_numpy()[order]
    starts = np.ones(len(order), bool)
    starts[1:] = (users[1:] != users[:-1]) | (np.diff(times) > SESSION_GAP)
    sessions = np.empty(len(order), np.int64)
    sessions[order] = np.cumsum(starts) - 1
    return sessions


def co_purchase_counts(dataset: Dataset) -> tuple[sp.csr_matrix | None, int]:
    """Items x items number of baskets holding both (the diagonal: baskets holding the item), and the number of
    baskets; (None, 0) without baskets or timestamps."""
    baskets = basket_index(dataset)
    if baskets is None or len(baskets) == 0:
        return None, 0
    items = dataset.interactions[ITEM_INDEX].to_numpy()
    holding = sp.csr_matrix((np.ones(len(items), np.float32), (baskets, items)),
                            shape=(baskets.max() + 1, dataset.n_items))
    holding.data[:] = 1.0
    holding.sum_duplicates()
    holding.data[:] = 1.0
    return sp.csr_matrix(holding.T @ holding), int(holding.shape[0])


def association_scores(counts: sp.csr_matrix, basket_count: int, items: np.ndarray, min_count: int,
                       lift_weight: float = LIFT_WEIGHT) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For the rows ``items`` against every item: ``confidence * lift ** lift_weight`` (-inf for pairs seen together
    in fewer than ``min_count`` baskets and for the item itself), with the lift, confidence and number of baskets
    holding both."""
    holding = counts.diagonal().astype(np.float64)
    together = counts[items].toarray().astype(np.float64)
    confidence = together / np.maximum(holding[items, None], 1.0)
    lift = confidence / np.maximum(holding[None, :] / max(basket_count, 1), 1e-12)
    score = confidence * lift ** lift_weight
    score[together < min_count] = -np.inf
    score[np.arange(len(items)), items] = -np.inf
    return score, lift, confidence, together
