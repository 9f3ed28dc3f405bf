"""Cold-start splits: a seeded sample of users (protocol P6) or items with all their rows goes to test."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailored.data.columns import USER_ID
from tailored.data.dataset import Dataset
from tailored.data.idmap import IdMap
from tailored.data.ordering import id_ranks
from tailored.split.base import Split, check_fraction, make_split


def split_cold_users(dataset: Dataset, fraction: float = 0.2, seed: int = 42) -> Split:
    """``round(fraction * users)`` users with interactions, and all their rows, go to test (protocol P6)."""
    test = _cold_rows(dataset.user_index, dataset.users, fraction, seed)
    return make_split(dataset, test, "cold_users", {"fraction": fraction, "seed": seed, "cold": "users"})


def split_cold_items(dataset: Dataset, fraction: float = 0.1, seed: int = 42) -> Split:
    """``round(fraction * items)`` items with interactions, and all their rows, go to test."""
    test = _cold_rows(dataset.item_index, dataset.items, fraction, seed)
    return make_split(dataset, test, "cold_items", {"fraction": fraction, "seed": seed, "cold": "items"})


def attributes_by_part(split: Split, table: pd.DataFrame, column: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An attribute table (``column``: user_id or item_id) cut in two: the rows for training, and the rows of the
    ids that only the evaluated parts (test, valid) hold — the new users or items, which a cold-start evaluation
    describes to the model by their attributes alone (`recommend --users/--items`)."""

    def ids(part: Dataset) -> np.ndarray:
        if column == USER_ID:
            return part.users.ids(np.unique(part.user_index))
        return part.items.ids(np.unique(part.item_index))

    evaluated = np.concatenate([ids(part) for name, part in split.parts().items() if name != "train"]).astype(str)
    keys = table[column].astype(str)
    new = keys.isin(evaluated) & ~keys.isin(ids(split.train).astype(str))
    return table[~new].reset_index(drop=True), table[new].reset_index(drop=True)


def _cold_rows(index: np.ndarray, idmap: IdMap, fraction: float, seed: int) -> np.ndarray:
    """Rows of a seeded permutation's first ``round(fraction * n)`` active ids (ids sorted before shuffling)."""
    check_fraction(fraction, "fraction")
    active = np.unique(index)
    active = active[np.argsort(id_ranks(idmap)[active])]
    n_test = int(np.clip(np.rint(fraction * len(active)), 1, max(len(active) - 1, 1)))
    chosen = np.random.default_rng(seed).permutation(active)[:n_test]
    return np.isin(index, chosen)
