"""Cold start from user attributes: ridge regression from one-hot attributes (and their pairwise crosses) to the items
users interact with, in closed form -- the linear attribute-to-preference mapping of Gantner et al. ("Learning
Attribute-to-Feature Mappings for Cold-Start Recommendations", ICDM 2010), here mapping straight to item scores.

An attribute a user lacks (missing, or a value unseen in training) counts as the training users' average for it:
its column's tokens at their frequencies among the users with history, never an error. So a user with no attribute
gets each item's mean interaction rate (popularity) exactly; one categorical column gives popularity per segment; the
crosses (``age_band=25-34&gender=F``) let segments share strength. Numeric columns with more than ``max_categories``
values (raw ages, incomes) are cut into quantile bins; other such columns (ids, zip codes) are left out. Ridge
shrinks a segment of n users towards the global mean by ``n / (n + reg)``. Defaults (reg 100, no crosses) were
chosen on 20 cold-user validation carves of the P6 training part of MovieLens 100K (seeds 1-20), never on its test
users; the variants tried (other targets, kNN in attribute space, per-column or hierarchical shrinkage...) are in
docs/algorithms/demographic.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.data.features import (
    MIN_SHARED_USERS, attribute_columns, attribute_tokens, encode, numeric_bins, readable, token_vocabulary,
)
from tailored.errors import DataError
from tailored.models.base import Choice, Float, check_fitted, register, user_rows


MIN_LIFT = 0.1
"""An attribute explains an item when its weight adds at least this share of the item's mean rate."""


@register("demographic")
@dataclass(eq=False)
class DemographicScorer:
    """Scores ``intercept + features(user) @ weights``, fitted by ridge regression on the users with history."""

    reg: float = 100.0
    crosses: bool = False
    max_categories: int = 50

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = True
    handles_cold_items: ClassVar[bool] = False
    search_space: ClassVar[dict[str, Float | Choice]] = {"reg": Float(1.0, 3000.0, log=True),
                                                         "crosses": Choice((False, True))}

    def fit(self, dataset: Dataset) -> Self:
        columns, self.bin_edges_ = attribute_columns(dataset.user_attributes, self.max_categories)
        if not columns:
            raise DataError(
                "Algorithm 'demographic' needs user attributes with 2 to "
                f"{self.max_categories} distinct values (e.g. gender, age_band, segment), more values that most users "
                f"share with {MIN_SHARED_USERS - 1} others or more (country, city), or numeric ones (age): pass a "
                "users table (--users FILE)."
            )
        bins = numeric_bins(columns, self.bin_edges_)
        table = attribute_tokens(dataset.user_attributes, columns, self.crosses, bins)
        self.columns_ = np.asarray(columns, dtype=str)
        self.vocabulary_ = token_vocabulary(table, columns, self.max_categories)
        tokens = table.to_numpy(dtype=str)
        self.token_groups_ = np.zeros(len(self.vocabulary_), np.int64)  # the token's column (or pair of columns)
        for group, column in enumerate(tokens.T):
            self.token_groups_[np.flatnonzero(np.isin(self.vocabulary_, column))] = group
        indicators = encode(pd.DataFrame(tokens), self.vocabulary_)
        warm = dataset.user_counts() > 0
        known = np.asarray((indicators[warm] @ self._groups()).sum(axis=0)).ravel()  # warm users with each group
        self.token_means_ = np.asarray(indicators[warm].sum(axis=0)).ravel() / np.maximum(known, 1)[self.token_groups_]
        self.user_features_ = self._imputed(indicators)
        features = sp.hstack([self.user_features_[warm], np.ones((warm.sum(), 1))]).tocsr()
        targets = dataset.matrix(binary=True)[warm]
        gram = (features.T @ features).toarray()
        gram[np.diag_indices_from(gram)] += self.reg
        gram[-1, -1] -= self.reg  # the intercept is not shrunk
        solution = scipy.linalg.solve(gram, (features.T @ targets).toarray(), assume_a="pos")
        self.weights_ = solution[:-1].astype(np.float32)
        self.intercept_ = solution[-1].astype(np.float32)
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "weights_")
        return self._scores(self._imputed(user_rows(self.user_features_, users)), items)  # unknown users: the average

    def score_attributes(self, attributes: pd.DataFrame, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users known only by an attribute table (missing columns and unseen values: the average)."""
        return self._scores(self._imputed(self.indicators(attributes)), items)

    def indicators(self, attributes: pd.DataFrame) -> sp.csr_matrix:
        """Rows x tokens: 1 for each token of the training vocabulary that a row of the attribute table holds."""
        check_fitted(self, "weights_")
        table = attributes.reindex(columns=list(self.columns_))
        bins = numeric_bins(self.columns_, getattr(self, "bin_edges_", None))
        return encode(attribute_tokens(table, list(self.columns_), self.crosses, bins), self.vocabulary_)

    def attribute_reasons(self, features: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
        """For each pair (row ``r`` of ``features``, item ``items[r]``): ``more popular with <column=value>``, the
        user's attribute whose weight raises the item's score the most, when it adds at least ``MIN_LIFT`` of the
        item's mean rate; else "". ``features`` holds token indicators (`indicators`, or rows of
        ``user_features_``, whose imputed averages are not attributes of the user and are skipped)."""
        check_fitted(self, "weights_")
        known = sp.csr_matrix(features, copy=True)
        known.data = (known.data == 1).astype(np.float64)
        known.eliminate_zeros()
        rows, tokens = np.repeat(np.arange(known.shape[0]), np.diff(known.indptr)), known.indices
        lift = self.weights_[tokens, items[rows]]
        order = np.lexsort((-lift, rows))  # per row, the largest weight first
        best = order[np.r_[True, rows[order][1:] != rows[order][:-1]]] if len(order) else order
        mean_rate = self._scores(self._imputed(sp.csr_matrix((1, len(self.vocabulary_)))), None)[0]
        strong = best[lift[best] >= MIN_LIFT * mean_rate[items[rows[best]]]]
        reasons = np.full(len(items), "", dtype=object)
        reasons[rows[strong]] = [f"more popular with {readable(token)}" for token in self.vocabulary_[tokens[strong]]]
        return reasons

    def _groups(self) -> sp.csr_matrix:
        """Tokens x groups (a column, or a pair of columns with ``crosses``) indicator."""
        n_tokens = len(self.vocabulary_)
        return sp.csr_matrix((np.ones(n_tokens), (np.arange(n_tokens), self.token_groups_)),
                             shape=(n_tokens, self.token_groups_.max(initial=-1) + 1))

    def _imputed(self, indicators: sp.csr_matrix) -> sp.csr_matrix:
        """Each row's token indicators, a group without a known token filled with its tokens' mean frequencies."""
        groups = self._groups()
        missing = sp.csr_matrix((indicators @ groups).toarray() == 0, dtype=np.float64)
        return sp.csr_matrix(indicators + missing @ sp.csr_matrix(groups.T.multiply(self.token_means_[None, :])))

    def _scores(self, features: sp.csr_matrix, items: np.ndarray | None) -> np.ndarray:
        weights = self.weights_ if items is None else self.weights_[:, items]
        intercept = self.intercept_ if items is None else self.intercept_[items]
        return np.asarray(features @ weights, np.float32) + intercept
