"""The features of the learned second stage (`tailored.models.ranker`), one code path for training and serving.

Every feature of a (user, candidate item) pair is read from a `Window`: the interactions known at a moment ``now``
(the carve's cut while training, the end of the data when serving) and nothing after it. The ranker builds its
training rows from ``Window.of(dataset, until=cut)``, which drops every row at or after the cut itself, and its
serving rows from ``Window.of(dataset)``: the same functions, so training and serving cannot drift apart, and the
label window cannot leak into a feature (tests/models/test_ranker.py checks both).

Features (`Sources.feature_names`), all vectorised over the pairs:

- per retriever: its score standardised over the user's unseen items (``<name>_score``) and its rank among them
  (``<name>_rank``, 1 = its best); NaN for an item the user has taken (a repeat candidate), which retrievers do
  not rank;
- user: ``user_relative_activity`` (log of 1 + events over 1 + the mean user's events: `relative_log_counts`),
  ``user_days_since_last`` (days from the user's last event to now);
- item: ``item_relative_popularity`` (log of 1 + events over 1 + the mean item's events), ``item_trend`` (log of
  the last 7 days' events over the last 30 days' weekly rate, both + 1), ``item_age_days`` (days since its first
  event), each numeric item attribute (``item_<column>``: price, year...);
- user attributes (a users table): each numeric one as it is (``user_<column>``: age, income);
- pair: ``session_similarity``, the mean cosine similarity of the candidate to the user's latest distinct items in a
  truncated SVD of the window's user x item matrix (`Window.item_vectors`; what the user has just been looking at);
  ``affinity_<column>`` for each categorical item attribute (``|``-separated lists allowed: genres): the
  share of the user's distinct items that carry the candidate's value (the mean over its values);
  ``days_since_<column>``: 1 + days since the user last took an item sharing one of the candidate's values (its
  category's recency; NaN when never);
  ``gap_<column>`` for each numeric item attribute: the candidate's value minus the mean over the user's distinct
  items (a price level, an era); ``segment_lift_<column>`` for each usable user attribute (categorical, or numeric
  cut at the users' quantiles: `tailored.data.features.attribute_columns`): log((1 + the item's events by the
  user's segment) / (1 + the events expected were the item as popular there as everywhere)), how much more the
  people like this user take the item; and ``days_since_taken``: days since the user last took this very item
  (NaN when never: a repeat signal, for candidates drawn from the user's own recent items), and
  ``cycles_since_taken``: those days over the item's repurchase cycle (the median days between two events of one
  user with it; NaN when nobody took it twice): near 1, the item is due again;
- context (`ContextKeys`, after the others: `context_features`): ``context_lift_<key>`` for each context key, the
  same lift as a segment's with the key's value in place of the user's segment: how much more the item is taken on
  a mobile, from an email, at 8 in the morning, on a Saturday, in December. The keys are the interaction columns named
  as the request's context keys (``device``, ``channel``, ``segment``) and the ``hour``, ``weekday`` and ``month`` of
  the timestamps (UTC, as the request's date is read); a key the request does not give, or a value not seen in
  training, is 0 (no lift).

Features unknown for a pair are NaN, which LightGBM routes by a learned default direction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.cells import timestamps
from tailored.data.dataset import Dataset
from tailored.data.features import attribute_columns, attribute_tokens, numeric_bins
from tailored.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

DAY = 86_400.0
RECENT_DAYS, MONTH_DAYS = 7.0, 30.0
MAX_CATEGORIES = 100
"""A text item attribute is a category when its values (``|``-separated) number at most this many."""
MAX_SEGMENTS = 50
"""A user attribute is a segment when it has at most this many values (a number: its quantile bins), so that each
segment's lift table (values x items) stays small."""
SESSION_ITEMS = 5
"""A user's latest distinct items that ``session_similarity`` compares a candidate with."""
SESSION_DIMENSIONS = 32
"""Dimensions of the item vectors (a truncated SVD of the window's user x item matrix) it compares them in."""
SESSION_FEATURE = "session_similarity"
USER_FEATURES = ("user_relative_activity", "user_days_since_last")
ITEM_FEATURES = ("item_relative_popularity", "item_trend", "item_age_days")
REPEAT_FEATURES = ("days_since_taken", "cycles_since_taken")
CONTEXT_COLUMNS = ("device", "channel", "segment")
"""Interaction columns that are request context keys (`tailored.query.Context`'s fields of the same names)."""
TIME_KEYS = {"hour": 24, "weekday": 7, "month": 12}
"""Context keys read from the timestamps (UTC) and the request's date, with their number of values: the time of
day, the day of the week, the season (a month's lift is the item's seasonality profile)."""


