"""Canonical orders of ids and rows that do not depend on the order in which the input rows came: the same
interactions read from a file or cut in memory sort the same way."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.data.idmap import IdMap

logger = logging.getLogger(__name__)


def id_ranks(idmap: IdMap) -> np.ndarray:
    """Position of each dense index when the external ids are sorted (orders rows by id, not by index).

    Ids that are all numbers (``"2"``, ``"10"``, as read from files) sort numerically, so an order does not depend
    on whether the ids were read as text or as integers.
    """
    ids = pd.Index(idmap.external_ids)
    numeric = pd.to_numeric(ids, errors="coerce")
    ranks = np.empty(len(idmap), np.int64)
    ranks[(ids if numeric.isna().any() else numeric).argsort()] = np.arange(len(idmap))
    return ranks


def time_ordered(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """User and item index of every row, ordered by user, then time (row order without timestamps), then item id
    (`id_ranks`: items taken at the same time come in the same order however the rows, and so the indices, were
    ordered)."""
    users, items = dataset.user_index.astype(np.int64), dataset.item_index.astype(np.int64)
    times = dataset.timestamps
    if times is None:
        logger.warning("the interactions have no timestamps: each user's items are taken in the order of the rows")
        times = np.arange(len(dataset))
    order = np.lexsort((id_ranks(dataset.items)[items], np.asarray(times), users))
    return users[order], items[order]
