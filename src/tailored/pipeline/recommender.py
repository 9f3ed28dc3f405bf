"""Recommender: the only thing that recommends. A scorer for trained users, the new-user path (`cold_start`,
`sessions`), the new-item path (`new_items`), the stages (`ranking`) and top-n, with external ids at the edges."""

from __future__ import annotations

import copy
import typing
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd

from tailored.config import convert
from tailored.data.activity import DAY, daily_counts, interaction_times
from tailored.data.baskets import co_purchase_counts
from tailored.data.columns import ITEM_ID, REASONS, USER_ID
from tailored.data.dataset import Dataset
from tailored.data.features import attribute_problems, attribute_vocabulary
from tailored.data.idmap import IdMap
from tailored.data.transforms import apply_weighting, resolve_weighting, time_decay_weights
from tailored.errors import ConfigError, DataError, NotFittedError
from tailored.models.base import (Scorer, capabilities, check_hyperparameters, check_scores, create_scorer,
                                  hyperparameters, scorer_class, trained_rows, user_rows)
from tailored.pipeline import lists
from tailored.pipeline.cold_start import NewUsers, demographic_categories, fallback_scorer
from tailored.pipeline.events import LiveEvents, event_arrays, folded_scores, unseen
from tailored.pipeline.new_items import (NewItems, added_attributes, added_features, fit_item_model, has_attributes,
                                         item_features, new_item_problems, padded)
from tailored.pipeline.ranking import Ranking
from tailored.pipeline.sessions import Session, Sessions
from tailored.pipeline.settings import RecommenderSettings
from tailored.pipeline.vectors import index_scores, index_top
from tailored.query import Context, Query
from tailored.rank.base import Catalogue, Request, Reranker, Stage
from tailored.rank.candidates import VectorIndex

Paths = tuple[Session | None, np.ndarray, np.ndarray]
"""How new users are ranked beyond `Recommender._user_scores`: a session and who it ranks, who their attributes rank."""
Ranked = tuple[np.ndarray, np.ndarray, np.ndarray | None]
"""A block's lists: item indices (-1: empty slot), scores and reasons (None unless asked), block rows x n."""


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


