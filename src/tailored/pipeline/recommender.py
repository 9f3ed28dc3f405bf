"""Recommender: the only thing that recommends. Scorer + cold-start fallback + seen-item exclusion + top-n."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.columns import ITEM_ID, MODEL, RANK, REASONS, SCORE, TIMESTAMP, USER_ID
from tailored.data.activity import DAY, daily_counts, interaction_times
from tailored.data.baskets import co_purchase_counts
from tailored.data.dataset import Dataset
from tailored.data.features import ItemEncoder
from tailored.data.idmap import IdMap
from tailored.data.transforms import DEFAULT_WEIGHTING, Weighting, apply_weighting, resolve_weighting, time_decay_weights
from tailored.config import convert
from tailored.errors import ConfigError, DataError, NotFittedError
from tailored.models.base import (Scorer, check_hyperparameters, check_scores, create_scorer, hyperparameters, standardize,
                                  scorer_class, top_k, user_rows)
from tailored.models.content_ridge import ContentRidgeScorer
from tailored.data.features import attribute_problems, attribute_vocabulary, usable_columns
from tailored.models.demographic import DemographicScorer
from tailored.models.popularity import PopularityScorer
from tailored.rank.base import Catalogue, Request, Reranker, Stage, is_reranker
from tailored.query import Context, Query
from tailored.rank.explain import reasons_for

class RecommendationWarning(UserWarning):
    """What `Recommender.recommend` warns about, as the command line does: users who get an anonymous visitor's list,
    lists shorter than asked."""


@dataclass(frozen=True, eq=False)
class Recommendations:
    """One query's list, best first: external item ids, scores, each item's reasons (None unless asked) and the model
    that produced it (`Recommender.list_models`)."""

    item_ids: np.ndarray
    scores: np.ndarray
    reasons: np.ndarray | None
    models: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)


FULL_PRIOR_SESSION = 5
"""Sessions of up to this many items get the whole ``session_prior``; a longer one of n items gets ``5 / n`` of it."""


@dataclass(eq=False)
class Recommender:
    """Fits a scorer on weighted interactions and turns its scores into top-n lists with external ids.

    Users unseen in training (or with no training interaction) get the ``fallback`` scorer's list: by default the
    ``demographic`` model when the training data has usable user attributes (so new users described by their
    attributes get lists that depend on them), popularity otherwise.
    Items without any training interaction are recommended only from their attributes: scored by the scorer when
    it handles cold items, otherwise by the ``item_model_`` (`content-ridge`, fitted when items carry attributes),
    whose scores are mapped per user onto the scorer's scale by least squares over the warm items. ``with_items``
    adds items unknown at training time (``--items`` at recommend time) the same way.
    ``weighting`` (default ``auto``: chosen from the data, see `resolve_weighting`) is resolved at ``fit`` into
    ``weighting_``, with the reason in ``weighting_reason_``.
    """

    scorer: Scorer
    weighting: Weighting = DEFAULT_WEIGHTING
    confidence_alpha: float = 1.0
    decay_half_life_days: float | None = None
    session_prior: float = 2.0
    exclude_seen: bool = True
    fallback: Scorer | None = None
    batch_size: int = 1024
    stages: list[Stage | Reranker] = field(default_factory=list)
    candidate_pool: int = 1000

    def fit(self, dataset: Dataset) -> Self:
        if not self.session_prior >= 0:
            raise ConfigError(f"session_prior must be 0 or more, got {self.session_prior}.")
        self.weighting_, self.weighting_reason_ = resolve_weighting(self.weighting, dataset, self.scorer.explicit)
        train = apply_weighting(decayed(dataset, self.decay_half_life_days), self.weighting_, self.confidence_alpha)
        self.scorer.fit(train)
        check_scores(self.scorer, train)
        for stage in self.stages:
            stage.fit(dataset)
        self.fallback_ = (self.fallback if self.fallback is not None else default_fallback(dataset)).fit(train)
        self.item_model_ = None if self.scorer.handles_cold_items else item_model(train)
        self.users_ = dataset.users
        self.items_ = dataset.items
        self.seen_ = dataset.matrix(binary=True)
        self.warm_users_ = dataset.user_counts() > 0
        self.warm_items_ = dataset.item_counts() > 0
        self.candidate_items_ = self.warm_items_.copy()
        if self.scorer.handles_cold_items or self.item_model_ is not None:
            self.candidate_items_ |= _has_attributes(dataset)
        self.user_vocabulary_ = attribute_vocabulary(dataset.user_attributes, DemographicScorer.max_categories)
        self.item_encoder_, self.item_features_ = item_features(dataset)
        self.co_purchase_, self.basket_count_ = co_purchase_counts(dataset)
        self.item_attributes_ = dataset.item_attributes
        self.first_seen_, self.last_seen_ = interaction_times(dataset)
        self.daily_counts_, self.counts_end_ = daily_counts(dataset)
        self.new_items_ = None
        return self

    def with_items(self, attributes: pd.DataFrame) -> Recommender:
        """A view whose catalogue also holds the items of ``attributes`` (``item_id`` + attribute columns) unknown at
        training time; they are scored from their attributes. Items already known are left as trained."""
        self._check()
        known = self.items_.index(attributes[ITEM_ID].to_numpy(), missing="mask") >= 0
        new = attributes[~known].drop_duplicates(ITEM_ID, keep="last").reset_index(drop=True)
        if new.empty:
            return self
        if not hasattr(self.scorer, "score_new_items") and self.item_model_ is None:
            raise DataError(
                f"{len(new)} new item(s) (e.g. {new[ITEM_ID].iloc[0]!r}) cannot be scored: the model was trained "
                "without item attributes. Retrain with an items table (--items FILE) to recommend new items."
            )
        view = copy.copy(self)
        view.items_ = IdMap(np.concatenate([self.items_.external_ids.astype(str), new[ITEM_ID].astype(str).to_numpy()]), name="item")
        view.candidate_items_ = np.concatenate([self.candidate_items_, np.ones(len(new), bool)])
        view.seen_ = sp.hstack([self.seen_, sp.csr_matrix((self.seen_.shape[0], len(new)), dtype=self.seen_.dtype)], format="csr")
        view.new_items_ = new if self.new_items_ is None else pd.concat([self.new_items_, new], ignore_index=True)
        if self.item_encoder_ is not None:
            added = ItemEncoder.from_arrays(self.item_encoder_).transform(new)
            view.item_features_ = sp.vstack([self.item_features_, added], format="csr")
        known_attributes = self.item_attributes_ if self.item_attributes_ is not None else pd.DataFrame(index=range(len(self.items_)))
        view.item_attributes_ = pd.concat([known_attributes, new.drop(columns=ITEM_ID)], ignore_index=True)
        if self.first_seen_ is not None:
            view.first_seen_ = np.concatenate([self.first_seen_, np.full(len(new), np.nan)])
            view.last_seen_ = sp.hstack([self.last_seen_, sp.csr_matrix((self.seen_.shape[0], len(new)), dtype=np.float32)], format="csr")
        n_items = len(view.items_)
        if self.co_purchase_ is not None:  # new items: never bought together, never bought recently
            view.co_purchase_ = _resized(self.co_purchase_, (n_items, n_items))
        if self.daily_counts_ is not None:
            view.daily_counts_ = _resized(self.daily_counts_, (n_items, self.daily_counts_.shape[1]))
        return view

    def with_stages(self, stages: list[Stage | Reranker]) -> Recommender:
        """A view whose ranking also runs ``stages`` (after its own), e.g. the rules or calendar of one request."""
        view = copy.copy(self)
        view.stages = [*self.stages, *stages]
        return view

    def unseen_events(self, events: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``events`` (``user_id, item_id, timestamp``, unix seconds) that training did not hold: of a
        user trained on their own interactions, with an item of the catalogue, later than the user's last trained
        interaction with that item (a model trained without timestamps: an item the user had not interacted with).
        Events of a stored history that training read are thus left out, and those since training kept."""
        return events[self._unseen(*self._event_arrays(events))]

    def with_events(self, events: pd.DataFrame) -> Recommender:
        """A view that also knows the ``events`` (``user_id, item_id, timestamp``) of its trained users that training
        did not hold (`unseen_events`: those stored since training), without refitting: their items count as seen
        (left out of the lists with ``exclude_seen``; repurchase cycles count from these times), and a scorer that
        folds a history in (``folds_in_history``: EASE, item-kNN, ALS, the autoencoders, SASRec) scores those users
        from their training history extended by them (`_folded_scores`). The recent-activity stage reads them from
        the context's ``recent``. Events of users the model does not know are left to the session path (``recent``)."""
        users, items, seconds = self._event_arrays(events)
        keep = self._unseen(users, items, seconds)
        if not keep.any():
            return self
        users, items, days = users[keep], items[keep], seconds[keep] / DAY
        order = np.lexsort((days, users))  # each user's events in time order
        owners, counts = np.unique(users[order], return_counts=True)
        view = copy.copy(self)
        view.event_users_ = owners
        view.events_ = sp.csr_matrix((days[order], items[order], np.concatenate([[0], np.cumsum(counts)])),
                                     shape=(len(owners), len(self.items_)))  # built from its arrays: repeats kept
        return view

    def _event_arrays(self, events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """User and item indices (-1: unknown) and times (unix seconds) of an events frame."""
        self._check()
        missing = [column for column in (USER_ID, ITEM_ID, TIMESTAMP) if column not in events]
        if missing:
            raise DataError(f"Events lack the column(s) {missing}: give user_id, item_id and timestamp (unix seconds).")
        return (self.users_.index(events[USER_ID].to_numpy(dtype=str)), self.items_.index(events[ITEM_ID].to_numpy(dtype=str)),
                events[TIMESTAMP].to_numpy(np.float64))

    def _unseen(self, users: np.ndarray, items: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Which events (indices, times) training did not hold: see `unseen_events`."""
        keep = (users >= 0) & (items >= 0)
        keep[keep] = self.warm_users_[users[keep]]
        if not keep.any():
            return keep
        pairs = users[keep], items[keep]
        if self.last_seen_ is None:
            trained = np.asarray(self.seen_[pairs]).ravel() > 0
        else:
            last = np.asarray(self.last_seen_[pairs]).ravel()
            trained = (last != 0) & (seconds[keep] / DAY <= last)
        keep[keep] = ~trained
        return keep

    def _events_of(self, users: np.ndarray) -> sp.csr_matrix | None:
        """The events since training (`with_events`) of a block of user indices (-1: none), rows x items valued in
        days since the epoch, each row in time order with repeats; None when no user of the block has any."""
        owners = getattr(self, "event_users_", None)
        if owners is None:
            return None
        slots = np.searchsorted(owners, users)
        slots = np.where((slots < len(owners)) & (owners[np.minimum(slots, len(owners) - 1)] == users), slots, -1)
        if (slots < 0).all():
            return None
        rows = user_rows(self.events_, slots)
        return sp.csr_matrix((rows.data, rows.indices, rows.indptr), shape=(len(users), self.seen_.shape[1]))

    def restricted_to(self, item_ids: np.ndarray) -> Recommender:
        """A view that ranks only ``item_ids`` (e.g. a campaign's products or the newly added items)."""
        self._check()
        indices = self.items_.index(np.asarray(item_ids).astype(str), missing="mask")
        if (indices < 0).any():
            unknown = np.asarray(item_ids)[indices < 0]
            raise DataError(f"{len(unknown)} candidate item(s) unknown to the model, e.g. {unknown[:3].tolist()}: "
                            "add new items with their attributes (--items FILE).")
        view = copy.copy(self)
        view.candidate_items_ = self.candidate_items_ & np.isin(np.arange(len(self.items_)), indices)
        return view

    @property
    def trained_until(self) -> float | None:
        """The time of the latest training interaction (unix seconds); None without timestamps."""
        if self.last_seen_ is None or self.last_seen_.nnz == 0:
            return None
        return float(self.last_seen_.data.max()) * DAY

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "seen_")

    def _check(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(self)

    # -- ranking ----------------------------------------------------------------------------------------------
    @property
    def catalogue(self) -> Catalogue:
        """The items as the stages see them."""
        return Catalogue(self.items_.external_ids, self.item_attributes_, self.item_features_, self.first_seen_,
                         self.seen_, self.co_purchase_, self.basket_count_)

    def score_block(self, users: np.ndarray, context: Context | None = None) -> np.ndarray:
        """Dense scores for user indices (-1 = unknown), with excluded items at -inf, adjusted by the stages for
        ``context`` (None: now, nothing else known)."""
        users = np.asarray(users, np.int64)
        scores, warm = self._raw_scores(users)
        return self._adjusted(scores, self._request(users, warm, scores, context))

    def _request(self, users: np.ndarray, warm: np.ndarray, scores: np.ndarray, context: Context | None,
                 tally: dict[str, Any] | None = None) -> Request:
        """Masks non-candidates and (by default) seen items in ``scores``, and describes the block for the stages."""
        scores[:, ~self.candidate_items_] = -np.inf
        rows = np.where(warm, users, -1)
        history = user_rows(self.seen_, rows)
        last_seen = None if self.last_seen_ is None else user_rows(self.last_seen_, rows)
        events = self._events_of(rows)
        if events is not None:  # events since training: seen now, and the latest time of each item
            latest = _latest_per_item(events)
            history = history.maximum(latest.astype(bool).astype(history.dtype)).tocsr()
            last_seen = None if last_seen is None else last_seen.maximum(latest).tocsr()
        excluded = None
        if self.exclude_seen and history.nnz:
            excluded = history.tocoo()
            excluded.data = scores[excluded.row, excluded.col].copy()
            scores[excluded.row, excluded.col] = -np.inf
        return Request(users, context or Context(), self.catalogue, history, last_seen=last_seen,
                       excluded_seen=excluded, tally={} if tally is None else tally)

    def _adjusted(self, scores: np.ndarray, request: Request) -> np.ndarray:
        """Seen items that a stage readmits (repurchase cycles) get their score back, then the adjusters run."""
        for stage in self.stages:
            if hasattr(stage, "readmit"):
                rows, columns, restored = stage.readmit(request)
                scores[rows, columns] = restored
        for stage in self.stages:
            if not is_reranker(stage):
                scores = stage.adjust(scores, request)  # type: ignore[union-attr]
        return scores

    def _ranked(self, scores: np.ndarray, request: Request, n: int, explain: bool, exclude: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Adjusters, then the best ``n`` (from a pool of ``n * pool_factor`` when re-rankers follow), then the
        re-rankers; ``exclude`` (item indices) never come out; with ``explain``, each item's reasons."""
        scores = self._adjusted(scores, request)
        if exclude is not None:
            scores[:, exclude] = -np.inf
        rerankers = [stage for stage in self.stages if is_reranker(stage)]
        pool = n * max([stage.pool_factor for stage in rerankers], default=1)  # type: ignore[union-attr]
        items, values = top_k(scores, pool)
        request.scores = scores
        for stage in rerankers:
            items, values = stage.rerank(items, values, request, n)  # type: ignore[union-attr]
        items, values = items[:, :n], values[:, :n]
        return items, values, reasons_for(items, request, self.stages) if explain else None

    def recommend_indices(self, users: np.ndarray, n: int, context: Context | None = None, explain: bool = False,
                          tally: dict[str, Any] | None = None
                          ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]:
        """Yield ``(user_indices, item_indices[b, n], scores[b, n], reasons[b, n] | None)`` blocks; missing slots
        are -1 / -inf. ``tally`` carries the run's state across calls (e.g. exposure counts)."""
        self._check()
        users = np.asarray(users, np.int64)
        tally = {} if tally is None else tally
        for start in range(0, len(users), self.batch_size):
            block = users[start : start + self.batch_size]
            scores, warm = self._raw_scores(block)
            yield block, *self._ranked(scores, self._request(block, warm, scores, context, tally), n, explain)

    def recommend(self, user_ids: np.ndarray | list, n: int = 10, attributes: pd.DataFrame | None = None,
                  context: Context | None = None, explain: bool = False, tally: dict[str, Any] | None = None,
                  warn: bool = True) -> pd.DataFrame:
        """Top-n per user as a tidy frame ``user_id, item_id, score, rank, model`` (rank 1 is best), users in the given
        order; with ``explain``, a ``reasons`` column too. ``model`` says what produced each user's list
        (`list_models`): the scorer (``ease``), or a fallback (``popularity (cold start)``).

        ``attributes`` (a ``user_id`` column + attribute columns) describes users unknown at training time; an
        attribute-aware fallback scores them from those attributes. ``context`` (date, location...) reaches the
        stages; without it they see the current time. ``tally`` carries a run's state across calls. With ``warn``, a
        `RecommendationWarning` tells what the command line warns about (`list_warnings`).
        """
        self._check()
        tally = {} if tally is None else tally
        user_ids = np.asarray(user_ids)
        indices = self.users_.index(user_ids, missing="mask")
        without_history = indices < 0
        without_history[~without_history] = ~self.warm_users_[indices[~without_history]]
        session = self._session(context) if without_history.any() else None
        from_session = without_history if session is not None else np.zeros(len(user_ids), bool)
        described = np.zeros(len(user_ids), bool)
        table = attributes.drop_duplicates(USER_ID, keep="last").set_index(USER_ID) if attributes is not None else None
        if table is not None and self._attribute_scorers():
            described = (indices < 0) & ~from_session & np.isin(user_ids, table.index)
        frames = []
        plain = user_ids[~(from_session | described)]
        for start, (block, *ranked) in zip(range(0, len(plain), self.batch_size),
                                           self.recommend_indices(indices[~(from_session | described)], n, context,
                                                                  explain, tally)):
            frames.append(self._tidy(plain[start : start + len(block)], *ranked))
        for block in self._blocks(user_ids[from_session]):
            items, session_scores, masked = session  # type: ignore[misc]
            prior = standardize(self._prior(block, table), ~masked)
            weight = self._prior_weight(len(np.unique(items)))
            scores = prior if session_scores is None else session_scores + weight * prior
            described_here = table is not None and np.isin(block, table.index).any()
            rows = table.reindex(block).reset_index(drop=True) if described_here else None  # type: ignore[union-attr]
            frames.append(self._new_users(block, scores.astype(np.float32), rows, items, context, n, explain, tally))
        for block in self._blocks(user_ids[described]):
            rows = table.loc[block].reset_index(drop=True)  # type: ignore[union-attr]
            scores = self._attribute_scores(rows)
            frames.append(self._new_users(block, scores, rows, np.empty(0, np.int64), context, n, explain, tally))
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({USER_ID: [], ITEM_ID: [], SCORE: [], RANK: []})
        if (from_session | described).any():  # back to the given order of users
            position = pd.Index(user_ids).get_indexer(frame[USER_ID])
            frame = frame.iloc[np.lexsort((frame[RANK].to_numpy(), position))].reset_index(drop=True)
        names = self.list_models(indices, from_session, described, session)
        if len(frame) and (names == names[0]).all():  # one model for every list (a single user's request): no lookup
            column = pd.Categorical.from_codes(np.zeros(len(frame), np.int8), [names[0]])
        else:
            models = pd.Series(names, index=user_ids)
            column = pd.Categorical(models[~models.index.duplicated()].reindex(frame[USER_ID]).to_numpy())
        frame.insert(4, MODEL, column)
        for message in self.list_warnings(user_ids, frame, n, attributes, context) if warn else []:
            warnings.warn(message, RecommendationWarning, stacklevel=2)
        return self._with_attribute_reasons(frame, table) if explain else frame

    def recommend_one(self, query: Query, n: int, explain: bool = False) -> Recommendations:
        """``recommend_one(query, n, explain=False) -> Recommendations``: the top-``n`` of one query, exactly the list
        ``recommend([query.user_id], n, attributes=..., context=query.context, explain=explain, warn=False)`` gives,
        as arrays (no frame is built): a trained user's; a new user's from ``query.attributes`` (column -> value) and
        the context's ``recent`` items (a session); an anonymous session's (``user_id`` None) from ``recent`` alone.
        ``query.exclude`` (item ids) are left out. Views add the rest: `with_events` (a trained user's events since
        training), `with_stages` (a request's rules), `with_items` (items added since training)."""
        self._check()
        user_id = np.array([query.user_id if query.user_id is not None else ""], dtype=object)
        index = -1 if query.user_id is None else self.users_.position(query.user_id)
        indices = np.array([index], np.int64)
        trained = index >= 0 and bool(self.warm_users_[index])
        context = query.context
        table = None
        if query.attributes is not None:
            table = pd.DataFrame([dict(query.attributes)], index=pd.Index(user_id, name=USER_ID))
        session = None if trained else self._session(context)
        described = not trained and session is None and index < 0 and table is not None and bool(self._attribute_scorers())
        exclude = self.items_.index(np.asarray(query.exclude, dtype=str), missing="drop") if query.exclude else None
        tally: dict[str, Any] = {}
        if session is not None:
            items, session_scores, masked = session
            prior = standardize(self._prior(user_id, table), ~masked)
            weight = self._prior_weight(len(np.unique(items)))
            scores = prior if session_scores is None else session_scores + weight * prior
            rows = None if table is None else table.reset_index(drop=True)
            ranked = self._new_user_lists(scores.astype(np.float32), rows, items, context, n, explain, tally, exclude)
        elif described:
            rows = table.reset_index(drop=True)  # type: ignore[union-attr]
            ranked = self._new_user_lists(self._attribute_scores(rows), rows, np.empty(0, np.int64), context, n,
                                          explain, tally, exclude)
        else:
            scores, warm = self._raw_scores(indices)
            ranked = self._ranked(scores, self._request(indices, warm, scores, context, tally), n, explain, exclude)
        items, values, reasons = ranked
        valid = items[0] >= 0
        items = items[0][valid]
        name = self.list_models(indices, np.array([session is not None]), np.array([described]), session)[0]
        if reasons is not None:
            reasons = self._attribute_reasons(user_id[np.zeros(len(items), np.int64)], items, reasons[0][valid], table)
        return Recommendations(self.items_.ids(items), values[0][valid].astype(np.float64), reasons,
                               np.full(len(items), name, dtype=object))

    def list_models(self, indices: np.ndarray, from_session: np.ndarray, described: np.ndarray,
                    session: tuple[np.ndarray, np.ndarray | None, np.ndarray] | None) -> np.ndarray:
        """What ranks each user (their indices, -1: unknown, and how `recommend` serves them): the scorer for a user
        trained on their own interactions; ``(session)`` after the scorer (or the fallback, for a scorer that cannot
        fold a session in) for a user known by recent items; ``(cold start)`` after the attribute models for a new
        user described by attributes, after `cold_user_models` for a training user without interactions, after the
        fallback for an unknown user."""
        known = indices >= 0
        warm = known.copy()
        warm[known] = self.warm_users_[indices[known]]
        by_session = self.scorer if session is not None and session[1] is not None else self.fallback_
        return np.select(
            [warm, from_session, described, known],
            [self.scorer.algorithm, f"{by_session.algorithm} (session)",
             "+".join(model.algorithm for model in self._attribute_scorers()) + " (cold start)",
             "+".join(self.cold_user_models()) + " (cold start)"],
            f"{self.fallback_.algorithm} (cold start)")

    def list_warnings(self, user_ids: np.ndarray, frame: pd.DataFrame, n: int, attributes: pd.DataFrame | None = None,
                      context: Context | None = None) -> list[str]:
        """The command line's warnings about lists for ``user_ids`` (``frame``, ``n`` asked): users unknown to the
        model and without attributes or recent items (`undescribed_users`), lists shorter than ``n``."""
        messages = []
        undescribed = self.undescribed_users(user_ids, attributes, context)
        if len(undescribed):
            messages.append(undescribed_message(undescribed, self.fallback_.algorithm))
        short = short_lists(frame, n, user_ids)
        if short:
            messages.append(short_lists_message(short, n))
        return messages

    def undescribed_users(self, user_ids: np.ndarray, attributes: pd.DataFrame | None = None,
                          context: Context | None = None) -> np.ndarray:
        """The ``user_ids`` that the model does not know and that come with neither attributes nor recent items: all
        they can get is the cold-start list of an anonymous visitor (often a sign of ids that do not match
        training's)."""
        unknown = np.asarray(user_ids)[self.users_.index(np.asarray(user_ids), missing="mask") < 0]
        if context is not None and context.recent:
            return unknown[:0]
        described = attributes[USER_ID].astype(str).to_numpy() if attributes is not None else np.array([], str)
        return unknown[~np.isin(unknown, described)]

    def _with_attribute_reasons(self, frame: pd.DataFrame, table: pd.DataFrame | None) -> pd.DataFrame:
        """``frame`` with the attribute reasons of `_attribute_reasons` put first in its reasons."""
        if frame.empty:
            return frame
        items = self.items_.index(frame[ITEM_ID].to_numpy(), missing="mask")
        frame[REASONS] = self._attribute_reasons(frame[USER_ID].to_numpy(), items, frame[REASONS].to_numpy(dtype=object),
                                                 table)
        return frame

    def _attribute_reasons(self, ids: np.ndarray, items: np.ndarray, given: np.ndarray, table: pd.DataFrame | None
                           ) -> np.ndarray:
        """``given`` reasons of (user id, item index) pairs, with first, for users without training history whose
        attributes are known (the training users table's, or ``table``'s), the attribute that most raises each item's
        rate, when the fallback can tell (`DemographicScorer.attribute_reasons`: ``more popular with
        occupation=writer``)."""
        if not hasattr(self.fallback_, "attribute_reasons") or len(ids) == 0:
            return given
        users = self.users_.index(ids, missing="mask")
        quiet = users >= 0
        quiet[quiet] = ~self.warm_users_[users[quiet]]
        new = (users < 0) & np.isin(ids, table.index if table is not None else [])
        trained_item = (items >= 0) & (items < self._n_trained_items)
        added = np.full(len(ids), "", dtype=object)
        pairs = np.flatnonzero(quiet & trained_item)
        added[pairs] = self.fallback_.attribute_reasons(self.fallback_.user_features_[users[pairs]], items[pairs])
        pairs = np.flatnonzero(new & trained_item)
        if len(pairs):
            described = self.fallback_.indicators(table.loc[ids[pairs]].reset_index())  # type: ignore[union-attr]
            added[pairs] = self.fallback_.attribute_reasons(described, items[pairs])
        return np.where(given == "", added, np.where(added == "", given, added + "; " + given))

    def _attribute_scorers(self) -> list[Any]:
        """What scores users known only by their attributes: the scorer when it does (ncf, two-tower), the fallback
        when it does (`demographic`) and is not the same kind of model as the scorer."""
        scorers = [self.scorer] if hasattr(self.scorer, "score_attributes") else []
        if hasattr(self.fallback_, "score_attributes") and type(self.fallback_) is not type(self.scorer):
            scorers.append(self.fallback_)
        return scorers

    def cold_user_models(self) -> list[str]:
        """The algorithms that rank a training user without interactions (`_cold_user_scores`): the fallback, or
        both the scorer and the fallback when each scores attributes."""
        self._check()
        scorers = self._attribute_scorers()
        return [model.algorithm for model in scorers] if len(scorers) > 1 else [self.fallback_.algorithm]

    def _attribute_scores(self, rows: pd.DataFrame) -> np.ndarray:
        """Scores (rows x trained items) of new users described by ``rows``: those of the one `_attribute_scorers`, or
        of both standardised over the trained items and added: on cold-user validation carves of MovieLens 100K, ncf
        alone 0.541, the demographic model 0.560, both 0.562 (20 carves); two-tower 0.505, 0.561, 0.561 (10)."""
        scorers = self._attribute_scorers()
        if len(scorers) == 1:
            return scorers[0].score_attributes(rows)
        return self._fused([model.score_attributes(rows) for model in scorers])

    def _fused(self, scores: list[np.ndarray]) -> np.ndarray:
        """The sum of the models' scores (users x trained items), each standardised over the trained items."""
        masked = ~self.warm_items_[None, : self._n_trained_items]
        return np.asarray(sum(standardize(np.asarray(part, np.float64), ~masked) for part in scores), np.float32)

    def _blocks(self, ids: np.ndarray) -> Iterator[np.ndarray]:
        return (ids[start : start + self.batch_size] for start in range(0, len(ids), self.batch_size))

    def _session(self, context: Context | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray] | None:
        """The trained items of the context's ``recent`` list (a session, oldest first), the scores (1 x trained
        items) of a user known only by them -- the scorer's: a sequence model (``score_sessions``) reads their order,
        a history model (``score_rows``: EASE, kNN, ALS, LightGCN, ncf, content, content-ridge, the autoencoders, the
        ensemble) their set; None for the other scorers -- standardised, and the items they are standardised over
        (masked: the session's and the untrained ones). ``recommend`` adds the standardised `_prior` weighted by
        `_prior_weight` (a few items say little: the prior steadies them), and leaves the session's items out of the
        list. None without such items."""
        if context is None or not context.recent:
            return None
        items = self.catalogue.index(context.recent)
        items = items[items < self._n_trained_items]
        if len(items) == 0:
            return None
        if hasattr(self.scorer, "score_sessions"):
            scores = self.scorer.score_sessions([items.tolist()])  # type: ignore[attr-defined]
        elif hasattr(self.scorer, "score_rows"):
            scores = self.scorer.score_rows(history_row(items, self._n_trained_items))  # type: ignore[attr-defined]
        else:  # a scorer that cannot fold in a history: the prior alone ranks, the session's items still left out
            scores = None
        masked = ~self.warm_items_[None, : self._n_trained_items].copy()
        masked[:, items] = True
        return items, None if scores is None else standardize(np.asarray(scores, np.float64), ~masked), masked

    def _prior(self, user_ids: np.ndarray, table: pd.DataFrame | None) -> np.ndarray:
        """What a session is blended with, per user (rows) over the trained items: the fallback's scores, from the
        attributes of the users that ``table`` (indexed by user id) describes when it scores attributes (the
        `demographic` model; the scorer's own attribute path, as ncf's or two-tower's, made a worse prior on
        validation), for an anonymous visitor otherwise."""
        prior = np.repeat(self.fallback_.score(np.array([-1])), len(user_ids), axis=0).astype(np.float64)
        if table is None or not hasattr(self.fallback_, "score_attributes"):
            return prior
        described = np.isin(user_ids, table.index)
        if described.any():
            rows = table.loc[user_ids[described]].reset_index(drop=True)
            prior[described] = self.fallback_.score_attributes(rows)  # type: ignore[attr-defined]
        return prior

    def _new_users(self, user_ids: np.ndarray, trained_scores: np.ndarray, user_attributes: pd.DataFrame | None,
                   session_items: np.ndarray, context: Context | None, n: int, explain: bool, tally: dict[str, Any]
                   ) -> pd.DataFrame:
        """Lists of users unknown to the model as a frame (`_new_user_lists`)."""
        return self._tidy(user_ids, *self._new_user_lists(trained_scores, user_attributes, session_items, context, n,
                                                          explain, tally))

    def _new_user_lists(self, trained_scores: np.ndarray, user_attributes: pd.DataFrame | None,
                        session_items: np.ndarray, context: Context | None, n: int, explain: bool,
                        tally: dict[str, Any], exclude: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Lists of users unknown to the model, from their scores over the trained items (from a session or
        attributes); the session's items are not recommended back unless ``exclude_seen`` is off."""
        user_ids = trained_scores
        scores = np.empty((len(user_ids), self.seen_.shape[1]), np.float32)
        scores[:, : self._n_trained_items] = trained_scores
        unknown, cold = np.full(len(user_ids), -1), np.zeros(len(user_ids), bool)
        history = history_row(session_items, self._n_trained_items) if len(session_items) else None
        scores = self._score_cold_items(unknown, cold, scores, user_attributes, history)
        request = self._request(unknown, cold, scores, context, tally)
        if self.exclude_seen:
            scores[:, session_items] = -np.inf
        return self._ranked(scores, request, n, explain, exclude)

    def attribute_problems(self, attributes: pd.DataFrame) -> list[str]:
        """What the cold-start path cannot use in the attributes of the users of ``attributes`` that the model does
        not know (lacking or foreign columns, missing or unseen values: `attribute_problems`)."""
        self._check()
        new = attributes[self.users_.index(attributes[USER_ID].to_numpy(), missing="mask") < 0]
        return attribute_problems(self.user_vocabulary_, new) if len(new) else []

    def item_attribute_problems(self, attributes: pd.DataFrame) -> list[str]:
        """What the item encoder cannot use in the attributes of the items of ``attributes`` that the model does not
        know (lacking or foreign columns, items that no trained value describes: `ItemEncoder.problems`); columns of
        the training table that training left out (ids, paths) are not foreign."""
        self._check()
        new = attributes[self.items_.index(attributes[ITEM_ID].to_numpy(), missing="mask") < 0]
        if new.empty or self.item_encoder_ is None:
            return []
        encoder = ItemEncoder.from_arrays(self.item_encoder_)
        seen = self.item_attributes_.columns
        left_out = [name for name in new.columns if name in seen and name not in encoder.blocks]
        return encoder.problems(new.drop(columns=left_out).reset_index(drop=True))

    def _tidy(self, user_ids: np.ndarray, items: np.ndarray, scores: np.ndarray, reasons: np.ndarray | None = None
              ) -> pd.DataFrame:
        valid = items >= 0
        rows, ranks = np.nonzero(valid)
        frame = pd.DataFrame(
            {
                USER_ID: user_ids[rows],
                ITEM_ID: self.items_.ids(items[valid]),
                SCORE: scores[valid].astype(np.float64),
                RANK: ranks + 1,
            }
        )
        if reasons is not None:
            frame[REASONS] = reasons[valid]
        return frame

    # -- rating prediction ------------------------------------------------------------------------------------
    def predict(self, user_ids: np.ndarray | list, item_ids: np.ndarray | list) -> np.ndarray:
        """A prediction for every (user, item) pair; ids unseen in training get the model's fallback."""
        self._check()
        users = self.users_.index(np.asarray(user_ids), missing="mask")
        items = self.items_.index(np.asarray(item_ids), missing="mask")
        if self.scorer.explicit:
            return np.asarray(self.scorer.predict(users, items), np.float64)  # type: ignore[attr-defined]
        predictions = np.zeros(len(users), np.float64)
        order = np.argsort(users, kind="stable")
        unique_users, starts = np.unique(users[order], return_index=True)
        for start in range(0, len(unique_users), self.batch_size):
            block = unique_users[start : start + self.batch_size]
            scores, _ = self._raw_scores(block)
            pair_slice = slice(starts[start], starts[start + len(block)] if start + len(block) < len(starts) else None)
            pairs = order[pair_slice]
            rows = np.searchsorted(block, users[pairs])
            known = items[pairs] >= 0
            predictions[pairs[known]] = scores[rows[known], items[pairs][known]]
        return predictions

    def _raw_scores(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scorer scores for warm users, fallback scores for the others; also returns the warm mask."""
        warm = users >= 0
        warm[warm] = self.warm_users_[users[warm]]
        scores = np.empty((len(users), self.seen_.shape[1]), np.float32)
        trained = slice(0, self._n_trained_items)
        folded = self._folded_scores(np.where(warm, users, -1)) if warm.any() else None
        plain = warm.copy()
        if folded is not None:  # users with events since training
            scores[folded[0], trained] = folded[1]
            plain[folded[0]] = False
        if plain.any():
            scores[plain, trained] = self._scorer_scores(users[plain])
        if (~warm).any():
            scores[~warm, trained] = self._cold_user_scores(users[~warm])
        return self._score_cold_items(users, warm, scores), warm

    def _cold_user_scores(self, users: np.ndarray) -> np.ndarray:
        """Scores of users without history: the fallback's; a users table's quiet users (known, no interactions) get
        those of every `_attribute_scorers`, fused as for new users described by the same attributes."""
        scores = np.asarray(self.fallback_.score(users), np.float32)
        scorers, quiet = self._attribute_scorers(), users >= 0
        if len(scorers) > 1 and quiet.any():
            scores[quiet] = self._fused([model.score(users[quiet]) for model in scorers])
        return scores

    def _scorer_scores(self, users: np.ndarray) -> np.ndarray:
        """The scorer's scores, or -- with a `with_vector_index` view -- the index's best ``candidate_pool`` items
        by the scorer's own inner product, every other item at -inf."""
        index = getattr(self, "vector_index_", None)
        if index is None:
            return self.scorer.score(users)
        items, values = index.search(self.scorer.user_factors_[users], self.candidate_pool)  # type: ignore[attr-defined]
        scores = np.full((len(users), self._n_trained_items), -np.inf, np.float32)
        rows = np.repeat(np.arange(len(users)), items.shape[1])
        found = items.ravel() >= 0
        scores[rows[found], items.ravel()[found]] = values.ravel()[found]
        return scores

    def _folded_scores(self, users: np.ndarray, vectors: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """For the block's trained users (-1: others) with events since training on trained items, when the scorer
        folds a history in (``folds_in_history``): their rows in the block and their scores over the trained items,
        from their training history extended by those events -- a sequence model's (``score_sessions``) training
        sequence with the events appended in time order; otherwise the history row (the scorer's ``user_items_``,
        else the binary training row) with each new item at 1 and the items already there at their trained value.
        With ``vectors``, the users' folded-in factors instead (``fold_in``: an inner-product scorer). None when
        there is nothing to fold in."""
        events = self._events_of(users)
        if events is None or not getattr(self.scorer, "folds_in_history", False):
            return None
        n_trained = self._n_trained_items
        pairs = events.tocoo()  # row by row, each in time order
        on_trained = pairs.col < n_trained
        owners, items = pairs.row[on_trained], pairs.col[on_trained]
        rows, starts = np.unique(owners, return_index=True)
        if len(rows) == 0:
            return None
        if hasattr(self.scorer, "score_sessions"):
            sequences = self.scorer.sequences_[users[rows]]  # type: ignore[attr-defined]
            histories = [[*sequence[sequence >= 0], *added]
                         for sequence, added in zip(sequences, np.split(items, starts[1:]))]
            return rows, np.asarray(self.scorer.score_sessions(histories), np.float32)  # type: ignore[attr-defined]
        source = getattr(self.scorer, "user_items_", None)
        trained = user_rows(self.seen_ if source is None else source, users[rows])[:, :n_trained]
        added = sp.csr_matrix((np.ones(len(items), trained.dtype), (np.searchsorted(rows, owners), items)),
                              shape=trained.shape)
        added.data[:] = 1  # repeats were summed
        extended = trained.maximum(added).tocsr()
        if vectors:
            return rows, self.scorer.fold_in(extended)  # type: ignore[attr-defined]
        return rows, np.asarray(self.scorer.score_rows(extended), np.float32)  # type: ignore[attr-defined]

    def top_from_index(self, user: int, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-``n`` (item indices, scores) of one trained user straight from the vector index, seen items and
        non-candidates removed, with no dense row of scores: the serving fast path. None when the full path is
        needed: no index, stages to run, items added after training, a user without factors, or too few items left
        after the exclusions. A user with events since training (`with_events`) is searched with their folded-in
        factors (a scorer with ``fold_in``), the events' items excluded too; None for the other scorers."""
        index = getattr(self, "vector_index_", None)
        active = [stage for stage in self.stages if not getattr(stage, "inert", False)]
        if index is None or active or self.new_items_ is not None or user < 0 or not self.warm_users_[user]:
            return None
        vector = self.scorer.user_factors_[user]  # type: ignore[attr-defined]
        seen = self.seen_.indices[self.seen_.indptr[user] : self.seen_.indptr[user + 1]]
        events = self._events_of(np.array([user]))
        if events is not None:
            folded = self._folded_scores(np.array([user]), vectors=True) if hasattr(self.scorer, "fold_in") else None
            if folded is None:
                return None
            vector, seen = folded[1][0], np.union1d(seen, events.indices)
        seen = seen if self.exclude_seen else ()
        items, values = index.search(vector, n + len(seen))  # type: ignore[attr-defined]
        items, values = items[0], values[0]
        keep = (items >= 0) & self.candidate_items_[np.maximum(items, 0)]
        if len(seen):  # CSR rows hold sorted indices: a binary search beats np.isin on a few dozen items
            at = np.minimum(np.searchsorted(seen, items), len(seen) - 1)
            keep &= seen[at] != items
        items, values = items[keep][:n], values[keep][:n]
        if len(items) < n and len(items) < int(self.candidate_items_.sum()) - len(seen):
            return None
        return items, values

    def with_vector_index(self, kind: str = "auto", ef_search: int = 256) -> Recommender:
        """A view that retrieves each known user's candidates from a `VectorIndex` of the scorer's item factors
        (HNSW from ``ANN_MIN_ITEMS`` items, exact below): for inner-product scorers (als, bpr) on large catalogues.
        Other scorers are returned as they are."""
        from tailored.rank.candidates import VectorIndex

        if not getattr(self.scorer, "inner_product", False):
            return self
        view = copy.copy(self)
        view.vector_index_ = VectorIndex(self.scorer.item_factors_, kind=kind, ef_search=ef_search)  # type: ignore[arg-type]
        view.seen_ = self.seen_ if self.seen_.has_sorted_indices else self.seen_.sorted_indices()  # for top_from_index
        return view

    @property
    def _n_trained_items(self) -> int:
        return self.seen_.shape[1] - (0 if self.new_items_ is None else len(self.new_items_))

    def _score_cold_items(self, users: np.ndarray, warm: np.ndarray, scores: np.ndarray,
                          user_attributes: pd.DataFrame | None = None, history: sp.csr_matrix | None = None
                          ) -> np.ndarray:
        """Fill the columns of items known only by their attributes (trained scores of the others are kept);
        ``user_attributes`` describe the (new) users of the rows when given, ``history`` (one row over the trained
        items) the session they all share, which the item model folds in."""
        n_trained = self._n_trained_items
        new = slice(n_trained, scores.shape[1])
        interacted = np.flatnonzero(self.warm_items_)
        if self.new_items_ is not None and hasattr(self.scorer, "score_new_items"):
            if history is not None and hasattr(self.scorer, "score_new_rows"):  # the scorer folds the session in
                source = self._session_scores(self.scorer, history)
                scores[:, new] = calibrated(scores[:, interacted], source[:, interacted], source[:, new])
            else:
                scores[:, new] = self.scorer.score_new_items(users, self.new_items_, user_attributes)  # type: ignore[attr-defined]
        if self.item_model_ is None:
            return scores
        targets = np.concatenate([np.flatnonzero(self.candidate_items_[:n_trained] & ~self.warm_items_),
                                  np.arange(n_trained, scores.shape[1])])
        if len(targets) == 0:
            return scores
        if history is None:
            rows = user_rows(self.item_model_.user_items_, np.where(warm, users, -1))
            source = self._rows_scores(self.item_model_, rows)
        else:
            source = self._session_scores(self.item_model_, history)
        scores[:, targets] = calibrated(scores[:, interacted], source[:, interacted], source[:, targets])
        return scores

    def _rows_scores(self, model: Any, rows: sp.csr_matrix) -> np.ndarray:
        """A history model's scores of interaction rows over the trained items, then the new ones."""
        scores = model.score_rows(rows)
        return scores if self.new_items_ is None else np.hstack([scores, model.score_new_rows(rows, self.new_items_)])

    def _session_scores(self, model: Any, history: sp.csr_matrix) -> np.ndarray:
        """``model``'s scores of a session's row blended with its scores of a user without history (the average
        taste) as the session's scores of the trained items are with the prior: both standardised, the latter
        weighted by `_prior_weight`."""
        session = self._rows_scores(model, history)
        average = self._rows_scores(model, sp.csr_matrix(history.shape, dtype=np.float32))
        everything = np.zeros(session.shape, bool)
        weights = self._prior_weight(history.getnnz(axis=1))[:, None]
        return standardize(session, ~everything) + weights * standardize(average, ~everything)

    def _prior_weight(self, session_items: Any) -> Any:
        """The prior's weight for sessions of ``session_items`` distinct trained items: ``session_prior`` up to
        `FULL_PRIOR_SESSION`, then shrinking as ``1 / n`` -- the more a session says, the less the prior needs to
        steady it (on validation, the best weight fell from 2 at 2 to 5 items to about 1 at 10 and 0.5 at 20:
        docs/benchmarks.md)."""
        return self.session_prior * np.minimum(1.0, FULL_PRIOR_SESSION / np.maximum(session_items, 1))


def undescribed_message(user_ids: np.ndarray, fallback: str) -> str:
    """The warning for users who get an anonymous visitor's list (`Recommender.undescribed_users`)."""
    examples = ", ".join(map(repr, user_ids[:3].tolist()))
    generic = "the most popular items" if fallback == "popularity" else f"the {fallback} model's"
    return (f"{len(user_ids):,} user id(s) unknown to the model and without attributes, e.g. {examples}: they get an "
            f"anonymous visitor's list ({generic}).")


def short_lists(frame: pd.DataFrame, k: int, user_ids: np.ndarray | None = None) -> int:
    """How many users got fewer than ``k`` items (``user_ids``: those asked for, so that empty lists count too)."""
    sizes = frame.groupby(USER_ID).size()
    asked = len(sizes) if user_ids is None else len(pd.unique(np.asarray(user_ids).astype(str)))
    return int((sizes < k).sum()) + asked - len(sizes)


def short_lists_message(count: int, k: int) -> str:
    """The warning for lists shorter than asked (`short_lists`)."""
    return f"{count:,} user(s) got fewer than {k} items: the rules, filters or candidates left too few items."


def _latest_per_item(events: sp.csr_matrix) -> sp.csr_matrix:
    """Each row's last value per item of an events block (rows in time order, repeats kept): the latest time."""
    coo = events.tocoo()
    keys = coo.row.astype(np.int64) * events.shape[1] + coo.col
    _, from_end = np.unique(keys[::-1], return_index=True)
    last = len(keys) - 1 - from_end
    return sp.csr_matrix((coo.data[last], (coo.row[last], coo.col[last])), shape=events.shape)


def decayed(dataset: Dataset, decay_half_life_days: float | None) -> Dataset:
    """Interaction values times ``0.5 ** (age / decay_half_life_days)``, the age counted back from the latest interaction:
    preferences drift, recent behaviour counts more. Unchanged without a half-life or timestamps."""
    if decay_half_life_days is None or dataset.timestamps is None:
        return dataset
    if decay_half_life_days <= 0:
        raise ConfigError(f"decay_half_life_days must be positive, got {decay_half_life_days}.")
    return dataset.with_values(dataset.values * time_decay_weights(dataset.timestamps, decay_half_life_days))


def default_fallback(dataset: Dataset) -> Scorer:
    """The demographic model when users carry usable attributes, popularity otherwise."""
    if usable_columns(dataset.user_attributes, DemographicScorer.max_categories):
        return DemographicScorer()
    return PopularityScorer()


def item_features(dataset: Dataset) -> tuple[dict[str, np.ndarray] | None, sp.csr_matrix | None]:
    """The fitted item encoder (as arrays) and the items' attribute vectors; None when items carry no usable
    attribute."""
    if dataset.item_attributes is None:
        return None, None
    try:
        encoder = ItemEncoder().fit(dataset.item_attributes)
    except DataError:
        return None, None
    return encoder.to_arrays(), encoder.transform(dataset.item_attributes)


def history_row(items: np.ndarray, n_items: int) -> sp.csr_matrix:
    """One interaction row (value 1) holding ``items`` (indices, repeats counted once): a session as history models
    read one."""
    unique = np.unique(items)
    return sp.csr_matrix((np.ones(len(unique), np.float32), unique, [0, len(unique)]), shape=(1, n_items))


def item_model(dataset: Dataset) -> ContentRidgeScorer | None:
    """`content-ridge` fitted on the items' attributes (None when items carry no usable attribute)."""
    if dataset.item_attributes is None or not (dataset.item_counts() > 0).any():
        return None
    try:
        return ContentRidgeScorer().fit(dataset)
    except DataError:
        return None


def calibrated(target: np.ndarray, source: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` mapped per row by the least-squares affine fit of ``source`` onto ``target`` (same columns); the
    slope is kept positive so that the map never reverses the source's order. One source row may serve every
    target row."""
    source_mean = source.mean(axis=1, keepdims=True)
    target_mean = target.mean(axis=1, keepdims=True)
    variance = source.var(axis=1, keepdims=True)
    covariance = ((source - source_mean) * (target - target_mean)).mean(axis=1, keepdims=True)
    slope = np.maximum(np.divide(covariance, variance, out=np.zeros_like(covariance), where=variance > 0), 1e-6)
    return (target_mean + slope * (values - source_mean)).astype(np.float32)


def _has_attributes(dataset: Dataset) -> np.ndarray:
    table = dataset.item_attributes
    if table is None:
        return np.zeros(dataset.n_items, bool)
    return table.notna().any(axis=1).to_numpy()


RECOMMENDER_PARAMS = {"weighting": Weighting, "confidence_alpha": float, "decay_half_life_days": float | None,
                      "session_prior": float, "exclude_seen": bool}


def build_recommender(algorithm: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """A Recommender for ``algorithm``: ``weighting``, ``confidence_alpha`` and ``decay_half_life_days`` configure the
    Recommender, the other parameters the scorer (strings, as from the command line, are converted to the declared
    types)."""
    params = dict(params or {})
    valid = sorted(hyperparameters(scorer_class(algorithm))) + list(RECOMMENDER_PARAMS)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(f"Unknown parameter(s) {unknown} for algorithm '{algorithm}'. Valid parameters: {', '.join(valid)}.")
    scorer = create_scorer(algorithm, {k: v for k, v in params.items() if k not in RECOMMENDER_PARAMS})
    settings = {name: convert(params[name], kind, name) for name, kind in RECOMMENDER_PARAMS.items() if name in params}
    return check_hyperparameters(Recommender(scorer, **settings), algorithm)


def _resized(matrix: sp.csr_matrix, shape: tuple[int, int]) -> sp.csr_matrix:
    """A copy of ``matrix`` padded with empty rows and columns to ``shape``."""
    padded = matrix.copy()
    padded.resize(shape)
    return padded
