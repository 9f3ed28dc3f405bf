"""Trained users' candidates from a vector index of an inner-product scorer's item factors (`VectorIndex`): the
candidate pool of every list (`index_scores`), and the serving fast lane (`index_top`), which ranks straight from
the index with no dense row of scores."""

from __future__ import annotations

import numpy as np

from tailored.rank.candidates import VectorIndex


def index_scores(index: VectorIndex, user_factors: np.ndarray, pool: int, n_items: int) -> np.ndarray:
    """Scores (users x ``n_items``) of the index's best ``pool`` items for each of ``user_factors`` (rows), by the
    scorer's own inner product; every other item at -inf."""
    items, values = index.search(user_factors, pool)
    scores = np.full((len(user_factors), n_items), -np.inf, np.float32)
    rows = np.repeat(np.arange(len(user_factors)), items.shape[1])
    found = items.ravel() >= 0
    scores[rows[found], items.ravel()[found]] = values.ravel()[found]
    return scores


def index_top(index: VectorIndex, vector: np.ndarray, seen: np.ndarray, n: int, candidates: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-``n`` (item indices, scores) of one user's ``vector`` among the ``candidates`` (a mask), the ``seen``
    items (sorted indices) left out; None when too few are left after the exclusions (the full path must answer)."""
    items, values = index.search(vector, n + len(seen))
    items, values = items[0], values[0]
    keep = (items >= 0) & candidates[np.maximum(items, 0)]
    if len(seen):  # CSR rows hold sorted indices: a binary search beats np.isin on a few dozen items
        at = np.minimum(np.searchsorted(seen, items), len(seen) - 1)
        keep &= seen[at] != items
    items, values = items[keep][:n], values[keep][:n]
    if len(items) < n and len(items) < int(candidates.sum()) - len(seen):
        return None
    return items, values