def interaction_seconds(dataset: Dataset, algorithm: str, reason: str = "carves its training data by time"
                        ) -> np.ndarray:
    """The interactions' times as float64 Unix seconds; a DataError naming the missing column, why it is needed
    (``reason``) and the fix."""
    if dataset.timestamps is None:
        raise DataError(
            f"Algorithm '{algorithm}' {reason} and needs a 'timestamp' column in the interactions, which these have "
            "not; give the file's time column (`--time-col`), or use one of its retrievers (e.g. ease) on its own."
        )
    return timestamps(pd.Series(dataset.timestamps)).to_numpy(np.float64)


@dataclass(frozen=True)
class ItemAttributes:
    """The item attributes the features read, fixed at training: numeric columns and categorical columns."""

    numbers: np.ndarray
    """n_items x numeric columns, float64, NaN where unknown."""
    number_names: tuple[str, ...]
    categories: sp.csr_matrix
    """n_items x (all categorical columns' values), each row's block of a column summing to 1 (its values' mean)."""
    category_blocks: np.ndarray
    """The first column of each categorical attribute's block in ``categories``, then the total."""
    category_names: tuple[str, ...]

    @classmethod
    def of(cls, table: pd.DataFrame | None, n_items: int) -> ItemAttributes:
        """Numeric columns (not booleans) and text columns of at most `MAX_CATEGORIES` values (an id-like column,
        one value per item, is left out) of an item attribute table aligned on item indices."""
        table = pd.DataFrame(index=range(n_items)) if table is None else table
        numbers, number_names, blocks, category_names = [], [], [], []
        for name in table.columns:
            column = table[name]
            if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
                numbers.append(pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan))
                number_names.append(str(name))
            elif pd.api.types.is_string_dtype(column) or isinstance(column.dtype, pd.CategoricalDtype):
                indicators = column.astype("string").str.get_dummies(sep="|")
                if 0 < indicators.shape[1] <= MAX_CATEGORIES and column.nunique() < max(2, column.count()):
                    blocks.append(sp.csr_matrix(indicators.to_numpy(np.float64)))
                    category_names.append(str(name))
        matrix = sp.hstack([normalized_rows(block) for block in blocks] or [sp.csr_matrix((n_items, 0))], "csr")
        return cls(
            numbers=np.column_stack(numbers) if numbers else np.zeros((n_items, 0)),
            number_names=tuple(number_names),
            categories=matrix,
            category_blocks=np.cumsum([0] + [block.shape[1] for block in blocks]),
            category_names=tuple(category_names),
        )


@dataclass(frozen=True)
class UserAttributes:
    """The user attributes the features read, fixed at training: numeric columns, and each usable column's segment
    (a category, or the quantile bin of a number) as a code per user."""

    numbers: np.ndarray
    """n_users x numeric columns, float64, NaN where unknown."""
    number_names: tuple[str, ...]
    segments: np.ndarray
    """n_users x segment columns, int64 codes (0..levels - 1), -1 where unknown."""
    segment_names: tuple[str, ...]

    @classmethod
    def of(cls, table: pd.DataFrame | None, n_users: int) -> UserAttributes:
        """From a user attribute table aligned on user indices (None: no column)."""
        table = pd.DataFrame(index=range(n_users)) if table is None else table
        columns, edges = attribute_columns(table, MAX_SEGMENTS)
        bins = numeric_bins(columns, edges)
        tokens = attribute_tokens(table, columns, False, bins)
        columns = [name for name in columns if tokens[name].nunique() <= MAX_SEGMENTS + 1]  # "" is unknown
        codes = [pd.factorize(tokens[name].replace("", None))[0] for name in columns]
        numbers = [pd.to_numeric(table[name], errors="coerce").to_numpy(np.float64) for name in bins]
        return cls(
            numbers=np.column_stack(numbers) if numbers else np.zeros((n_users, 0)),
            number_names=tuple(str(name) for name in bins),
            segments=np.column_stack(codes).astype(np.int64) if codes else np.zeros((n_users, 0), np.int64),
            segment_names=tuple(str(name) for name in columns),
        )

    def lifts(self, window: Window) -> list[np.ndarray]:
        """Per segment column, the `lift_table` of the window's rows by the segment of their user."""
        return [lift_table(codes[window.users], window.items, int(codes.max(initial=-1)) + 1, window.n_items)
                for codes in self.segments.T]


