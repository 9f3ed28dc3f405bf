"""Recommender: the only thing that recommends. A scorer for trained users, the new-user path (`cold_start`,
`sessions`), the new-item path (`new_items`), the stages (`ranking`) and top-n, with external ids at the edges."""

from __future__ import annotations

import copy
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
from tailored.data.transforms import apply_weighting, decayed, resolve_weighting
from tailored.errors import ConfigError, NotFittedError
from tailored.models.base import (Scorer, capabilities, check_hyperparameters, check_scores, create_scorer,
                                  hyperparameters, scorer_class, trained_rows, user_rows)
from tailored.pipeline import lists
from tailored.pipeline.cold_start import (NewUsers, Paths, demographic_categories, fallback_scorer, new_user_paths,
                                          undescribed)
from tailored.pipeline.events import LiveEvents, event_arrays, unseen
from tailored.pipeline.lists import Recommendations
from tailored.pipeline.new_items import (NewItems, fit_item_model, grown_items, has_attributes, item_features,
                                         new_item_problems, padded, restricted)
from tailored.pipeline.ranking import Ranked, Ranking, masked_request
from tailored.pipeline.sessions import Session, Sessions
from tailored.pipeline.settings import RECOMMENDER_PARAMS, RecommenderSettings
from tailored.pipeline.trained_users import TrainedUsers
from tailored.query import Context, Query
from tailored.rank.base import Catalogue, Request, Reranker, Stage
from tailored.rank.candidates import VectorIndex


class RecommendationWarning(UserWarning):
    """What `Recommender.recommend` warns about, as the command line does: anonymous visitors' lists, short lists."""


