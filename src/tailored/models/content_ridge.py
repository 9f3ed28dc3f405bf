"""Content-based ridge regression: each user's interactions regressed on the items' attributes.

For item features ``F`` (items x features, see `tailored.data.features`, plus an unpenalised intercept) and a user's
interaction row ``x_u``, the user's feature weights are the ridge solution ``w_u = (F'F + reg I)^-1 F' x_u`` and the
score of item ``i`` is ``f_i . w_u``. All users share the one ``features x features`` inverse, so scoring a block of
users is two sparse products and one dense one, and users fold in from their history without retraining
(``score_rows``: a new user's events or an anonymous session). Unlike a
cosine profile (`content`), the regression decorrelates attributes (genres that always come together do not count
twice) and learns from the items a user skipped as well as those they took.

Items need only attributes: it scores items that no one has interacted with yet, which makes it the Recommender's
item cold-start model (`Recommender.item_model_`) for every algorithm that cannot score those itself -- the
attribute-to-preference mapping of Gantner et al. (ICDM 2010) on the item side, solved in closed form. Default
``reg`` 10 was chosen on cold-item validation splits carved from the training part of MovieLens 100K.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.data.features import ItemEncoder
from tailored.errors import DataError
from tailored.models.base import Float, check_fitted, register, user_rows
from tailored.models.content import parse_text_columns


@register("content-ridge")
@dataclass(eq=False)
class ContentRidgeScorer:
    """Scores ``f_i . (F'F + reg I)^-1 F' x_u``: a ridge regression of each user's row on item attributes."""

    reg: float = 10.0
    text_columns: str = "title,tags,text,description"
    max_categories: int = 1000
    max_text_features: int = 2000

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = True
    search_space: ClassVar[dict[str, Float]] = {"reg": Float(0.3, 300.0, log=True)}

    def fit(self, dataset: Dataset) -> Self:
        if dataset.item_attributes is None:
            raise DataError("Algorithm 'content-ridge' needs item attributes: pass an items table (--items FILE).")
        encoder = ItemEncoder(parse_text_columns(self.text_columns), self.max_categories, self.max_text_features)
        encoder.fit(dataset.item_attributes)
        self.encoder_ = encoder.to_arrays()
        self.item_features_ = _with_intercept(encoder.transform(dataset.item_attributes))
        warm = self.item_features_[dataset.item_counts() > 0]
        gram = (warm.T @ warm).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.reg
        gram[-1, -1] -= self.reg  # the intercept is not shrunk
        self.gram_inverse_ = scipy.linalg.inv(gram, overwrite_a=True).astype(np.float32)
        self.user_items_ = dataset.matrix()
        self._average_weights = None
        return self

    def row_weights(self, rows: sp.csr_matrix) -> np.ndarray:
        """Feature weights ``w`` of interaction rows over the training items (a training user's row, or a new
        user's history folded in without retraining); an empty row gets the mean training row's (the average
        taste, so that items known only by attributes are still ranked for a user who has done nothing yet)."""
        check_fitted(self, "gram_inverse_")
        weights = (rows @ self.item_features_).toarray() @ self.gram_inverse_
        empty = np.diff(rows.indptr) == 0
        if empty.any():
            weights[empty] = self._average()
        return weights

    def _average(self) -> np.ndarray:
        """The mean training row's weights, computed once per fitted or loaded model (every session with new
        items asks for them)."""
        if getattr(self, "_average_weights", None) is None:
            mean_row = np.asarray(self.user_items_.mean(axis=0), np.float32)
            self._average_weights = (mean_row @ self.item_features_) @ self.gram_inverse_
        return self._average_weights

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "gram_inverse_")
        return self.score_rows(user_rows(self.user_items_, users), items)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        features = self.item_features_ if items is None else self.item_features_[items]
        return _dot(self.row_weights(rows), features)

    def score_new_items(self, users: np.ndarray, attributes: pd.DataFrame,
                        user_attributes: pd.DataFrame | None = None) -> np.ndarray:
        """Scores of items known only by an attribute table (rows), encoded as the training items were (users are
        profiled from their history only: ``user_attributes`` are not used)."""
        check_fitted(self, "gram_inverse_")
        return self.score_new_rows(user_rows(self.user_items_, users), attributes)

    def score_new_rows(self, rows: sp.csr_matrix, attributes: pd.DataFrame) -> np.ndarray:
        """`score_new_items` for users given by interaction rows (`score_rows`)."""
        features = _with_intercept(ItemEncoder.from_arrays(self.encoder_).transform(attributes))
        return _dot(self.row_weights(rows), features)


def _with_intercept(features: sp.csr_matrix) -> sp.csr_matrix:
    return sp.hstack([features, np.ones((features.shape[0], 1), np.float32)], format="csr", dtype=np.float32)


def _dot(weights: np.ndarray, features: sp.csr_matrix) -> np.ndarray:
    """``weights @ features.T`` as a dense float32 block."""
    return np.asarray((features @ weights.T).T, np.float32)