def lift_table(levels: np.ndarray, items: np.ndarray, n_levels: int, n_items: int) -> np.ndarray:
    """levels x items, float32: log((1 + the rows of the level with the item) / (1 + the rows expected were the
    item as common at the level as among all rows)), from rows' ``levels`` (-1: unknown, left out) and ``items``."""
    known = levels >= 0
    joint = np.bincount(levels[known] * n_items + items[known], minlength=n_levels * n_items).reshape(n_levels,
                                                                                                       n_items)
    expected = np.outer(joint.sum(axis=1), joint.sum(axis=0)) / max(known.sum(), 1)
    return np.log((1.0 + joint) / (1.0 + expected)).astype(np.float32)


@dataclass(frozen=True)
class ContextKeys:
    """The context keys the ranker learns from, fixed at training, and each categorical key's values."""

    names: tuple[str, ...]
    vocabularies: tuple[tuple[str, ...], ...]
    """Per key, its values (a time key: empty; its values are 0..`TIME_KEYS`[key] - 1)."""
    warned: set[str] = field(default_factory=set, compare=False)

    @classmethod
    def of(cls, interactions: pd.DataFrame, wanted: str) -> ContextKeys:
        """``wanted``: ``auto`` (the `CONTEXT_COLUMNS` present with 2 to `MAX_CATEGORIES` values), ``none``, or a
        comma-separated list of keys, ``auto`` among them if wanted (``auto,hour,weekday``); a ConfigError names a
        key that is neither a present column nor a time key. The time keys are never automatic: where the hour or
        the weekday means nothing, splitting the labels by them can cost accuracy (docs/algorithms/ranker.md)."""
        present = [name for name in CONTEXT_COLUMNS
                   if name in interactions and 1 < interactions[name].nunique() <= MAX_CATEGORIES]
        names: list[str] = []
        for part in (part.strip() for part in wanted.split(",")):
            for name in present if part == "auto" else [] if part in ("", "none") else [part]:
                if name not in present and name not in TIME_KEYS:
                    raise ConfigError(
                        f"ranker.context: '{name}' is not a context key of these interactions; the keys are "
                        f"{', '.join([*present, *TIME_KEYS])} (the columns among {', '.join(CONTEXT_COLUMNS)} with "
                        f"2 to {MAX_CATEGORIES} values, and the timestamps' hour, weekday and month), or auto, or "
                        "none.")
                names += [name] if name not in names else []
        vocabularies = tuple(() if name in TIME_KEYS else tuple(sorted(interactions[name].dropna().astype(str)
                                                                        .unique())) for name in names)
        return cls(tuple(names), vocabularies)

    def sizes(self) -> list[int]:
        return [TIME_KEYS[name] if name in TIME_KEYS else len(values)
                for name, values in zip(self.names, self.vocabularies, strict=True)]

    def row_levels(self, rows: pd.DataFrame, seconds: np.ndarray) -> np.ndarray:
        """rows x keys, int64: each row's value of each key, the time keys read from ``seconds`` (-1: missing,
        unseen, or a column ``rows`` do not have)."""
        columns = [time_levels(name, seconds) if name in TIME_KEYS
                   else pd.Index(values).get_indexer(rows[name].astype("string").fillna("\0")) if name in rows
                   else np.full(len(seconds), -1)
                   for name, values in zip(self.names, self.vocabularies, strict=True)]
        return np.column_stack(columns).astype(np.int64) if columns else np.zeros((len(seconds), 0), np.int64)

    def request_levels(self, context: Mapping[str, Any]) -> np.ndarray:
        """keys, int64: the values of a request's ``context`` (`tailored.query.Context`'s fields by name; -1: not
        given or not seen in training). A context key the ranker was not trained on and a value it has not seen are
        logged once each, as warnings."""
        for name in CONTEXT_COLUMNS:
            if context.get(name) is not None and name not in self.names:
                self._warn(f"ranker: the request's context key '{name}' is not one the ranker learned from (it "
                           f"learned {', '.join(self.names) or 'none'}: see its `context` parameter and the training "
                           "interactions' columns); ignored.")
        moment = context.get("moment")
        levels = []
        for name, values in zip(self.names, self.vocabularies, strict=True):
            if name in TIME_KEYS:
                levels.append(-1 if moment is None else int(time_levels(name, np.array([moment.timestamp()]))[0]))
                continue
            value = context.get(name)
            level = -1 if value is None else values.index(str(value)) if str(value) in values else -1
            if value is not None and level < 0:
                self._warn(f"ranker: the request's {name}={value!r} was not seen in training (values: "
                           f"{', '.join(values)}); treated as not given.")
            levels.append(level)
        return np.asarray(levels, np.int64)

    def _warn(self, message: str) -> None:
        if message not in self.warned:
            self.warned.add(message)
            logger.warning(message)


