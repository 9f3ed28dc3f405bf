"""Cold start from user attributes: ridge regression from one-hot attributes (and their pairwise crosses) to the items
users interact with, in closed form -- the linear attribute-to-preference mapping of Gantner et al. ("Learning
Attribute-to-Feature Mappings for Cold-Start Recommendations", ICDM 2010), here mapping straight to item scores.

With no attribute it reduces to the intercept, the mean interaction rate of each item (popularity); one categorical
column gives popularity per segment; the crosses (``age_band=25-34&gender=F``) let segments share strength.
Columns with more than ``max_categories`` values (ids, zip codes, raw ages) are left out; unseen values score as
unknown (no feature), never as an error. Ridge shrinks a segment of n users towards the global mean by
``n / (n + reg)``. Defaults (reg 100, no crosses) were chosen on 20 cold-user validation carves of the P6
training part of MovieLens 100K (seeds 1-20), never on its test users; the variants tried (other targets, kNN
in attribute space, per-column or hierarchical shrinkage...) are in docs/algorithms/demographic.md.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.errors import DataError
from tailored.models.base import Choice, Float, check_fitted, register, user_rows


def usable_columns(attributes: pd.DataFrame | None, max_categories: int) -> list[str]:
    """Attribute columns with 2 to ``max_categories`` distinct values."""
    if attributes is None:
        return []
    return [name for name in attributes.columns if 1 < attributes[name].nunique() <= max_categories]


def attribute_tokens(attributes: pd.DataFrame, columns: list[str], crosses: bool) -> pd.DataFrame:
    """One ``column=value`` token per row and column (and per pair of columns when ``crosses``); '' when missing."""
    single = {name: (name + "=" + attributes[name].astype(str)).where(attributes[name].notna(), "") for name in columns}
    tokens = pd.DataFrame(single, index=attributes.index)
    if crosses:
        for first, second in itertools.combinations(columns, 2):
            both = (tokens[first] != "") & (tokens[second] != "")
            tokens[f"{first}&{second}"] = (tokens[first] + "&" + tokens[second]).where(both, "")
    return tokens


def encode(tokens: pd.DataFrame, vocabulary: np.ndarray) -> sp.csr_matrix:
    """Rows x vocabulary indicator matrix; tokens outside the vocabulary are dropped."""
    flat = tokens.to_numpy(dtype=str).ravel()
    columns = pd.Index(vocabulary).get_indexer(flat)
    rows = np.repeat(np.arange(len(tokens)), tokens.shape[1])
    known = columns >= 0
    return sp.csr_matrix((np.ones(known.sum()), (rows[known], columns[known])), shape=(len(tokens), len(vocabulary)))


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
    search_space: ClassVar[dict[str, Float | Choice]] = {"reg": Float(1.0, 3000.0, log=True), "crosses": Choice((False, True))}

    def fit(self, dataset: Dataset) -> Self:
        columns = usable_columns(dataset.user_attributes, self.max_categories)
        if not columns:
            raise DataError(
                "Algorithm 'demographic' needs user attributes with 2 to "
                f"{self.max_categories} distinct values (e.g. gender, age_band, segment): pass a users table (--users FILE)."
            )
        tokens = attribute_tokens(dataset.user_attributes, columns, self.crosses)
        self.columns_ = np.asarray(columns, dtype=str)
        self.vocabulary_ = np.unique(tokens.to_numpy(dtype=str)[tokens.to_numpy(dtype=str) != ""])
        self.user_features_ = encode(tokens, self.vocabulary_)
        warm = dataset.user_counts() > 0
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
        return self._scores(user_rows(self.user_features_, users), items)

    def score_attributes(self, attributes: pd.DataFrame, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users known only by an attribute table (missing columns and unseen values: no feature)."""
        check_fitted(self, "weights_")
        table = attributes.reindex(columns=list(self.columns_))
        return self._scores(encode(attribute_tokens(table, list(self.columns_), self.crosses), self.vocabulary_), items)

    def _scores(self, features: sp.csr_matrix, items: np.ndarray | None) -> np.ndarray:
        weights = self.weights_ if items is None else self.weights_[:, items]
        intercept = self.intercept_ if items is None else self.intercept_[items]
        return np.asarray(features @ weights, np.float32) + intercept
