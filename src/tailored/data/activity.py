"""When things happened: items' first interactions, each user's last one with each item, recent daily counts."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tailored.data.dataset import Dataset

DAY = 86_400
TREND_DAYS = 56


def daily_counts(dataset: Dataset) -> tuple[sp.csr_matrix | None, float | None]:
    """Items x ``TREND_DAYS`` interaction counts, the last column being the data's last day, and that day's end
    (unix seconds); (None, None) without timestamps."""
    if dataset.timestamps is None or len(dataset) == 0:
        return None, None
    seconds = np.asarray(dataset.timestamps, np.float64)
    end = float(np.floor(seconds.max() / DAY) + 1) * DAY
    day = TREND_DAYS - 1 - np.floor((end - seconds) / DAY).astype(np.int64)
    inside = day >= 0
    counts = sp.csr_matrix((np.ones(int(inside.sum()), np.float32), (dataset.item_index[inside], day[inside])),
                           shape=(dataset.n_items, TREND_DAYS))
    counts.sum_duplicates()
    return counts, end


def interaction_times(dataset: Dataset) -> tuple[np.ndarray | None, sp.csr_matrix | None]:
    """Each item's first interaction (unix seconds, NaN for none) and each user-item pair's last (days since the
    epoch, users x items); (None, None) without timestamps."""
    if dataset.timestamps is None:
        return None, None
    seconds = np.asarray(dataset.timestamps, np.float64)
    first = np.full(dataset.n_items, np.inf)
    np.minimum.at(first, dataset.item_index, seconds)
    first[np.isinf(first)] = np.nan
    pairs = dataset.user_index.astype(np.int64) * dataset.n_items + dataset.item_index
    order = np.lexsort((seconds, pairs))
    is_last = np.append(pairs[order][1:] != pairs[order][:-1], True)
    latest = order[is_last]
    last = sp.csr_matrix((seconds[latest] / DAY, (dataset.user_index[latest], dataset.item_index[latest])),
                         shape=(dataset.n_users, dataset.n_items), dtype=np.float64)
    return first, last