def time_levels(name: str, seconds: np.ndarray) -> np.ndarray:
    """The UTC ``hour`` (0-23), ``weekday`` (Monday 0) or ``month`` (January 0) of Unix ``seconds``."""
    seconds = np.floor(np.asarray(seconds, np.float64)).astype(np.int64)
    if name == "month":
        return seconds.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12  # 1970-01: January
    return (seconds % int(DAY)) // 3600 if name == "hour" else (seconds // int(DAY) + 3) % 7  # 1970-01-01: Thursday


def normalized_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its sum (empty rows stay empty)."""
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)) @ matrix)


@dataclass(frozen=True, eq=False)
class Window:
    """The interactions known at ``now`` (rows strictly before it when it is a cut): what every feature reads."""

    users: np.ndarray
    items: np.ndarray
    seconds: np.ndarray
    n_users: int
    n_items: int
    now: float
    context: np.ndarray | None = None
    """rows x context keys: each row's `ContextKeys.row_levels` (None: no key)."""

    @classmethod
    def of(cls, dataset: Dataset, seconds: np.ndarray, until: float | None = None,
           context: np.ndarray | None = None) -> Window:
        """The rows of ``dataset`` (``seconds``: their times; ``context``: their context levels) before ``until``;
        all rows, and ``now`` = the last time, when ``until`` is None."""
        keep = np.ones(len(dataset), bool) if until is None else seconds < until
        now = float(until if until is not None else (seconds.max() if len(seconds) else 0.0))
        return cls(dataset.user_index[keep].astype(np.int64), dataset.item_index[keep].astype(np.int64),
                   seconds[keep], dataset.n_users, dataset.n_items, now, None if context is None else context[keep])

    @cached_property
    def taken(self) -> sp.csr_matrix:
        """users x items: 1 where the user took the item."""
        matrix = sp.csr_matrix((np.ones(len(self.users)), (self.users, self.items)), (self.n_users, self.n_items))
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix

    @cached_property
    def last_taken(self) -> sp.csr_matrix:
        """users x items: 1 + the time of the user's last event with the item, in days before ``now``."""
        order = np.lexsort((self.seconds, self.items, self.users))
        pair = self.users[order] * self.n_items + self.items[order]
        last = order[np.r_[pair[1:] != pair[:-1], True]] if len(order) else order
        return sp.csr_matrix((1.0 + (self.now - self.seconds[last]) / DAY, (self.users[last], self.items[last])),
                             (self.n_users, self.n_items))

    @cached_property
    def item_vectors(self) -> np.ndarray:
        """n_items x at most `SESSION_DIMENSIONS`, float32: each item's row of a seeded truncated SVD of the users x
        items matrix (Halko et al.'s randomized SVD, scikit-learn's), scaled by the singular values and normalised to
        unit length (zero for an item without events), so that a dot product is the items' cosine similarity in the
        co-occurrence space."""
        from sklearn.utils.extmath import randomized_svd

        dimensions = min(SESSION_DIMENSIONS, min(self.n_users, self.n_items) - 1)
        if dimensions < 1 or not len(self.users):
            return np.zeros((self.n_items, 0), np.float32)
        _, values, rows = randomized_svd(self.taken, dimensions, random_state=0)
        vectors = (rows.T * values).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)

    @cached_property
    def item_cycle(self) -> np.ndarray:
        """n_items: the median days between two events of one user with the item (its repurchase cycle); NaN for an
        item nobody took twice."""
        order = np.lexsort((self.seconds, self.items, self.users))
        users, items, seconds = self.users[order], self.items[order], self.seconds[order]
        again = (users[1:] == users[:-1]) & (items[1:] == items[:-1])
        gaps = pd.Series(np.diff(seconds)[again] / DAY).groupby(items[1:][again]).median()
        cycle = np.full(self.n_items, np.nan)
        cycle[gaps.index.to_numpy(np.int64)] = gaps.to_numpy()
        return cycle

    @cached_property
    def user_table(self) -> np.ndarray:
        """n_users x `USER_FEATURES`."""
        counts = np.bincount(self.users, minlength=self.n_users)
        last = np.full(self.n_users, -np.inf)
        np.fmax.at(last, self.users, self.seconds)  # fmax: unknown times (NaN) leave -inf, without a warning
        days = np.where(counts > 0, (self.now - last) / DAY, np.nan)
        return np.column_stack([relative_log_counts(counts), days])

    @cached_property
    def item_table(self) -> np.ndarray:
        """n_items x `ITEM_FEATURES`."""
        counts = np.bincount(self.items, minlength=self.n_items)
        age = self.now - self.seconds
        recent = np.bincount(self.items[age <= RECENT_DAYS * DAY], minlength=self.n_items)
        month = np.bincount(self.items[age <= MONTH_DAYS * DAY], minlength=self.n_items)
        trend = np.log((recent + 1.0) / (month * RECENT_DAYS / MONTH_DAYS + 1.0))
        first = np.full(self.n_items, np.inf)
        np.fmin.at(first, self.items, self.seconds)
        days = np.where(counts > 0, (self.now - first) / DAY, np.nan)
        return np.column_stack([relative_log_counts(counts), trend, days])


