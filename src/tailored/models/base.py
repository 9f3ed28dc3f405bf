"""The Scorer contract, the catalogue of algorithms by name, and the shared top-k."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.config import Registry, convert
from tailored.errors import ConfigError, NotFittedError, TailoredError


@runtime_checkable
class Scorer(Protocol):
    """An algorithm. Hyperparameters are dataclass fields; learned state lives in ``name_`` attributes.

    ``score`` is batch-first: a block of user indices against all items (or the given ones), higher is better.
    Scorers that predict ratings set ``explicit = True`` and implement ``predict(users, items)`` for pairs,
    where an index of -1 means an id unseen in training. ``handles_cold_items`` scorers (content) also score items
    known only from their attributes, so the Recommender may recommend those.
    """

    explicit: ClassVar[bool]
    handles_cold_users: ClassVar[bool]
    handles_cold_items: ClassVar[bool]

    def fit(self, dataset: Dataset) -> Self: ...

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray: ...


@runtime_checkable
class AttributeScorer(Protocol):
    """Scores users unknown to it from their attributes (a users table's columns): demographic, ncf, two-tower."""

    def score_attributes(self, attributes: pd.DataFrame, items: np.ndarray | None = None) -> np.ndarray: ...


@runtime_checkable
class HistoryScorer(Protocol):
    """Scores users given as interaction rows over the trained items (a session, a user's events since training):
    the item-item models, ALS, the autoencoders, the content models, the hybrids, the ensemble."""

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray: ...


@runtime_checkable
class SequenceScorer(Protocol):
    """Scores users given as item sequences, oldest first (reads their order): sasrec, two-tower."""

    def score_sessions(self, histories: Sequence[Sequence[int]], items: np.ndarray | None = None) -> np.ndarray: ...


@runtime_checkable
class NewItemScorer(Protocol):
    """Scores items unknown at training time from their attributes, for trained users and for interaction rows."""

    def score_new_items(self, users: np.ndarray, attributes: pd.DataFrame,
                        user_attributes: pd.DataFrame | None = None) -> np.ndarray: ...


@runtime_checkable
class NewItemHistoryScorer(NewItemScorer, HistoryScorer, Protocol):
    """A `NewItemScorer` that also scores new items for interaction rows (a session)."""

    def score_new_rows(self, rows: sp.csr_matrix, attributes: pd.DataFrame) -> np.ndarray: ...


@runtime_checkable
class FoldInScorer(Protocol):
    """An inner-product scorer that turns interaction rows into user factors (ALS)."""

    def fold_in(self, rows: sp.csr_matrix) -> np.ndarray: ...


@runtime_checkable
class RatingPredictor(Protocol):
    """Predicts explicit ratings of (user, item) pairs (``explicit = True``)."""

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class ContextScorer(Protocol):
    """Scores trained users in a request's context (`tailored.query.Context`'s fields by name: device, channel,
    moment...), which it learned from: the ranker."""

    def score_context(self, users: np.ndarray, context: Mapping[str, Any]) -> np.ndarray: ...


@runtime_checkable
class ScoreExplainer(Protocol):
    """Says, for the items of trained users' lists, what raised each one's score in the request's ``context``
    (`ContextScorer`'s mapping; None: none given): the ranker's feature contributions."""

    def explain_scores(self, users: np.ndarray, items: np.ndarray, context: Mapping[str, Any] | None
                       ) -> np.ndarray: ...


@runtime_checkable
class AttributeExplainer(Protocol):
    """Says which attribute most raises an item's rate for users described by attribute indicators (demographic)."""

    def indicators(self, attributes: pd.DataFrame) -> sp.csr_matrix: ...

    def attribute_reasons(self, features: sp.csr_matrix, items: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Capabilities:
    """What a scorer declares it can do beyond scoring its trained users, read once (`capabilities`) when the
    Recommender is fitted or loaded: ``attributes`` (`AttributeScorer`), ``histories`` (`HistoryScorer`),
    ``sequences`` (`SequenceScorer`), ``new_items`` (`NewItemScorer`),
    ``new_item_histories`` (`NewItemHistoryScorer`), ``folds_in_history`` (the flag: a trained user's events since
    training fold in, by history or sequence), ``fold_in`` (`FoldInScorer`), ``ratings`` (``explicit`` and a
    `RatingPredictor`), ``vectors`` (the ``inner_product`` flag: scores are ``user_factors_ . item_factors_``, which
    a vector index can serve), ``explains_attributes`` (`AttributeExplainer`), ``context`` (`ContextScorer`),
    ``explains_scores`` (`ScoreExplainer`)."""

    attributes: bool = False
    histories: bool = False
    sequences: bool = False
    new_items: bool = False
    new_item_histories: bool = False
    folds_in_history: bool = False
    fold_in: bool = False
    ratings: bool = False
    vectors: bool = False
    explains_attributes: bool = False
    context: bool = False
    explains_scores: bool = False


def capabilities(scorer: Scorer) -> Capabilities:
    """The `Capabilities` that ``scorer`` declares by its methods (the protocols above) and flags."""
    sequences = isinstance(scorer, SequenceScorer)
    folds = bool(getattr(type(scorer), "folds_in_history", False))
    return Capabilities(
        attributes=isinstance(scorer, AttributeScorer),
        histories=isinstance(scorer, HistoryScorer),
        sequences=sequences,
        new_items=isinstance(scorer, NewItemScorer),
        new_item_histories=isinstance(scorer, NewItemHistoryScorer),
        folds_in_history=folds and (sequences or isinstance(scorer, HistoryScorer)),
        fold_in=isinstance(scorer, FoldInScorer),
        ratings=bool(scorer.explicit) and isinstance(scorer, RatingPredictor),
        vectors=bool(getattr(type(scorer), "inner_product", False)),
        explains_attributes=isinstance(scorer, AttributeExplainer),
        context=isinstance(scorer, ContextScorer),
        explains_scores=isinstance(scorer, ScoreExplainer),
    )


def trained_rows(scorer: Scorer) -> sp.csr_matrix | None:
    """The (weighted) interaction rows a history scorer keeps from training (``user_items_``), None when it keeps
    none: what a trained user's events since training are added to."""
    return getattr(scorer, "user_items_", None)


CATALOG = Registry("algorithm", "tailored.models")
"""Every scorer by name (`tailored algorithms`); ``@register(name)`` adds one."""
register = CATALOG.register


def algorithm_names() -> list[str]:
    return CATALOG.names()


def scorer_class(name: str) -> type:
    return CATALOG[name]


def hyperparameters(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def create_scorer(name: str, params: Mapping[str, Any] | None = None) -> Scorer:
    """Instantiate ``name`` with ``params`` (strings from the command line are converted to the field types)."""
    cls = scorer_class(name)
    fields = hyperparameters(cls)
    types = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in (params or {}).items():
        if key not in fields:
            valid = ", ".join(sorted(fields)) or "none"
            raise ConfigError(f"Unknown parameter '{key}' for algorithm '{name}'. Valid parameters: {valid}.")
        kwargs[key] = convert(value, types[key], f"{name}.{key}")
    return check_hyperparameters(cls(**kwargs), name)


POSITIVE = frozenset({"factors", "epochs", "batch_size", "neighbors", "heads", "blocks", "window", "max_length",
                      "negatives", "learning_rate"})
"""Shared hyperparameter names (sizes, counts of passes, steps) whose value must be above 0."""
FRACTIONS = frozenset({"dropout", "id_dropout", "validation_fraction"})
"""Shared hyperparameter names whose value must be below 1."""


def check_hyperparameters(config: Any, where: str) -> Any:
    """``config`` (a dataclass: a scorer, a Recommender) when each of its numbers can be trained with; otherwise a
    ConfigError naming the parameter. Refused: NaN; an infinity where the default is finite (an infinite or None
    default means that infinity is "off"); a negative number where the default is not negative; 0 or less for the
    names of `POSITIVE`; 1 or more for those of `FRACTIONS`."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        default = field.default if field.default is not dataclasses.MISSING else None
        unbounded = default is None or (isinstance(default, float) and math.isinf(default))
        problem = (
            "is not a number" if math.isnan(value)
            else "must be finite" if math.isinf(value) and not unbounded
            else "must be above 0" if field.name in POSITIVE and value <= 0
            else "must not be negative" if value < 0 and not (isinstance(default, int | float) and default < 0)
            else "must be below 1" if field.name in FRACTIONS and value >= 1
            else None
        )
        if problem:
            raise ConfigError(f"Parameter {where}.{field.name}={value!r} {problem} (default {default!r}).")
    return config


CHECKED_USERS = 64
"""Users whose scores the post-training check (`check_scores`) reads, spread over the trained users."""


def check_scores(scorer: Scorer, dataset: Dataset) -> None:
    """The post-training check: a fitted scorer's scores for up to `CHECKED_USERS` users with interactions must hold
    at least one finite score and neither NaN nor +inf (-inf marks items left out on purpose). Otherwise a
    TailoredError names the algorithm: such a model would recommend nothing, or garbage, to everyone."""
    warm = np.flatnonzero(dataset.user_counts() > 0)
    if len(warm) == 0:
        return
    users = warm[np.unique(np.linspace(0, len(warm) - 1, min(len(warm), CHECKED_USERS)).astype(np.int64))]
    scores = np.asarray(scorer.score(users))
    broken = np.isnan(scores) | (scores == np.inf)
    if broken.any() or not np.isfinite(scores).any():
        name = getattr(scorer, "algorithm", type(scorer).__name__)
        raise TailoredError(
            f"The {name} model failed its post-training check: {int(broken.any(axis=1).sum())} of {len(users)} "
            f"users checked have NaN or infinite scores and {int((~np.isfinite(scores).any(axis=1)).sum())} have no "
            f"finite score, so it would recommend nothing useful. Check the data for extreme values (`tailored check`) "
            f"and the parameters ({params_of(scorer)})."
        )


def params_of(scorer: Scorer) -> dict[str, Any]:
    return {name: getattr(scorer, name) for name in hyperparameters(type(scorer))}


def check_fitted(scorer: object, attribute: str) -> None:
    if not hasattr(scorer, attribute):
        raise NotFittedError(scorer)


def fitted_state(scorer: object) -> dict[str, Any]:
    """Learned attributes (``name_``): arrays, sparse matrices and plain scalars."""
    return {k: v for k, v in vars(scorer).items() if k.endswith("_") and not k.startswith("_")}


def restore_state(scorer: object, state: Mapping[str, Any]) -> None:
    for key, value in state.items():
        setattr(scorer, key, value)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise best ``k`` columns of ``scores`` (best first) with argpartition; -inf entries come out as -1."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.empty((scores.shape[0], 0), np.int64), np.empty((scores.shape[0], 0), scores.dtype)
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(k), (len(scores), 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    items = np.take_along_axis(part, order, axis=1)
    values = np.take_along_axis(part_scores, order, axis=1)
    items[~np.isfinite(values)] = -1
    return items, values


def user_rows(matrix: sp.csr_matrix, users: np.ndarray) -> sp.csr_matrix:
    """Rows of a user x item CSR matrix for ``users`` (indices beyond the matrix give empty rows), gathered straight
    from ``indptr`` (scipy's fancy indexing costs more than the copy for the small blocks of serving)."""
    users = np.asarray(users, np.int64)
    inside = (users >= 0) & (users < matrix.shape[0])
    safe = np.where(inside, users, 0)
    starts, ends = matrix.indptr[safe], np.where(inside, matrix.indptr[safe + 1], matrix.indptr[safe])
    lengths = ends - starts
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    positions = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
    return sp.csr_matrix((matrix.data[positions], matrix.indices[positions], indptr),
                         shape=(len(users), matrix.shape[1]))


def factor_scores(user_factors: np.ndarray, item_factors: np.ndarray, users: np.ndarray, items: np.ndarray | None
                  ) -> np.ndarray:
    """Dot products of user and item factor rows; users outside the training users score zero everywhere."""
    users = np.asarray(users, np.int64)
    inside = (users >= 0) & (users < len(user_factors))
    rows = np.where(inside[:, None], user_factors[np.where(inside, users, 0)], 0.0).astype(np.float32)
    return rows @ (item_factors if items is None else item_factors[items]).T


@dataclass(frozen=True)
class Float:
    """A real hyperparameter range for tuning (log-uniform when ``log``)."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]


SearchSpace = dict[str, Float | Int | Choice]


def standardize(scores: np.ndarray, over: np.ndarray | None = None) -> np.ndarray:
    """Each row as z-scores: centred and scaled by the mean and standard deviation of the row's entries in ``over``
    (a boolean mask; default: its finite entries). A constant row gives zeros, a row with no entry in ``over`` is left
    as it is; -inf stays -inf; the dtype is kept."""
    over = np.isfinite(scores) if over is None else over
    count = np.maximum(over.sum(axis=1, keepdims=True), 1)
    mean = np.where(over, scores, 0.0).sum(axis=1, keepdims=True) / count
    spread = np.sqrt(np.where(over, (scores - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count)
    spread = np.where(spread > 0, spread, 1.0)
    return ((scores - mean) / spread).astype(scores.dtype, copy=False)
