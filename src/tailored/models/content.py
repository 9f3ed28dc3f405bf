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
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.data.features import attribute_vectors, normalize_rows
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
        text = {name.strip() for name in self.text_columns.split(",") if name.strip()}
        self.item_vectors_ = attribute_vectors(dataset.item_attributes, text, self.max_categories).astype(np.float32)
        self.user_items_ = dataset.matrix(binary=not self.value_weighted)
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "item_vectors_")
        profiles = normalize_rows(user_rows(self.user_items_, users) @ self.item_vectors_)
        vectors = self.item_vectors_ if items is None else self.item_vectors_[items]
        return np.asarray((profiles @ vectors.T).toarray(), np.float32)