@dataclass(eq=False)
class Recommender(RecommenderSettings):
    """Fits a scorer on weighted interactions and turns its scores into top-n lists with external ids.

    A trained user (one with training interactions) is ranked by the scorer; a new user (none) by `NewUsers` -- the
    ``fallback``, or the models that score the attributes they are described by; a session (a new user's recent
    items, the context's ``recent``) by `Sessions`. Items without interactions and items added with `with_items` are
    scored from their attributes by `NewItems`. The settings are `RecommenderSettings`' (keyword-only); ``weighting``
    is resolved at ``fit`` into ``weighting_`` (``auto``: chosen from the data), with the reason in
    ``weighting_reason_``.
    """

    scorer: Scorer
    stages: list[Stage | Reranker] = field(default_factory=list)
    is_fitted = False
    vector_index_: VectorIndex | None = field(default=None, init=False, repr=False)
    live_events_: LiveEvents | None = field(default=None, init=False, repr=False)

    def fit(self, dataset: Dataset) -> Self:
        if not self.session_prior >= 0:
            raise ConfigError(f"session_prior must be 0 or more, got {self.session_prior}.")
        self.weighting_, self.weighting_reason_ = resolve_weighting(self.weighting, dataset, self.scorer.explicit)
        train = apply_weighting(decayed(dataset, self.decay_half_life_days), self.weighting_, self.confidence_alpha)
        self.scorer.fit(train)
        check_scores(self.scorer, train)
        for stage in self.stages:
            stage.fit(dataset)
        self.fallback_ = fallback_scorer(self.fallback, dataset).fit(train)
        self.item_model_ = None if self.scorer.handles_cold_items else fit_item_model(train)
        self.users_, self.items_, self.seen_ = dataset.users, dataset.items, dataset.matrix(binary=True)
        self.warm_users_, self.warm_items_ = dataset.user_counts() > 0, dataset.item_counts() > 0
        self.candidate_items_ = self.warm_items_.copy()  # and the items known by their attributes, when scorable
        if self.scorer.handles_cold_items or self.item_model_ is not None:
            self.candidate_items_ |= has_attributes(dataset)
        self.user_vocabulary_ = attribute_vocabulary(dataset.user_attributes, demographic_categories())
        self.item_encoder_, self.item_features_ = item_features(dataset)
        self.co_purchase_, self.basket_count_ = co_purchase_counts(dataset)
        self.item_attributes_ = dataset.item_attributes
        self.first_seen_, self.last_seen_ = interaction_times(dataset)
        self.daily_counts_, self.counts_end_ = daily_counts(dataset)
        return self.composed()

    def composed(self) -> Self:
        """Reads once what the fitted scorer and fallback can do (`capabilities`) and composes the paths of new users,
        sessions, new items and the stages from them; `fit` and `load_model` end here."""
        self.can_ = capabilities(self.scorer)
        self.new_users_ = NewUsers.of(self.scorer, self.fallback_, self.warm_items_)
        self.sessions_ = Sessions(self.scorer, self.can_, self.warm_items_, self.session_prior)
        self.new_items_ = NewItems(self.scorer, self.can_, self.item_model_, self.warm_items_)
        self.ranking_ = Ranking.of(self.stages)
        self.is_fitted = True
        return self

    def _check(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(self)

    # -- views ----------------------------------------------------------------------------------------------------
    def with_items(self, attributes: pd.DataFrame) -> Recommender:
        """A view whose catalogue also holds the items of ``attributes`` (``item_id`` + attribute columns) unknown at
        training time, scored from their attributes (`NewItems`). Items already known are left as trained."""
        self._check()
        known = self.items_.index(attributes[ITEM_ID].to_numpy(), missing="mask") >= 0
        new = attributes[~known].drop_duplicates(ITEM_ID, keep="last").reset_index(drop=True)
        if new.empty:
            return self
        if not self.new_items_.scorable:
            raise DataError(f"{len(new)} new item(s) (e.g. {new[ITEM_ID].iloc[0]!r}) cannot be scored: the model was "
                            "trained without item attributes. Retrain with an items table (--items FILE) to recommend "
                            "new items.")
        view, n_items = copy.copy(self), len(self.items_) + len(new)
        view.items_ = IdMap(np.concatenate([self.items_.external_ids.astype(str), new[ITEM_ID].astype(str).to_numpy()]),
                            name="item")
        view.candidate_items_ = np.concatenate([self.candidate_items_, np.ones(len(new), bool)])
        view.new_items_ = self.new_items_.with_added(new)
        view.item_features_ = added_features(self.item_encoder_, self.item_features_, new)
        view.item_attributes_ = added_attributes(self.item_attributes_, len(self.items_), new)
        if self.first_seen_ is not None:  # new items: never seen, never bought together, never bought recently
            view.first_seen_ = np.concatenate([self.first_seen_, np.full(len(new), np.nan)])
        view.seen_, view.last_seen_ = padded(self.seen_, columns=n_items), padded(self.last_seen_, columns=n_items)
        view.co_purchase_ = padded(self.co_purchase_, n_items, n_items)
        view.daily_counts_ = padded(self.daily_counts_, rows=n_items)
        return view

    def with_stages(self, stages: list[Stage | Reranker]) -> Recommender:
        """A view whose ranking also runs ``stages`` (after its own), e.g. the rules or calendar of one request."""
        view = copy.copy(self)
        view.stages = [*self.stages, *stages]
        view.ranking_ = Ranking.of(view.stages)
        return view

    def unseen_events(self, events: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``events`` (``user_id, item_id, timestamp``, unix seconds) that training did not hold
        (`unseen`): the events of a trained user's stored history that came after training."""
        self._check()
        arrays = event_arrays(events, self.users_, self.items_)
        return events[unseen(*arrays, self.warm_users_, self.seen_, self.last_seen_)]

    def with_events(self, events: pd.DataFrame) -> Recommender:
        """A view that also knows the trained users' ``events`` (``user_id, item_id, timestamp``) that training did
        not hold (`unseen_events`), without refitting: their items count as seen (left out with ``exclude_seen``;
        repurchase cycles count from these times), and a scorer that folds a history in scores those users from
        their training history extended by them (`folded_scores`). New users' events are sessions (``recent``)."""
        self._check()
        users, items, seconds = event_arrays(events, self.users_, self.items_)
        keep = unseen(users, items, seconds, self.warm_users_, self.seen_, self.last_seen_)
        if not keep.any():
            return self
        view = copy.copy(self)
        view.live_events_ = LiveEvents.of(users[keep], items[keep], seconds[keep], len(self.items_))
        return view

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

    def with_vector_index(self, kind: str = "auto", ef_search: int = 256) -> Recommender:
        """A view that retrieves each trained user's candidates from a `VectorIndex` of the scorer's item factors
        (HNSW from ``ANN_MIN_ITEMS`` items, exact below), for a scorer with the ``vectors`` capability (als, bpr);
        the others are returned as they are."""
        self._check()
        if not self.can_.vectors:
            return self
        view = copy.copy(self)
        view.vector_index_ = VectorIndex(self.scorer.item_factors_, kind=kind, ef_search=ef_search)  # type: ignore[attr-defined]
        view.seen_ = self.seen_ if self.seen_.has_sorted_indices else self.seen_.sorted_indices()  # for top_from_index
        return view

    @property
    def trained_until(self) -> float | None:
        """The time of the latest training interaction (unix seconds); None without timestamps."""
        if self.last_seen_ is None or self.last_seen_.nnz == 0:
            return None
        return float(self.last_seen_.data.max()) * DAY

    @property
    def catalogue(self) -> Catalogue:
        """The items as the stages see them."""
        return Catalogue(self.items_.external_ids, self.item_attributes_, self.item_features_, self.first_seen_,
                         self.seen_, self.co_purchase_, self.basket_count_)

    # -- scores ---------------------------------------------------------------------------------------------------
    def score_block(self, users: np.ndarray, context: Context | None = None) -> np.ndarray:
        """Dense scores for user indices (-1 = unknown), with excluded items at -inf, adjusted by the stages for
        ``context`` (None: now, nothing else known)."""
        users = np.asarray(users, np.int64)
        scores, trained = self._user_scores(users)
        return self.ranking_.adjusted(scores, self._request(users, trained, scores, context))

    def _user_scores(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores (block x items) of user indices (-1: unknown) -- a trained user's by the scorer (with the events
        since training folded in), a new user's by `NewUsers`, the items known by their attributes by `NewItems` --
        and which users are trained."""
        trained = users >= 0
        trained[trained] = self.warm_users_[users[trained]]
        scores, n_trained = np.empty((len(users), len(self.items_)), np.float32), len(self.warm_items_)
        folded = self._folded(np.where(trained, users, -1)) if trained.any() else None
        plain = trained.copy()
        if folded is not None:
            scores[folded[0], :n_trained], plain[folded[0]] = folded[1], False
        if plain.any() and self.vector_index_ is not None:  # the index's candidates, by the scorer's inner product
            factors = self.scorer.user_factors_[users[plain]]  # type: ignore[attr-defined]
            scores[plain, :n_trained] = index_scores(self.vector_index_, factors, self.candidate_pool, n_trained)
        elif plain.any():
            scores[plain, :n_trained] = self.scorer.score(users[plain])
        if (~trained).any():
            scores[~trained, :n_trained] = self.new_users_.scores(users[~trained])
        return self.new_items_.fill(scores, users, trained, self.candidate_items_), trained

    def _folded(self, users: np.ndarray, vectors: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """`folded_scores` of a block of trained users (-1: others) with events since training."""
        events = None if self.live_events_ is None else self.live_events_.rows(users, len(self.items_))
        history = trained_rows(self.scorer)
        return folded_scores(self.scorer, self.can_, self.seen_ if history is None else history, events, users,
                             len(self.warm_items_), vectors)

    def _request(self, users: np.ndarray, trained: np.ndarray, scores: np.ndarray, context: Context | None,
                 tally: dict[str, Any] | None = None) -> Request:
        """Masks non-candidates and (by default) seen items in ``scores``, and describes the block for the stages."""
        scores[:, ~self.candidate_items_] = -np.inf
        rows = np.where(trained, users, -1)
        history = user_rows(self.seen_, rows)
        last_seen = None if self.last_seen_ is None else user_rows(self.last_seen_, rows)
        if self.live_events_ is not None:  # events since training: seen now, and the latest time of each item
            history, last_seen = self.live_events_.seen(rows, history, last_seen)
        excluded = None
        if self.exclude_seen and history.nnz:
            excluded = history.tocoo()
            excluded.data = scores[excluded.row, excluded.col].copy()
            scores[excluded.row, excluded.col] = -np.inf
        return Request(users, context or Context(), self.catalogue, history, last_seen=last_seen,
                       excluded_seen=excluded, tally={} if tally is None else tally)

    # -- lists ----------------------------------------------------------------------------------------------------
    def recommend_indices(self, users: np.ndarray, n: int, context: Context | None = None, explain: bool = False,
                          tally: dict[str, Any] | None = None, exclude: np.ndarray | None = None
                          ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]:
        """Yield ``(user_indices, item_indices[b, n], scores[b, n], reasons[b, n] | None)`` blocks; missing slots
        are -1 / -inf; ``exclude`` (item indices) never come out. ``tally`` carries the run's state across calls
        (e.g. exposure counts)."""
        self._check()
        users, tally = np.asarray(users, np.int64), {} if tally is None else tally
        for start in range(0, len(users), self.batch_size):
            block = users[start : start + self.batch_size]
            scores, trained = self._user_scores(block)
            yield block, *self.ranking_.ranked(scores, self._request(block, trained, scores, context, tally), n,
                                               explain, exclude)

    def recommend(self, user_ids: np.ndarray | list, n: int = 10, attributes: pd.DataFrame | None = None,
                  context: Context | None = None, explain: bool = False, tally: dict[str, Any] | None = None,
                  warn: bool = True) -> pd.DataFrame:
        """Top-n per user as a tidy frame ``user_id, item_id, score, rank, model`` (rank 1 is best), users in the given
        order; with ``explain``, a ``reasons`` column too. ``model`` says what produced each user's list
        (`list_models`). ``attributes`` (``user_id`` + attribute columns) describes new users; ``context`` (date,
        place, a session's ``recent`` items...) reaches the stages; without it they see the current time. ``tally``
        carries a run's state across calls. With ``warn``, a `RecommendationWarning` says what the command line
        warns about (`list_warnings`)."""
        self._check()
        user_ids, tally = np.asarray(user_ids), {} if tally is None else tally
        indices = self.users_.index(user_ids, missing="mask")
        table = None if attributes is None else attributes.drop_duplicates(USER_ID, keep="last").set_index(USER_ID)
        paths = self._new_user_paths(user_ids, indices, table, context)
        frames = [lists.tidy(ids, self.items_.external_ids, *ranked)
                  for ids, ranked in self._lists(user_ids, indices, table, paths, context, n, explain, tally)]
        frame = lists.joined(frames, user_ids, bool((paths[1] | paths[2]).any()))
        frame = lists.with_models(frame, user_ids, self.list_models(indices, *paths))
        for message in self.list_warnings(user_ids, frame, n, attributes, context) if warn else []:
            warnings.warn(message, RecommendationWarning, stacklevel=2)
        if explain and len(frame):
            items = self.items_.index(frame[ITEM_ID].to_numpy(), missing="mask")
            frame[REASONS] = self._with_attribute_reasons(frame[USER_ID].to_numpy(), items,
                                                          frame[REASONS].to_numpy(dtype=object), table)
        return frame

    def recommend_one(self, query: Query, n: int, explain: bool = False) -> Recommendations:
        """``recommend_one(query: Query, n: int, explain: bool = False) -> Recommendations``: the top-``n`` of one
        query as arrays, exactly the list that ``recommend([query.user_id], n, attributes=<query.attributes as a
        table>, context=query.context, explain=explain, warn=False)`` gives, with no frame built (but the one-row
        table that a new user's attributes are scored from): a trained user's; a new user's from ``query.attributes``
        (column -> value) and the context's ``recent`` items (a session); an anonymous session's (``user_id`` None)
        from ``recent`` alone. ``query.exclude`` (item ids) never come out. Views add the rest: `with_events` (a
        trained user's events since training), `with_stages` (a request's rules), `with_items` (new items)."""
        self._check()
        ids = np.array(["" if query.user_id is None else query.user_id], dtype=object)
        indices = np.array([-1 if query.user_id is None else self.users_.position(query.user_id)], np.int64)
        table = None
        if query.attributes is not None:
            table = pd.DataFrame([dict(query.attributes)], index=pd.Index(ids, name=USER_ID))
        paths = self._new_user_paths(ids, indices, table, query.context)
        exclude = self.items_.index(np.asarray(query.exclude, str), missing="drop") if query.exclude else None
        [(_, (items, scores, reasons))] = self._lists(ids, indices, table, paths, query.context, n, explain, {}, exclude)
        valid = items[0] >= 0
        items, reasons = items[0][valid], None if reasons is None else reasons[0][valid]
        if reasons is not None:
            reasons = self._with_attribute_reasons(ids[np.zeros(len(items), np.int64)], items, reasons, table)
        return Recommendations(self.items_.external_ids[items], scores[0][valid].astype(np.float64), reasons,
                               np.full(len(items), self.list_models(indices, *paths)[0], dtype=object))

    def _new_user_paths(self, user_ids: np.ndarray, indices: np.ndarray, table: pd.DataFrame | None,
                        context: Context | None) -> Paths:
        """The session of the context -- it ranks every new user when it holds trained items -- and, failing that,
        the new ids that ``table`` (attributes by user id) describes, when a model scores attributes."""
        new = indices < 0
        new[~new] = ~self.warm_users_[indices[~new]]
        session = None
        if new.any() and context is not None and context.recent:
            session = self.sessions_.session(self.catalogue.index(context.recent))
        by_session = new if session is not None else np.zeros(len(user_ids), bool)
        described = np.zeros(len(user_ids), bool)
        if table is not None and self.new_users_.attribute_scorers:
            described = (indices < 0) & ~by_session & np.isin(user_ids, table.index)
        return session, by_session, described

    def _lists(self, user_ids: np.ndarray, indices: np.ndarray, table: pd.DataFrame | None, paths: Paths,
               context: Context | None, n: int, explain: bool, tally: dict[str, Any],
               exclude: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, Ranked]]:
        """``(user ids, lists)`` blocks: of the users `_user_scores` ranks, then of the session's, then of those
        described by attributes (``paths``: `_new_user_paths`)."""
        session, by_session, described = paths
        plain, start = ~(by_session | described), 0
        for block, *ranked in self.recommend_indices(indices[plain], n, context, explain, tally, exclude):
            yield user_ids[plain][start : start + len(block)], tuple(ranked)  # type: ignore[misc]
            start += len(block)
        for block in self._blocks(user_ids[by_session]):
            rows = table.reindex(block).reset_index(drop=True) if _describes(table, block) else None  # type: ignore[union-attr]
            scores = self.sessions_.scores(session, self.new_users_.prior(block, table))  # type: ignore[arg-type]
            yield block, self._new_user_lists(scores, rows, session, context, n, explain, tally, exclude)
        for block in self._blocks(user_ids[described]):
            rows = table.loc[block].reset_index(drop=True)  # type: ignore[union-attr]
            scores = self.new_users_.attribute_scores(rows)
            yield block, self._new_user_lists(scores, rows, None, context, n, explain, tally, exclude)

    def _new_user_lists(self, trained_scores: np.ndarray, rows: pd.DataFrame | None, session: Session | None,
                        context: Context | None, n: int, explain: bool, tally: dict[str, Any],
                        exclude: np.ndarray | None) -> Ranked:
        """Lists of new users from their scores over the trained items (from a ``session`` or the attribute
        ``rows``); the session's items are not recommended back unless ``exclude_seen`` is off."""
        scores = np.empty((len(trained_scores), len(self.items_)), np.float32)
        scores[:, : len(self.warm_items_)] = trained_scores
        unknown, untrained = np.full(len(scores), -1), np.zeros(len(scores), bool)
        shared = None if session is None else self.sessions_.shared(session)
        scores = self.new_items_.fill(scores, unknown, untrained, self.candidate_items_, rows, shared)
        request = self._request(unknown, untrained, scores, context, tally)
        if self.exclude_seen and session is not None:
            scores[:, session.items] = -np.inf
        return self.ranking_.ranked(scores, request, n, explain, exclude)

    def _with_attribute_reasons(self, ids: np.ndarray, items: np.ndarray, given: np.ndarray,
                                table: pd.DataFrame | None) -> np.ndarray:
        """The ``given`` reasons of (user id, item index) pairs after the attribute ones of `NewUsers.reasons`."""
        users = self.users_.index(ids, missing="mask")
        return lists.prefixed(self.new_users_.reasons(users, ids, items, self.warm_users_, table), given)

    def _blocks(self, ids: np.ndarray) -> Iterator[np.ndarray]:
        return (ids[start : start + self.batch_size] for start in range(0, len(ids), self.batch_size))

    def list_models(self, indices: np.ndarray, session: Session | None, by_session: np.ndarray,
                    described: np.ndarray) -> np.ndarray:
        """What ranks each user (indices, -1: unknown; ``_new_user_paths``): the scorer for a trained user;
        ``(session)`` after the scorer (the fallback, for a scorer that cannot read a session) for a session;
        ``(cold start)`` after the attribute models for a new user described by attributes, after
        `cold_user_models` for a users-table user without interactions, after the fallback for an unknown user."""
        known = indices >= 0
        trained = known.copy()
        trained[known] = self.warm_users_[indices[known]]
        by_scorer = session is not None and session.scores is not None
        names = [self.scorer.algorithm, f"{(self.scorer if by_scorer else self.fallback_).algorithm} (session)",  # type: ignore[attr-defined]
                 f"{self.new_users_.attribute_models()} (cold start)", "+".join(self.cold_user_models()) + " (cold start)"]
        return np.select([trained, by_session, described, known], names, f"{self.fallback_.algorithm} (cold start)")  # type: ignore[attr-defined]

    def cold_user_models(self) -> list[str]:
        """The algorithms that rank a users-table user without interactions (`NewUsers.models`)."""
        self._check()
        return self.new_users_.models()

    def list_warnings(self, user_ids: np.ndarray, frame: pd.DataFrame, n: int, attributes: pd.DataFrame | None = None,
                      context: Context | None = None) -> list[str]:
        """The command line's warnings about lists for ``user_ids`` (``frame``, ``n`` asked): users unknown to the
        model and without attributes or recent items (`undescribed_users`), lists shorter than ``n``."""
        messages = []
        undescribed = self.undescribed_users(user_ids, attributes, context)
        if len(undescribed):
            messages.append(undescribed_message(undescribed, self.fallback_.algorithm))  # type: ignore[attr-defined]
        if short := short_lists(frame, n, user_ids):
            messages.append(short_lists_message(short, n))
        return messages

    def undescribed_users(self, user_ids: np.ndarray, attributes: pd.DataFrame | None = None,
                          context: Context | None = None) -> np.ndarray:
        """The ``user_ids`` unknown to the model that come with neither attributes nor recent items: all they can get
        is an anonymous visitor's list (often a sign of ids that do not match training's)."""
        unknown = np.asarray(user_ids)[self.users_.index(np.asarray(user_ids), missing="mask") < 0]
        if context is not None and context.recent:
            return unknown[:0]
        described = attributes[USER_ID].astype(str).to_numpy() if attributes is not None else np.array([], str)
        return unknown[~np.isin(unknown, described)]

    def attribute_problems(self, attributes: pd.DataFrame) -> list[str]:
        """What the new-user path cannot use in the attributes of ``attributes``' users unknown to the model (lacking
        or foreign columns, missing or unseen values: `attribute_problems`)."""
        self._check()
        new = attributes[self.users_.index(attributes[USER_ID].to_numpy(), missing="mask") < 0]
        return attribute_problems(self.user_vocabulary_, new) if len(new) else []

    def item_attribute_problems(self, attributes: pd.DataFrame) -> list[str]:
        """What the item encoder cannot use in the attributes of ``attributes``' items unknown to the model
        (`new_item_problems`)."""
        self._check()
        new = attributes[self.items_.index(attributes[ITEM_ID].to_numpy(), missing="mask") < 0]
        return new_item_problems(new, self.item_encoder_, self.item_attributes_)

    def top_from_index(self, user: int, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-``n`` (item indices, scores) of one trained user straight from the vector index (`index_top`), with
        no dense row of scores: the serving fast lane. None when the full path is needed: no index, stages to run,
        items added after training, a user without factors, too few items left after the exclusions, or events
        since training (`with_events`) that the scorer cannot fold into factors (``fold_in``); with them, the user
        is searched with the folded-in factors, the events' items left out too."""
        if (self.vector_index_ is None or self.ranking_.active or self.new_items_.added is not None or user < 0
                or not self.warm_users_[user]):
            return None
        vector = self.scorer.user_factors_[user]  # type: ignore[attr-defined]
        seen = self.seen_.indices[self.seen_.indptr[user] : self.seen_.indptr[user + 1]]
        events = None if self.live_events_ is None else self.live_events_.rows(np.array([user]), len(self.items_))
        if events is not None:
            folded = self._folded(np.array([user]), vectors=True) if self.can_.fold_in else None
            if folded is None:
                return None
            vector, seen = folded[1][0], np.union1d(seen, events.indices)
        return index_top(self.vector_index_, vector, seen if self.exclude_seen else seen[:0], n, self.candidate_items_)

    def predict(self, user_ids: np.ndarray | list, item_ids: np.ndarray | list) -> np.ndarray:
        """A prediction for every (user, item) pair: the scorer's rating (``ratings`` capability), else the score
        (`_user_scores`: unknown users get the fallback's; an unknown item 0)."""
        self._check()
        users = self.users_.index(np.asarray(user_ids), missing="mask")
        items = self.items_.index(np.asarray(item_ids), missing="mask")
        if self.can_.ratings:
            return np.asarray(self.scorer.predict(users, items), np.float64)  # type: ignore[attr-defined]
        predictions, order = np.zeros(len(users), np.float64), np.argsort(users, kind="stable")
        unique_users, starts = np.unique(users[order], return_index=True)
        ends = np.append(starts[1:], len(users))
        for start in range(0, len(unique_users), self.batch_size):
            block = unique_users[start : start + self.batch_size]
            pairs = order[starts[start] : ends[start + len(block) - 1]]  # the pairs of the block's users
            pairs = pairs[items[pairs] >= 0]
            predictions[pairs] = self._user_scores(block)[0][np.searchsorted(block, users[pairs]), items[pairs]]
        return predictions


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


def decayed(dataset: Dataset, decay_half_life_days: float | None) -> Dataset:
    """Interaction values times ``0.5 ** (age / decay_half_life_days)``, the age counted back from the latest
    interaction: preferences drift, recent behaviour counts more. Unchanged without a half-life or timestamps."""
    if decay_half_life_days is None or dataset.timestamps is None:
        return dataset
    if decay_half_life_days <= 0:
        raise ConfigError(f"decay_half_life_days must be positive, got {decay_half_life_days}.")
    return dataset.with_values(dataset.values * time_decay_weights(dataset.timestamps, decay_half_life_days))


RECOMMENDER_PARAMS: dict[str, Any] = typing.get_type_hints(RecommenderSettings)
"""The Recommender's settings (`RecommenderSettings`) by name, with their types: the parameters not the scorer's."""


def build_recommender(algorithm: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """A Recommender for ``algorithm``: the `RECOMMENDER_PARAMS` configure the Recommender, the other parameters the
    scorer (strings, as from the command line, are converted to the declared types)."""
    params = dict(params or {})
    valid = sorted(hyperparameters(scorer_class(algorithm))) + list(RECOMMENDER_PARAMS)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(f"Unknown parameter(s) {unknown} for algorithm '{algorithm}'. Valid parameters: "
                          f"{', '.join(valid)}.")
    scorer = create_scorer(algorithm, {k: v for k, v in params.items() if k not in RECOMMENDER_PARAMS})
    settings = {name: convert(params[name], kind, name) for name, kind in RECOMMENDER_PARAMS.items() if name in params}
    return check_hyperparameters(Recommender(scorer, **settings), algorithm)


def _describes(table: pd.DataFrame | None, user_ids: np.ndarray) -> bool:
    return table is not None and bool(np.isin(user_ids, table.index).any())
