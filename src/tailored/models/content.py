"""Content-based filtering with item profiles (Pazzani & Billsus, "Content-Based Recommendation Systems", 2007).

Each item is a vector built from its attributes: one-hot codes of categorical columns (``category``,
``sub_category``, ``price_range``, ...), multi-hot codes of ``|``-separated lists (``genres``) and TF-IDF of text
columns (``title``, ``tags``, ``text``, ``description``); each block is L2-normalised, then the whole vector. A user's
profile is the (optionally value-weighted) mean of the vectors of the items in the user's history; the score of
an item is the cosine between profile and item vector, so items with attributes but no interactions are scored too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.data.features import ItemEncoder, normalize_rows
from tailored.errors import DataError
from tailored.models.base import Choice, check_fitted, register, user_rows


@register("content")
@dataclass(eq=False)
class ContentScorer:
    """Cosine between the mean attribute vector of a user's items and each item's attribute vector."""

    text_columns: str = "title,tags,text,description"
    max_categories: int = 1000
    value_weighted: bool = False

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = True
    search_space: ClassVar[dict[str, Choice]] = {"value_weighted": Choice((False, True))}

    def fit(self, dataset: Dataset) -> Self:
        if dataset.item_attributes is None:
            raise DataError("Algorithm 'content' needs item attributes; pass an items table to Dataset.from_frame.")
        encoder = ItemEncoder(parse_text_columns(self.text_columns), self.max_categories).fit(dataset.item_attributes)
        self.encoder_ = encoder.to_arrays()
        self.item_vectors_ = encoder.transform(dataset.item_attributes)
        self.user_items_ = dataset.matrix(binary=not self.value_weighted)
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "item_vectors_")
        return self.score_rows(user_rows(self.user_items_, users), items)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users given by their history rows over the training items (a session, a new user's events):
        the profile of the row's items, as for a training user."""
        check_fitted(self, "item_vectors_")
        return _cosines(self._profiles(rows), self.item_vectors_ if items is None else self.item_vectors_[items])

    def score_new_items(self, users: np.ndarray, attributes: pd.DataFrame,
                        user_attributes: pd.DataFrame | None = None) -> np.ndarray:
        """Scores of items known only by an attribute table (rows), encoded as the training items were (users are
        profiled from their history only: ``user_attributes`` are not used)."""
        check_fitted(self, "item_vectors_")
        return self.score_new_rows(user_rows(self.user_items_, users), attributes)

    def score_new_rows(self, rows: sp.csr_matrix, attributes: pd.DataFrame) -> np.ndarray:
        """`score_new_items` for users given by history rows (`score_rows`)."""
        check_fitted(self, "item_vectors_")
        return _cosines(self._profiles(rows), ItemEncoder.from_arrays(self.encoder_).transform(attributes))

    def _profiles(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        """The rows' profiles, L2-normalised (an empty row has none: every item scores 0)."""
        return normalize_rows(sp.csr_matrix(rows) @ self.item_vectors_)


def _cosines(profiles: sp.csr_matrix, vectors: sp.csr_matrix) -> np.ndarray:
    return np.asarray((profiles @ vectors.T).toarray(), np.float32)


def parse_text_columns(names: str) -> frozenset[str]:
    """Comma-separated column names treated as free text."""
    return frozenset(name.strip() for name in names.split(",") if name.strip())