def relative_log_counts(counts: np.ndarray) -> np.ndarray:
    """log((1 + count) / (1 + mean count)): a count relative to the window's mean, so that a window with fewer rows
    (the training carve) and one with all of them (serving) give the same values for the same share of the events
    (raw log counts shift by log(1 / (1 - label_fraction)) between the two)."""
    return np.log1p(counts) - np.log1p(counts.mean() if len(counts) else 0.0)


@dataclass(frozen=True, eq=False)
class Sources:
    """What the features of one window read: the window, the item and user attributes, the context keys, and the
    segment and context lifts computed from the window (`UserAttributes.lifts`, `lift_table`)."""

    window: Window
    items: ItemAttributes
    people: UserAttributes
    lifts: list[np.ndarray]
    context: ContextKeys
    context_lifts: list[np.ndarray]

    @classmethod
    def of(cls, window: Window, items: ItemAttributes, people: UserAttributes,
           context: ContextKeys | None = None) -> Sources:
        context = context or ContextKeys((), ())
        levels = window.context if window.context is not None else np.zeros((len(window.users), 0), np.int64)
        context_lifts = [lift_table(levels[:, key], window.items, size, window.n_items)
                         for key, size in enumerate(context.sizes())]
        return cls(window, items, people, people.lifts(window), context, context_lifts)

    @cached_property
    def category_days(self) -> sp.csr_matrix:
        """users x category values (``items.categories``' columns): 1 + days from the user's last event with an item
        of the value to the window's ``now``; 0 where never (NaN where the times are unknown)."""
        window, n_values = self.window, self.items.categories.shape[1]
        carried = (self.items.categories[window.items] > 0).tocoo()  # (event, value)
        keys = window.users[carried.row] * n_values + carried.col
        order = np.lexsort((window.seconds[carried.row], keys))
        last = order[np.r_[keys[order][1:] != keys[order][:-1], True]] if len(order) else order
        days = 1.0 + (window.now - window.seconds[carried.row[last]]) / DAY
        return sp.csr_matrix((days, (window.users[carried.row[last]], carried.col[last])), (window.n_users, n_values))

    def feature_names(self, retrievers: list[str]) -> list[str]:
        """The columns of `pair_features`, in order."""
        return ([f"{name}_{kind}" for name in retrievers for kind in ("score", "rank")] + list(USER_FEATURES)
                + list(ITEM_FEATURES) + [f"item_{name}" for name in self.items.number_names]
                + [f"user_{name}" for name in self.people.number_names] + [SESSION_FEATURE]
                + [f"affinity_{name}" for name in self.items.category_names]
                + [f"days_since_{name}" for name in self.items.category_names]
                + [f"gap_{name}" for name in self.items.number_names]
                + [f"segment_lift_{name}" for name in self.people.segment_names] + list(REPEAT_FEATURES)
                + [f"context_lift_{name}" for name in self.context.names])