@dataclass(eq=False)
class Recommender(RecommenderSettings):
    """Fits a scorer on weighted interactions and turns scores into top-n lists with external ids: a trained user's
    (one with training interactions) by `TrainedUsers`, a new user's by `NewUsers` (the ``fallback``, or the models
    that score attributes), a session's (a new user's ``recent`` items) by `Sessions`, items known by attributes by
    `NewItems`. Settings: `RecommenderSettings` (keyword-only); ``weighting_`` is the weighting resolved at fit."""

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
        """Reads once what the fitted scorer can do (`capabilities`) and composes the paths (after fit and load)."""
        self.can_, history = capabilities(self.scorer), trained_rows(self.scorer)
        self.trained_users_ = TrainedUsers(self.scorer, self.can_, self.seen_ if history is None else history,
                                           len(self.warm_items_), self.candidate_pool)
        self.new_users_ = NewUsers.of(self.scorer, self.fallback_, self.warm_items_)
        self.sessions_ = Sessions(self.scorer, self.can_, self.warm_items_, self.session_prior)
        self.new_items_ = NewItems(self.scorer, self.can_, self.item_model_, self.warm_items_)
        self.is_fitted = True
        return self

    @property
    def _ranking(self) -> Ranking:
        """The stages sorted by role, sorted again whenever ``stages`` holds other stages (callers may set them on a
        fitted model): sorting checks each stage against the role Protocols, too dear to repeat per request."""
        key = tuple(map(id, self.stages))
        cached = self.__dict__.get("_sorted_stages")
        if cached is None or cached[0] != key:
            cached = (key, Ranking.of(self.stages))
            self.__dict__["_sorted_stages"] = cached
        return cached[1]

    def _check(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(self)

    def _trained(self, users: np.ndarray) -> np.ndarray:
        """Which of these user indices (-1: unknown) are trained users (with training interactions)."""
        trained = users >= 0
        trained[trained] = self.warm_users_[users[trained]]
        return trained

    def with_items(self, attributes: pd.DataFrame) -> Recommender:
        """A view that also holds the unknown items of ``attributes`` (``item_id`` + attributes), for `NewItems`."""
        self._check()
        if (new := self.new_items_.unknown(attributes, self.items_)).empty:
            return self
        view, n_items = copy.copy(self), len(self.items_) + len(new)
        view.items_, view.candidate_items_, view.item_features_, view.item_attributes_, view.first_seen_ = grown_items(
            new, self.items_, self.candidate_items_, self.item_encoder_, self.item_features_, self.item_attributes_,
            self.first_seen_)
        view.new_items_ = self.new_items_.with_added(new)  # never seen, never bought together, never bought recently
        view.seen_, view.last_seen_ = padded(self.seen_, columns=n_items), padded(self.last_seen_, columns=n_items)
        view.co_purchase_ = padded(self.co_purchase_, n_items, n_items)
        view.daily_counts_ = padded(self.daily_counts_, rows=n_items)
        return view

    def with_stages(self, stages: list[Stage | Reranker]) -> Recommender:
        """A view whose ranking also runs ``stages`` (after its own), e.g. the rules or calendar of one request."""
        view = copy.copy(self)
        view.stages = [*self.stages, *stages]
        return view

    def unseen_events(self, events: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``events`` (``user_id, item_id, timestamp``, unix seconds) that training did not hold."""
        return events[self._unseen(events)[3]]

    def _unseen(self, events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        self._check()
        users, items, seconds = arrays = event_arrays(events, self.users_, self.items_)
        return users, items, seconds, unseen(*arrays, self.warm_users_, self.seen_, self.last_seen_)

    def with_events(self, events: pd.DataFrame) -> Recommender:
        """A view that also knows the trained users' ``events`` (``user_id, item_id, timestamp``) that training did
        not hold (`unseen`), without a refit: their items count as seen, at their times, and a scorer that folds a
        history in scores them from the history extended by them (`folded_scores`)."""
        users, items, seconds, keep = self._unseen(events)
        if not keep.any():
            return self
        view = copy.copy(self)
        view.live_events_ = LiveEvents.of(users[keep], items[keep], seconds[keep], len(self.items_))
        view.trained_users_ = self.trained_users_.with_events(view.live_events_)
        return view

    def restricted_to(self, item_ids: np.ndarray) -> Recommender:
        """A view that ranks only ``item_ids`` (e.g. a campaign's products or the newly added items)."""
        self._check()
        view = copy.copy(self)
        view.candidate_items_ = restricted(self.candidate_items_, self.items_, item_ids)
        return view

    def with_vector_index(self, kind: str = "auto", ef_search: int = 256) -> Recommender:
        """A view that takes trained users' candidates from a `VectorIndex` of item factors (``vectors``: als, bpr)."""
        self._check()
        if not self.can_.vectors:
            return self
        view = copy.copy(self)
        view.vector_index_ = VectorIndex(self.scorer.item_factors_, kind=kind, ef_search=ef_search)  # type: ignore[attr-defined]
        view.trained_users_ = self.trained_users_.with_index(view.vector_index_)
        view.seen_ = self.seen_ if self.seen_.has_sorted_indices else self.seen_.sorted_indices()  # for top_from_index
        return view

    @property
    def trained_until(self) -> float | None:
        """The latest training interaction's time (unix seconds); None without timestamps."""
        if self.last_seen_ is None or self.last_seen_.nnz == 0:
            return None
        return float(self.last_seen_.data.max()) * DAY

    @property
    def catalogue(self) -> Catalogue:
        """The items as the stages see them."""
        return Catalogue(self.items_.external_ids, self.item_attributes_, self.item_features_, self.first_seen_,
                         self.seen_, self.co_purchase_, self.basket_count_)

    def score_block(self, users: np.ndarray, context: Context | None = None) -> np.ndarray:
        """Dense scores of user indices (-1: unknown), excluded items at -inf, after the stages for ``context``."""
        users = np.asarray(users, np.int64)
        scores, trained = self._user_scores(users, context)
        return self._ranking.adjusted(scores, self._request(users, trained, scores, context))

    def _user_scores(self, users: np.ndarray, context: Context | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores of user indices (-1: unknown) by `TrainedUsers` (in ``context`` if it learned from context),
        `NewUsers` and `NewItems`, and who is trained."""
        trained = self._trained(users)
        scores, n_trained = np.empty((len(users), len(self.items_)), np.float32), len(self.warm_items_)
        if trained.any():
            scores[trained, :n_trained] = self.trained_users_.scores(users[trained], context)
        if (~trained).any():
            scores[~trained, :n_trained] = self.new_users_.scores(users[~trained])
        return self.new_items_.fill(scores, users, trained, self.candidate_items_), trained

    def _request(self, users: np.ndarray, trained: np.ndarray, scores: np.ndarray, context: Context | None,
                 tally: dict[str, Any] | None = None) -> Request:
        """`masked_request` of a block, with the trained users' histories (and events since training)."""
        rows = np.where(trained, users, -1)
        history = user_rows(self.seen_, rows)
        last_seen = None if self.last_seen_ is None else user_rows(self.last_seen_, rows)
        if self.live_events_ is not None:  # events since training: seen now, and the latest time of each item
            history, last_seen = self.live_events_.seen(rows, history, last_seen)
        return masked_request(scores, users, history, last_seen, self.candidate_items_, self.exclude_seen,
                              context or Context(), self.catalogue, tally)

    def recommend_indices(self, users: np.ndarray, n: int, context: Context | None = None, explain: bool = False,
                          tally: dict[str, Any] | None = None, exclude: np.ndarray | None = None
                          ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]:
        """Yield ``(user_indices, item_indices[b, n], scores[b, n], reasons[b, n] | None)`` blocks (missing slots:
        -1 / -inf) without ``exclude`` (item indices); ``tally`` carries a run's state (e.g. exposure counts)."""
        self._check()
        users, tally = np.asarray(users, np.int64), {} if tally is None else tally
        for start in range(0, len(users), self.batch_size):
            block = users[start : start + self.batch_size]
            scores, trained = self._user_scores(block, context)
            items, values, reasons = self._ranking.ranked(scores, self._request(block, trained, scores, context,
                                                                                tally), n, explain, exclude)
            if reasons is not None and self.trained_users_.can.explains_scores and trained.any():
                reasons[trained] = lists.prefixed(self.scorer.explain_scores(  # type: ignore[attr-defined]
                    block[trained], items[trained], None if context is None else vars(context)), reasons[trained])
            yield block, items, values, reasons

    def recommend(self, user_ids: np.ndarray | list, n: int = 10, attributes: pd.DataFrame | None = None,
                  context: Context | None = None, explain: bool = False, tally: dict[str, Any] | None = None,
                  warn: bool = True) -> pd.DataFrame:
        """Top-n per user as a tidy frame ``user_id, item_id, score, rank, model`` (+ ``reasons`` with ``explain``),
        users in the given order; ``model``: what made each list (`list_models`). ``attributes`` (``user_id`` +
        attribute columns) describe new users; ``context`` (date, place, a session's ``recent`` items) reaches the
        stages (None: now); ``tally``: a run's state; ``warn``: warn of `undescribed_users` and `short_lists`."""
        self._check()
        user_ids, tally = np.asarray(user_ids), {} if tally is None else tally
        indices = self.users_.index(user_ids, missing="mask")
        table = None if attributes is None else attributes.drop_duplicates(USER_ID, keep="last").set_index(USER_ID)
        paths = self._new_user_paths(user_ids, indices, table, context)
        frames = [lists.tidy(ids, self.items_.external_ids, *ranked)
                  for ids, ranked in self._lists(user_ids, indices, table, paths, context, n, explain, tally)]
        frame = lists.joined(frames, user_ids, bool((paths[1] | paths[2]).any()))
        frame = lists.with_models(frame, user_ids, self.list_models(indices, *paths))
        fallback = self.fallback_.algorithm  # type: ignore[attr-defined]
        if warn and len(undescribed := self.undescribed_users(user_ids, attributes, context)):
            warnings.warn(lists.undescribed_message(undescribed, fallback), RecommendationWarning, stacklevel=2)
        if warn and (short := lists.short_lists(frame, n, user_ids)):
            warnings.warn(lists.short_lists_message(short, n), RecommendationWarning, stacklevel=2)
        if explain and len(frame):
            items = self.items_.index(frame[ITEM_ID].to_numpy(), missing="mask")
            frame[REASONS] = self._with_attribute_reasons(frame[USER_ID].to_numpy(), items,
                                                          frame[REASONS].to_numpy(dtype=object), table)
        return frame

    def recommend_one(self, query: Query, n: int, explain: bool = False) -> Recommendations:
        """``recommend_one(query: Query, n: int, explain: bool = False) -> Recommendations``: the top-``n`` of one
        query as arrays, exactly the list ``recommend([query.user_id], n, attributes=<query.attributes as a table>,
        context=query.context, explain=explain, warn=False)`` gives, built without a frame (but the one-row table a
        new user's attributes are scored from): a trained user's; a new user's from ``query.attributes`` (column ->
        value) and the context's ``recent`` items; an anonymous session's (``user_id`` None). ``query.exclude``
        (item ids) never come out. Views add the rest: `with_events`, `with_stages`, `with_items`."""
        self._check()
        ids = np.array(["" if query.user_id is None else query.user_id], dtype=object)
        indices = np.array([-1 if query.user_id is None else self.users_.position(query.user_id)], np.int64)
        table = None
        if query.attributes is not None:
            table = pd.DataFrame([dict(query.attributes)], index=pd.Index(ids, name=USER_ID))
        paths = self._new_user_paths(ids, indices, table, query.context)
        exclude = self.items_.index(np.asarray(query.exclude, str), missing="drop") if query.exclude else None
        [(_, ranked)] = self._lists(ids, indices, table, paths, query.context, n, explain, {}, exclude)
        items, scores, reasons = ranked
        valid = items[0] >= 0
        items, reasons = items[0][valid], None if reasons is None else reasons[0][valid]
        if reasons is not None:
            reasons = self._with_attribute_reasons(ids[np.zeros(len(items), np.int64)], items, reasons, table)
        return Recommendations(self.items_.external_ids[items], scores[0][valid].astype(np.float64), reasons,
                               np.full(len(items), self.list_models(indices, *paths)[0], dtype=object))

    def _new_user_paths(self, user_ids: np.ndarray, indices: np.ndarray, table: pd.DataFrame | None,
                        context: Context | None) -> Paths:
        """`new_user_paths` of a block, with the context's session."""
        new = ~self._trained(indices)
        recent = () if context is None or not new.any() else context.recent
        session = self.sessions_.session(self.catalogue.index(recent)) if recent else None
        return new_user_paths(user_ids, indices, new, session, table, bool(self.new_users_.attribute_scorers))

    def _lists(self, user_ids: np.ndarray, indices: np.ndarray, table: pd.DataFrame | None, paths: Paths,
               context: Context | None, n: int, explain: bool, tally: dict[str, Any],
               exclude: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, Ranked]]:
        """``(user ids, lists)`` blocks: of the users `_user_scores` ranks, then of the other ``paths``."""
        plain, start = ~(paths[1] | paths[2]), 0
        for block, *ranked in self.recommend_indices(indices[plain], n, context, explain, tally, exclude):
            yield user_ids[plain][start : start + len(block)], tuple(ranked)  # type: ignore[misc]
            start += len(block)
        for block, scores, rows, session in self.new_users_.blocks(user_ids, paths, table, self.sessions_,
                                                                   self.batch_size):
            yield block, self._new_user_lists(scores, rows, session, context, n, explain, tally, exclude)

    def _new_user_lists(self, trained_scores: np.ndarray, rows: pd.DataFrame | None, session: Session | None,
                        context: Context | None, n: int, explain: bool, tally: dict[str, Any],
                        exclude: np.ndarray | None) -> Ranked:
        """New users' lists from their scores of the trained items (by a ``session`` or by attribute ``rows``)."""
        scores = np.empty((len(trained_scores), len(self.items_)), np.float32)
        scores[:, : len(self.warm_items_)] = trained_scores
        unknown, untrained = np.full(len(scores), -1), np.zeros(len(scores), bool)
        shared = None if session is None else self.sessions_.shared(session)
        scores = self.new_items_.fill(scores, unknown, untrained, self.candidate_items_, rows, shared)
        request = self._request(unknown, untrained, scores, context, tally)
        if self.exclude_seen and session is not None:
            scores[:, session.items] = -np.inf
        return self._ranking.ranked(scores, request, n, explain, exclude)

    def _with_attribute_reasons(self, ids: np.ndarray, items: np.ndarray, given: np.ndarray,
                                table: pd.DataFrame | None) -> np.ndarray:
        """The ``given`` reasons of (user id, item index) pairs after the attribute ones of `NewUsers.reasons`."""
        users = self.users_.index(ids, missing="mask")
        return lists.prefixed(self.new_users_.reasons(users, ids, items, self.warm_users_, table), given)

    def list_models(self, indices: np.ndarray, session: Session | None, by_session: np.ndarray,
                    described: np.ndarray) -> np.ndarray:
        """What ranks each user (indices, -1: unknown; `_new_user_paths`): `NewUsers.model_names`."""
        by_scorer = session is not None and session.scores is not None
        return self.new_users_.model_names(self._trained(indices), indices >= 0, by_session, described,
                                           self.scorer.algorithm, by_scorer)  # type: ignore[attr-defined]

    def cold_user_models(self) -> list[str]:
        """The algorithms that rank a users-table user without interactions (`NewUsers.models`)."""
        self._check()
        return self.new_users_.models()

    def undescribed_users(self, user_ids: np.ndarray, attributes: pd.DataFrame | None = None,
                          context: Context | None = None) -> np.ndarray:
        """The ``user_ids`` unknown to the model that come with neither attributes nor recent items (`undescribed`)."""
        return undescribed(user_ids, self.users_, attributes, context)

    def attribute_problems(self, attributes: pd.DataFrame) -> list[str]:
        """What the new-user path cannot use in the attributes of new users (`attribute_problems`)."""
        new = attributes[self.users_.index(attributes[USER_ID].to_numpy(), missing="mask") < 0]
        return attribute_problems(self.user_vocabulary_, new) if len(new) else []

    def item_attribute_problems(self, attributes: pd.DataFrame) -> list[str]:
        """What the item encoder cannot use in the attributes of new items (`new_item_problems`)."""
        new = attributes[self.items_.index(attributes[ITEM_ID].to_numpy(), missing="mask") < 0]
        return new_item_problems(new, self.item_encoder_, self.item_attributes_)

    def top_from_index(self, user: int, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-``n`` (item indices, scores) of one trained user straight from the vector index (`TrainedUsers.top`):
        the serving fast lane. None when the full path must answer: no index, stages to run, new items, too few."""
        if (self.vector_index_ is None or self._ranking.active or self.new_items_.added is not None or user < 0
                or not self.warm_users_[user]):
            return None
        seen = self.seen_.indices[self.seen_.indptr[user] : self.seen_.indptr[user + 1]]
        return self.trained_users_.top(user, n, seen, self.candidate_items_, self.exclude_seen)

    def predict(self, user_ids: np.ndarray | list, item_ids: np.ndarray | list) -> np.ndarray:
        """A prediction per (user, item) pair: the scorer's rating (``ratings`` capability), else the score
        (`_user_scores`; an unknown item: 0)."""
        self._check()
        users, items = self.users_.index(np.asarray(user_ids), "mask"), self.items_.index(np.asarray(item_ids), "mask")
        if self.can_.ratings:
            return np.asarray(self.scorer.predict(users, items), np.float64)  # type: ignore[attr-defined]
        return lists.pair_values(users, items, self.batch_size, lambda block: self._user_scores(block)[0])


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

