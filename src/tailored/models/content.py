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
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from tailored.data.dataset import Dataset
from tailored.errors import DataError
from tailored.models.base import Choice, check_fitted, register, user_rows


def attribute_vectors(attributes: pd.DataFrame, text_columns: set[str], max_categories: int) -> sp.csr_matrix:
    """Items x features: one block per usable column, each block's rows L2-normalised, then the rows."""
    blocks = []
    for name in attributes.columns:
        column = attributes[name]
        if column.isna().all():
            continue
        if name in text_columns:
            text = column.fillna("").astype(str)
            if not text.str.contains(r"\w\w", regex=True).any():
                continue
            block = TfidfVectorizer(sublinear_tf=True).fit_transform(text)
        else:
            values = column.astype("string")
            if values.str.contains("|", regex=False).any():
                block = values.fillna("").str.get_dummies(sep="|")
            elif values.nunique() <= max_categories:
                block = pd.get_dummies(values, dtype=np.float64)
            else:
                continue
            block = sp.csr_matrix(block.to_numpy(np.float64))
        blocks.append(normalize(block))
    if not blocks:
        raise DataError(
            f"No usable item attribute among {list(attributes.columns)}: 'content' needs categorical, '|'-separated "
            f"or text columns ({', '.join(sorted(text_columns))})."
        )
    return normalize(sp.hstack(blocks).tocsr())


@register("content")
@dataclass(eq=False)
class ContentScorer:
    """Cosine between the mean attribute vector of a user's items and each item's attribute vector."""

    text_columns: str = "title,tags,text,description"
    max_categories: int = 1000
    value_weighted: bool = False

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
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
        profiles = normalize(user_rows(self.user_items_, users) @ self.item_vectors_)
        vectors = self.item_vectors_ if items is None else self.item_vectors_[items]
        return np.asarray((profiles @ vectors.T).toarray(), np.float32)