def context_features(sources: Sources, levels: np.ndarray, items: np.ndarray) -> np.ndarray:
    """pairs x context keys, float32: each key's lift of the pair's item at the pair's value (``levels``: pairs x
    keys, -1 where not given: 0, no lift)."""
    columns = [np.where(levels[:, key] >= 0, lift[np.maximum(levels[:, key], 0), items], 0.0)
               for key, lift in enumerate(sources.context_lifts)]
    return np.column_stack(columns).astype(np.float32) if columns else np.zeros((len(items), 0), np.float32)


def pair_features(sources: Sources, users: np.ndarray, rows: np.ndarray, items: np.ndarray,
                  retriever_scores: list[np.ndarray], retriever_ranks: list[np.ndarray]) -> np.ndarray:
    """The feature rows (float32, `Sources.feature_names` order but the context ones: `context_features`) of the
    pairs (``users[rows]``, ``items``):
    ``users`` is a block of user indices, ``retriever_scores`` / ``retriever_ranks`` each retriever's standardised
    scores and ranks for the block (block users x all items)."""
    window, attributes, people = sources.window, sources.items, sources.people
    pair_users = users[rows]
    taken = np.asarray(window.taken[pair_users, items]).ravel() > 0
    columns = []
    for scores, ranks in zip(retriever_scores, retriever_ranks, strict=True):
        columns += [np.where(taken, np.nan, scores[rows, items]), np.where(taken, np.nan, ranks[rows, items])]
    columns += list(window.user_table[pair_users].T) + list(window.item_table[items].T)
    columns += list(attributes.numbers[items].T) + list(people.numbers[pair_users].T)
    columns.append(session_similarity(window, users, rows, items))
    taken = window.taken[users]
    if attributes.category_names:
        held = np.maximum(np.asarray(taken.sum(axis=1)).ravel(), 1.0)
        shares = (taken @ (attributes.categories > 0).astype(np.float64)).toarray() / held[:, None]
        carried = attributes.categories[items].tocoo()  # (pair, value, the value's weight in its column's mean)
        contributions = carried.data * shares[rows[carried.row], carried.col]
        column_of_value = np.searchsorted(attributes.category_blocks, carried.col, side="right") - 1
        for column in range(len(attributes.category_names)):
            of_column = column_of_value == column
            columns.append(np.bincount(carried.row[of_column], contributions[of_column], minlength=len(items)))
        days = np.asarray(sources.category_days[pair_users[carried.row], carried.col]).ravel()
        days = np.where(days > 0, days, np.inf)  # never: no day; unknown times (NaN) stay unknown
        for column in range(len(attributes.category_names)):
            of_column = column_of_value == column
            nearest = np.full(len(items), np.inf)
            np.fmin.at(nearest, carried.row[of_column], days[of_column])
            columns.append(np.where(np.isfinite(nearest), nearest, np.nan))
    if attributes.number_names:
        known = ~np.isnan(attributes.numbers)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (taken @ np.where(known, attributes.numbers, 0.0)) / (taken @ known.astype(np.float64))
        columns += list((attributes.numbers[items] - means[rows]).T)
    for codes, lift in zip(people.segments.T, sources.lifts, strict=True):
        level = codes[pair_users]
        columns.append(np.where(level >= 0, lift[np.maximum(level, 0), items], np.nan))
    last = np.asarray(window.last_taken[pair_users, items]).ravel()
    since = np.where(last > 0, last, np.nan)
    columns.append(since)
    cycle = window.item_cycle[items]
    with np.errstate(invalid="ignore", divide="ignore"):
        columns.append(np.where(cycle > 0, (since - 1.0) / cycle, np.nan))
    return np.column_stack(columns).astype(np.float32)


def session_similarity(window: Window, users: np.ndarray, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Per pair (``users[rows]``, ``items``): the mean cosine similarity (`Window.item_vectors`) of the item to the
    user's `SESSION_ITEMS` latest distinct items; NaN for a user without events."""
    last = window.last_taken[users].toarray()  # 1 + days before now; 0 where never taken
    count = min(SESSION_ITEMS, last.shape[1])
    latest = np.argpartition(np.where(last > 0, last, np.inf), count - 1, axis=1)[:, :count]
    taken = np.take_along_axis(last, latest, axis=1) > 0
    vectors = window.item_vectors
    profiles = (vectors[latest] * taken[..., None]).sum(axis=1) / np.maximum(taken.sum(axis=1), 1)[:, None]
    similarity = np.einsum("pd,pd->p", vectors[items], profiles[rows])
    return np.where(taken.any(axis=1)[rows], similarity, np.nan)
