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

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from tailored.data.columns import USER_ID
from tailored.data.dataset import Dataset
from tailored.data.features import (
    NUMERIC_BINS, column_problems, common_values, is_measurement, is_vector_column, value_text,
)
from tailored.errors import DataError
from tailored.models.base import Choice, Float, check_fitted, register, user_rows


MIN_SHARED_USERS = 5
"""In a column of more than ``max_categories`` values (a city, a country), the users a value needs to be a category."""
MIN_LIFT = 0.1
"""An attribute explains an item when its weight adds at least this share of the item's mean rate."""


def attribute_columns(attributes: pd.DataFrame | None, max_categories: int) -> tuple[list[str], np.ndarray]:
    """The usable attribute columns and their bin edges (one row per column): a numeric column with many values (raw
    ages, incomes, tenure: `is_measurement`) is cut at the users' quantiles into ``NUMERIC_BINS`` bins; another with 2
    to ``max_categories`` distinct values is categorical (a row of NaN), and so is one with more whose values are
    mostly shared (`common_values`: countries, cities; its rare values count as unknown). Others (ids, zip codes,
    free text, vectors) are left out."""
    columns: list[str] = []
    edges: list[np.ndarray] = []
    quantiles = np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1]
    for name in [] if attributes is None else attributes.columns:
        column = attributes[name]  # type: ignore[index]
        if is_vector_column(column):
            continue
        distinct = column.nunique()
        if is_measurement(column, max_categories):
            columns.append(name)
            edges.append(np.nanquantile(column.to_numpy(np.float64), quantiles))
        elif 1 < distinct <= max_categories or (
                distinct > max_categories and common_values(value_text(column.dropna()), MIN_SHARED_USERS) is not None):
            columns.append(name)
            edges.append(np.full(NUMERIC_BINS - 1, np.nan))
    return columns, np.asarray(edges, np.float64).reshape(len(columns), NUMERIC_BINS - 1)


def token_vocabulary(tokens: pd.DataFrame, columns: Sequence[str], max_categories: int) -> np.ndarray:
    """The sorted tokens users are encoded by: all of ``tokens`` (`attribute_tokens`), except in a column of
    ``columns`` with more than ``max_categories`` values, where only those ``MIN_SHARED_USERS`` users share are kept
    (the rarer ones are left to the "unknown" bucket)."""
    kept = []
    for name in tokens.columns:
        present = tokens[name][tokens[name] != ""]
        large = name in columns and present.nunique() > max_categories
        common = common_values(present, MIN_SHARED_USERS) if large else None
        kept.append(np.asarray(present.unique(), dtype=str) if common is None else common)
    return np.unique(np.concatenate(kept)).astype(str) if kept else np.empty(0, str)


def usable_columns(attributes: pd.DataFrame | None, max_categories: int) -> list[str]:
    """The columns of `attribute_columns`."""
    return attribute_columns(attributes, max_categories)[0]


def numeric_bins(columns: Sequence[str], edges: np.ndarray | None) -> dict[str, np.ndarray]:
    """Column -> bin edges of the binned columns among ``columns`` (``edges`` rows aligned with them; None, as in
    models saved before numeric attributes were binned: none)."""
    if edges is None:
        return {}
    return {str(name): row for name, row in zip(columns, edges) if not np.isnan(row).all()}


def attribute_tokens(attributes: pd.DataFrame, columns: list[str], crosses: bool,
                     bins: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One ``column=value`` token per row and column (``column=[lo,hi)`` for a column of ``bins``; and one per pair
    of columns when ``crosses``); '' when missing."""
    single = {}
    for name in columns:
        text, known = _value_text(attributes[name], (bins or {}).get(name))
        single[name] = (name + "=" + text).where(known, "")
    tokens = pd.DataFrame(single, index=attributes.index)
    if crosses:
        for first, second in itertools.combinations(columns, 2):
            both = (tokens[first] != "") & (tokens[second] != "")
            tokens[f"{first}&{second}"] = (tokens[first] + "&" + tokens[second]).where(both, "")
    return tokens


def _value_text(column: pd.Series, edges: np.ndarray | None) -> tuple[pd.Series, pd.Series]:
    """Each value's token text and whether it is known; with ``edges``, the bin ``[lo,hi)`` of a number (text that is
    not a number is unknown)."""
    if edges is None:
        return value_text(column), column.notna()
    numbers = pd.to_numeric(column, errors="coerce")
    bounds = np.concatenate([[-np.inf], edges, [np.inf]])
    labels = np.array([f"[{low:g},{high:g})" for low, high in zip(bounds[:-1], bounds[1:])])
    bins = np.searchsorted(edges, np.nan_to_num(numbers.to_numpy(np.float64)), side="right")
    return pd.Series(labels[bins], index=column.index), numbers.notna()


def attribute_vocabulary(attributes: pd.DataFrame | None, max_categories: int) -> dict[str, np.ndarray]:
    """The usable attribute ``columns``, their bin ``edges`` (`attribute_columns`) and the tokens seen in them
    (``vocabulary``): what users who arrive later are encoded with. Empty arrays when no column is usable. Also the
    table's other columns (``left_out``), which a later table may hold without being warned about."""
    columns, edges = attribute_columns(attributes, max_categories)
    left_out = np.asarray([str(name) for name in ([] if attributes is None else attributes.columns)
                           if name not in columns], str)
    if not columns:
        return {"columns": np.empty(0, str), "vocabulary": np.empty(0, str), "edges": edges, "left_out": left_out}
    tokens = attribute_tokens(attributes, columns, False, numeric_bins(columns, edges))  # type: ignore[arg-type]
    return {"columns": np.asarray(columns, str), "vocabulary": token_vocabulary(tokens, columns, max_categories),
            "edges": edges, "left_out": left_out}


def attribute_problems(vocabulary: dict[str, np.ndarray], attributes: pd.DataFrame) -> list[str]:
    """What an attribute-based scorer cannot use in ``attributes`` (rows of new users; an id column is ignored):
    training columns the table lacks, its columns that are not training attributes, and missing or unseen values.
    Each of these scores as "unknown" (the scorer's own way: `demographic` takes the training users' average, the
    neural models an "unknown" bucket); one sentence per problem, empty when there is none."""
    columns = [str(name) for name in vocabulary["columns"]]
    given = [str(name) for name in attributes.columns if name != USER_ID]
    if not columns:
        return ["the model was trained without usable user attributes, so new users get the same lists whatever "
                "their attributes: retrain with a users table (--users FILE)"] if given else []
    left_out = {str(name) for name in vocabulary.get("left_out", [])}  # columns training saw and did not use
    problems = column_problems(columns, [name for name in given if name not in left_out])
    present = [name for name in columns if name in given]
    bins = numeric_bins(columns, vocabulary.get("edges"))
    tokens = attribute_tokens(attributes, present, False, bins)
    for name in present:
        missing = tokens[name] == ""
        unseen = value_text(attributes[name])[~missing & ~tokens[name].isin(vocabulary["vocabulary"])].value_counts()
        if missing.any():
            value = "a numeric value" if name in bins else "a value"
            problems.append(f"{name}: {int(missing.sum()):,} row(s) without {value}, scored as unknown")
        if len(unseen):
            examples = ", ".join(f"{value!r} ({count})" for value, count in unseen.head(5).items())
            more = f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
            problems.append(f"{name}: value(s) not learnt in training (unseen or rare), scored as unknown: "
                            f"{examples}{more}")
    return problems


def readable(token: str) -> str:
    """``gender=F`` as is, a bin ``age=[23,29)`` as ``age 23-29`` (``age under 23``, ``age 46 or more`` at the ends),
    a cross ``a=x&b=y`` as ``a=x and b=y``."""
    crossed = token.split("&")
    parts = []
    for part in crossed if all("=" in part for part in crossed) else [token]:
        name, _, value = part.partition("=")
        low, comma, high = value.strip("[)").partition(",")
        if not (value.startswith("[") and value.endswith(")") and comma):
            parts.append(part)
        elif low == "-inf":
            parts.append(f"{name} under {high}")
        else:
            parts.append(f"{name} {low} or more" if high == "inf" else f"{name} {low}-{high}")
    return " and ".join(parts)


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
