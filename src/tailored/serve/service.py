"""What the service holds between requests: the served model (with the items added since training), the slate policy
and its online state (`ServedPolicy`), the event store, the key cache, the rate limiter, the erased users (followed
from the store: `ErasureFollower`) and the experiment running on its lists (`ExperimentFollower`) with the models of
its arms."""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import threading
import uuid
from pathlib import Path
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tailored.data.columns import ITEM_ID, RANK, REASONS, SCORE, TIMESTAMP, USER_ID
from tailored.errors import ConfigError
from tailored.pipeline.recommender import Recommender
from tailored.pipeline.slates import candidates_from
from tailored.pipeline.slates import candidate_count, candidates_of
from tailored.policies import Candidates
from tailored.query import Context, Query
from tailored.registry.model_dir import load_model, read_manifest
from tailored.registry.versions import ModelRegistry
from tailored.rank.candidates import ANN_MIN_ITEMS
from tailored.serve.cache import ListCache, Rows, context_key
from tailored.serve.committer import EventCommitter
from tailored.serve.erasures import ErasureFollower
from tailored.serve.experiments import Assigned, ExperimentFollower
from tailored.serve.exposures import ExposureWriter
from tailored.serve.live_events import EventFollower
from tailored.serve.limits import DatabaseCalls
from tailored.serve.metrics import Metrics
from tailored.serve.policy import ServedPolicy, window_seconds
from tailored.serve.security import KeyCache, RateLimiter
from tailored.serve.settings import ServiceSettings
from tailored.store import EventStore
from tailored.store.attribution import ATTRIBUTED_TYPES
from tailored.store.database import Event, exposure_row
from tailored.store.experiments import remember_registry
from tailored.store.monitoring import alerts, daily_rows

logger = logging.getLogger(__name__)
STORED_HISTORY = 200
"""How many of a user's latest stored events the service folds in (those since training, for a trained user)."""
ERASED = "\x00erased"
"""The id an erased user is served under: unknown to every model, so the cold-start fallback answers."""
SESSION = "\x00session"
"""The id of an anonymous session: no client id can hold a control character, so nothing is stored under it."""
PROPENSITY = "propensity"


class Service:
    def __init__(self, settings: ServiceSettings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.policy = ServedPolicy(settings.policy, settings.new_item_slots, settings.policy_seed)
        self.window = window_seconds(settings.attribution_window_hours)
        self.store = EventStore(settings.db_url, settings.pseudonym_key)
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.lock = threading.Lock()
        self.database_calls = DatabaseCalls(settings.database_check_seconds)
        self.keys = KeyCache(self.store.key_scopes, self.database_calls, settings.key_cache_seconds,
                             settings.key_outage_seconds, settings.max_invalid_keys)
        self.registry = ModelRegistry(settings.registry) if settings.registry is not None else None
        if settings.registry is not None:
            remember_registry(self.store, settings.registry)  # `tailored experiments create` finds the arms there
        one_source = (settings.model is None) != (settings.model_dir is None)
        if not one_source or (settings.model is not None and self.registry is None):
            raise ConfigError("Serve either --model-dir DIR or --model NAME@STAGE with --registry DIR.")
        self.exposures = ExposureWriter(self.store)
        self.committer = EventCommitter(self.store, timeout=settings.commit_timeout_seconds,
                                        before=self.exposures.flush_all, after=self.attribute)
        self.cache = ListCache(settings.cache_size)
        self.learning = threading.Lock()  # a POST's attribution and learning, or a rebuild of the policy's state
        self.erasures = ErasureFollower(self.store, self.erased_elsewhere, settings.erasure_poll_seconds)
        self.reload_failures = 0
        self.failed_path: Path | None = None
        self.reload_error: str | None = None
        self.live: set[str] = set()  # stored ids of the users with events since the served model's training
        self.event_follower = EventFollower(self.store, self.users_changed, settings.events_poll_seconds)
        self._load(self.model_path())  # what was stored before the follower's first row: read from the store here
        self.experiments = ExperimentFollower(self.store, settings.experiment_poll_seconds, self.arm_path,
                                              self.arm_model)
        self.rebuild_policy()
        self.event_follower.start()

    # -- the served model -----------------------------------------------------------------------------------------
    def model_path(self) -> Path:
        if self.registry is None:
            return Path(self.settings.model_dir)  # type: ignore[arg-type]
        return self.registry.resolve(self.settings.model)  # type: ignore[arg-type]

    def _load(self, path: Path) -> None:
        """Load ``path`` completely, then swap it in: requests in flight keep the model they started with."""
        manifest = read_manifest(path)
        base = load_model(path)
        self.store.check_model_users(base.users_.external_ids, str(path))  # pseudonyms on both sides, or neither
        if base.seen_.shape[1] >= ANN_MIN_ITEMS:
            base = base.with_vector_index(ef_search=self.settings.ann_ef_search)
        model = self._with_store_items(base)
        before = set(self.live)
        live = self.store.users_with_events_since(base.trained_until or 0.0)
        with self.lock:  # with the users whose events arrived meanwhile
            self.path, self.base, self.model = path, base, model
            self.live = live | (self.live - before)
            self.cache.clear()
            self.model_version = (f"{manifest['algorithm']}@{manifest['created']}"
                                  + (f" ({path.name})" if self.registry else ""))
        gc.collect()
        gc.freeze()  # the model's millions of ids are never garbage: keep the cyclic collector from walking them

    def follow_registry(self) -> bool:
        """Load the version the registry points at now if it changed; a version that fails to load is logged and
        the previous one keeps serving. Returns whether a new version is served."""
        if self.registry is None:
            return False
        path = None
        try:
            path = self.model_path()
            if path in (self.path, self.failed_path):
                return False
            self._load(path)
            if self.policy.contextual:  # its features are the model's vectors: learnt again with the new ones
                self.rebuild_policy()
            self.reload_error = None
            logger.info("model reloaded version=%s", self.model_version)
            return True
        except Exception as error:  # noqa: BLE001  (whatever broke, keep serving the previous model)
            self.reload_failures += 1
            self.failed_path = path
            self.reload_error = f"{path.name if path else self.settings.model}: {type(error).__name__}: {error}"
            logger.warning("model reload failed, still serving %s: %s", self.model_version, error)
            return False

    # -- recommendations ------------------------------------------------------------------------------------------
    def quick_recommend(self, user_id: str, k: int, exposure_id: str | None = None) -> Rows | None:
        """Top-``k`` of a trained user straight from the vector index (`Recommender.top_from_index`): no context, no
        explanation, no request-time stage, no event since training (``live``: the users with events received after
        the training data's end, from the store at load and from this process since). A stochastic policy chooses
        among the index's `candidate_count` best items, unless its state is being learned at this instant. None when
        the full path must answer (a policy whose choice is not `ServedPolicy.cheap` makes it in the thread pool)."""
        exposure_id = new_exposure_id() if exposure_id is None else exposure_id
        served = self.served_id(user_id)
        model = self.model
        if served == ERASED or served in self.live:
            return None
        position = model.users_.position(served)
        if self.policy.greedy:
            found = model.top_from_index(position, k)
            return None if found is None else indexed(model, *found)
        if not self.policy.cheap:
            return None
        found = model.top_from_index(position, candidate_count(k))
        if found is None:
            return None
        return self.decide(from_index(model, served, *found, vectors=self.policy.contextual), None, k, exposure_id,
                           wait=False)

    def recommend(self, query: Query, k: int, explain: bool, stages: list[Any] | None = None,
                  plain: bool = False, exposure_id: str | None = None, assigned: Assigned | None = None) -> Rows:
        """Top-``k`` for the query's user, or its anonymous session (no user id: known by ``context.recent``) --
        ``item_id, score, rank, propensity`` and ``reasons`` with ``explain``: the model's own list
        (`Recommender.recommend_one`); when the model does not know the user, its fold-in of the user's stored events
        (scorers that score a history), else the cold-start path from the user's stored attributes; the fallback for
        an erased user; ``stages`` (request-time rules) after the model's own. A trained user's stored events since
        training count at once (`Recommender.with_events`: seen, folded in, and the context's ``recent`` items); the
        store is asked only for the users in ``live``, and a ``plain`` request of theirs (no context, explanation or
        rules) is answered from the vector index with their folded-in factors when the model has one
        (`Recommender.top_from_index`). A stochastic policy chooses the list among the model's `candidate_count`
        best items, with the random stream of ``exposure_id``; the cache then keeps the candidates, not the list.
        A user ``assigned`` to an experiment's arm gets that arm's model (`Assigned.model`, its stored events folded
        in), or the non-personalised list of the served model (`Assigned.personalised` False: the holdout)."""
        exposure_id = new_exposure_id() if exposure_id is None else exposure_id
        user_id, context, model = SESSION if query.user_id is None else query.user_id, query.context, self.model
        served = self.served_id(user_id) if assigned is None or assigned.personalised else ERASED
        arm_model = assigned.model if assigned is not None else None
        model = model if arm_model is None else arm_model
        position = -1 if served == ERASED else model.users_.position(served)
        known = position >= 0 and bool(model.warm_users_[position])  # trained on the user's own events
        if not known:
            self.metrics.fallbacks.inc()
        key = (served, k, explain, context_key(context), None if arm_model is None else assigned.ref)
        generation = self.cache.generation()
        cached = None if stages else self.cache.get(key)
        if cached is not None:
            self.metrics.cache_hits.inc()
            return cached if self.policy.greedy else self.decide(*cached, k, exposure_id)
        size = k if self.policy.greedy else candidate_count(k)
        attributes = None
        if known and (served in self.live or arm_model is not None):  # events since training join its history
            events = model.unseen_events(self._stored_events(user_id).assign(**{USER_ID: served}))
            model = model.with_events(events)
            context = with_recent(context, events[ITEM_ID].tolist())
        elif not known and served != ERASED and query.user_id is not None:
            context = with_recent(context, self._stored_events(user_id)[ITEM_ID].tolist())  # folded in as a session
            attributes = self._stored_attributes(user_id) or None
        found = model.top_from_index(position, size) if plain and known else None  # None: no index, new items...
        proposed = None if found is None else (from_index(model, served, *found, vectors=self.policy.contextual), None)
        if proposed is None:
            model = model.with_stages(stages) if stages else model
            asked = Query(None if query.user_id is None else served, context, query.exclude, attributes)
            proposed = self._proposed(model, asked, k, explain)
        if self.policy.greedy:
            rows = self.decide(*proposed, k, exposure_id)
            if not stages:
                self.cache.put(key, served, rows, generation)
            return rows
        if not stages:
            self.cache.put(key, served, proposed, generation)
        return self.decide(*proposed, k, exposure_id)

    def _proposed(self, model: Recommender, asked: Query, k: int,
                  explain: bool) -> tuple[Candidates, dict[str, str] | None]:
        """The model's list for greedy (``k`` items), else its candidates (`candidates_of`), with the reasons of
        each item when explained."""
        if self.policy.greedy:
            found = model.recommend_one(asked, k, explain)
            candidates = Candidates(found.item_ids, found.scores.astype(np.float64), np.zeros(len(found), bool))
        else:
            candidates = candidates_of(model, asked, k)
            found = model.recommend_one(asked, candidate_count(k), True) if explain else None
        reasons = None if found is None or found.reasons is None else dict(zip(found.item_ids.tolist(),
                                                                                found.reasons.tolist()))
        return candidates, reasons

    def decide(self, candidates: Candidates, reasons: dict[str, str] | None, k: int, exposure_id: str,
               wait: bool = True) -> Rows | None:
        """The rows shown: greedy's first ``k`` candidates (propensity 1), else the policy's slate; None when
        ``wait`` is False and the policy is busy (`ServedPolicy.choose`)."""
        if self.policy.greedy:
            item_ids, scores, propensities = candidates.item_ids[:k], candidates.scores[:k], np.ones(min(k, len(
                candidates)))
        else:
            slate = self.policy.choose(candidates, k, exposure_id, wait)
            if slate is None:
                return None
            item_ids, scores, propensities = slate.item_ids, slate.scores, slate.propensities
        items = item_ids.tolist()
        explained = None if reasons is None else np.array([reasons.get(item, "") for item in items], object)
        return listed(items, scores, explained, propensities)

    def expose(self, exposure_id: str, user_id: str, rows: Rows, context: dict[str, Any] | None = None,
               assigned: Assigned | None = None, latency_ms: float | None = None) -> None:
        """Log the list shown (items, propensities, policy, model version, the request's context -- with ``fallback``
        true when the cold-start fallback or the holdout answered --, the experiment and arm, the time it took, the
        scores answered: none when one of them is not finite, answered null) and learn its impressions."""
        items, scores = [row[ITEM_ID] for row in rows], [row[SCORE] for row in rows]
        context = dict(context or {})
        if self.fallback(user_id, assigned):
            context["fallback"] = True
        version = self.model_version if assigned is None or assigned.model is None else assigned.ref
        self.exposures.log(exposure_row(user_id, version, items, [row[PROPENSITY] for row in rows],
                                        self.policy.spec, context, exposure_id,
                                        None if assigned is None else assigned.experiment,
                                        None if assigned is None else assigned.arm, latency_ms,
                                        None if None in scores else scores))
        served = self.served_id(user_id) if not self.policy.greedy else ERASED
        if served != ERASED:  # an erased user's list is not stored
            self.policy.learn(np.array(items, dtype=object), np.arange(1, len(items) + 1),
                              features=self.user_vectors(np.full(len(items), served, dtype=object)))

    def fallback(self, user_id: str, assigned: Assigned | None = None) -> bool:
        """Whether the user's list is not personalised: the holdout's, or a user the arm's model was not trained on."""
        if assigned is not None and not assigned.personalised:
            return True
        model = self.model if assigned is None or assigned.model is None else assigned.model
        served = self.served_id(user_id)
        position = -1 if served == ERASED else model.users_.position(served)
        return not (position >= 0 and bool(model.warm_users_[position]))

    # -- experiments ----------------------------------------------------------------------------------------------
    def assigned(self, user_id: str | None) -> Assigned | None:
        """The experiment arm of a user (None: no experiment runs, an anonymous session, an excluded or erased
        user)."""
        if user_id is None or self.experiments.running is None:
            return None
        return self.experiments.assigned(user_id, self.store.user_key(user_id))

    def arm_path(self, ref: str) -> Path:
        """The folder of an experiment arm's registry reference."""
        if self.registry is None:
            raise ConfigError(f"Experiment arm {ref!r} names a registry model: serve with --registry DIR.")
        return self.registry.resolve(ref)

    def arm_model(self, path: Path) -> Recommender | None:
        """An arm's model, loaded like the served one (vector index, stored items); None for the served model's
        folder (`ExperimentFollower` keeps each arm's once)."""
        if path == self.path:
            return None
        base = load_model(path)
        self.store.check_model_users(base.users_.external_ids, str(path))
        if base.seen_.shape[1] >= ANN_MIN_ITEMS:
            base = base.with_vector_index(ef_search=self.settings.ann_ef_search)
        return self._with_store_items(base)

    def daily_figures(self) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
        """The stored daily figures and alerts of the last week (`tailored monitor daily`), for /metrics."""
        since = (pd.Timestamp.now("UTC") - pd.Timedelta(days=7)).strftime("%Y-%m-%d")
        return daily_rows(self.store, since), alerts(self.store, since)

    # -- feedback -------------------------------------------------------------------------------------------------
    def attribute(self, batches: list[Sequence[Event]], fresh: frozenset[str],
                  stored: Mapping[str, Mapping[str, Any]] | None = None) -> list[list[dict[str, Any]]]:
        """Attribute committed batches of events (`EventStore.attribute`: the rule of the log export; one query per
        table for them all; ``stored``: their stored rows, as the commit has them, else read) and learn at once the
        clicks of those the commit stored (``fresh``: a resent event was learnt when first stored); per batch, per
        event ``event_id, exposure_id, by`` (exposure_id / window / none / duplicate; none for an event not stored, of
        an erased user, or of a type that does not attribute). Runs in the event
        committer's thread, after each commit (`EventCommitter`)."""
        answers: dict[str, tuple[str | None, str]] = {}
        attributable = [event for batch in batches for event in batch if event.type in ATTRIBUTED_TYPES]
        if attributable:
            with self.learning:
                found = self.store.attribution_columns(attributable, self.window, stored, details=False)
                stored_now = np.fromiter(map(fresh.__contains__, found["event_id"]), bool, len(found["event_id"]))
                learnt = np.flatnonzero((found["click"] > 0) & stored_now)
                self.policy.learn(found[ITEM_ID][learnt].astype(object), found["position"][learnt].astype(np.int64),
                                  found["click"][learnt].astype(np.float64),
                                  self.user_vectors(found[USER_ID][learnt].astype(object)), wait=True)
            answers = {event: (exposure if by != "none" else None, by) for event, exposure, by
                       in zip(found["event_id"].tolist(), found["exposure_id"].tolist(), found["by"].tolist())}
        return [[{"event_id": event.event_id, "exposure_id": exposure, "by": by}
                 for event in batch for exposure, by in [answers.get(event.event_id, (None, "none"))]]
                for batch in batches]

    def rebuild_policy(self) -> None:
        """The policy's state from the store alone: every stored impression and attributed click (the feedback log,
        `EventStore.feedback_log`: the rule `attribute` answers with), after the impressions waiting to be written."""
        if self.policy.greedy:
            return
        with self.learning:
            self.exposures.flush_all()
            self.policy.rebuild(self.store.feedback_log(self.window), self.user_vectors)

    def user_vectors(self, user_ids: np.ndarray) -> np.ndarray | None:
        """A contextual policy's features of feedback rows: the scorer's vector of each row's user (stored ids; the
        average user's for a user it was not trained on), from the served model as `candidates_from` reads them.
        None when the policy reads no features or the model has no vectors."""
        model = self.model
        if not self.policy.contextual or not model.can_.vectors:
            return None
        factors = model.scorer.user_factors_  # type: ignore[attr-defined]
        rows = model.users_.index(np.asarray(user_ids).astype(str), missing="mask")
        trained = (rows >= 0) & (rows < len(factors))
        vectors = np.tile(factors.mean(axis=0).astype(np.float64), (len(rows), 1))
        vectors[trained] = factors[rows[trained]]
        return vectors

    def erased_elsewhere(self, subjects: set[str]) -> None:
        """Users erased by another process: their lists and their part of the policy's state go."""
        self.cache.clear()
        self.rebuild_policy()

    def _stored_events(self, user_id: str) -> pd.DataFrame:
        """The user's latest stored events (``item_id, timestamp``, oldest first); none, and the list without them,
        while the database is unreachable."""
        try:
            return self.store.latest_events(user_id, STORED_HISTORY)
        except sa.exc.SQLAlchemyError as error:
            logger.warning("user history unavailable, serving without it: %s", type(error).__name__)
            return pd.DataFrame({ITEM_ID: pd.Series(dtype=str), TIMESTAMP: pd.Series(dtype=float)})

    def _stored_attributes(self, user_id: str) -> dict[str, Any] | None:
        """The user's stored attributes; None, and the plain cold-start answer, while the database is unreachable."""
        try:
            return self.store.user_attributes(user_id)
        except sa.exc.SQLAlchemyError as error:
            logger.warning("user attributes unavailable, serving the cold-start fallback: %s", type(error).__name__)
            return None

    def events_arrived(self, user_ids: Iterable[str]) -> None:
        """New feedback from these users (posted to this process)."""
        self.users_changed({self.store.user_key(user_id) for user_id in user_ids})

    def users_changed(self, stored_ids: set[str]) -> None:
        """Events of these users (stored ids) arrived: their cached lists are stale, and the fast lane no longer
        answers them; from this process's POSTs at once, from other processes' within the `EventFollower` poll."""
        self.live |= stored_ids
        self.cache.drop_users(stored_ids)

    def served_id(self, user_id: str) -> str:
        """The id the model knows the user by (pseudonymised when configured), or ERASED."""
        erased = self.erasures.subjects
        return ERASED if erased and self.store.subject(user_id) in erased else self.store.user_key(user_id)

    # -- users and items ------------------------------------------------------------------------------------------
    def erase_user(self, user_id: str) -> dict[str, int]:
        deleted = self.store.erase_user(user_id)
        self.erasures.subjects.add(self.store.subject(user_id))
        self.events_arrived([user_id])
        self.rebuild_policy()  # the policy forgets what it learned from the user
        return deleted

    def put_user(self, user_id: str, attributes: dict[str, Any]) -> list[str]:
        """Store the user's attributes; what the served model cannot use of them for a user it does not know
        (`Recommender.attribute_problems`: foreign or lacking columns, unseen values), empty for a known user."""
        self.store.put_user(user_id, attributes)
        self.events_arrived([user_id])
        return self.model.attribute_problems(pd.DataFrame([{USER_ID: self.served_id(user_id), **attributes}]))

    def put_item(self, item_id: str, attributes: dict[str, Any]) -> list[str]:
        """Store the item; an item the model does not know is recommendable at once from its attributes. Returns what
        the model cannot use of them (`Recommender.item_attribute_problems`), empty for a known item."""
        self.store.put_item(item_id, attributes)
        if self.base.items_.position(item_id) >= 0:
            return []
        model = self._with_store_items(self.base)
        with self.lock:
            self.model = model
        self.cache.clear()
        return self.base.item_attribute_problems(pd.DataFrame([{ITEM_ID: str(item_id), **attributes}]))

    def _with_store_items(self, model: Recommender) -> Recommender:
        """``model`` with the stored items it does not know, when it can score items from their attributes."""
        table = self.store.items_table()
        return model.with_items(table) if not table.empty and model.new_items_.scorable else model


def indexed(model: Recommender, items: np.ndarray, scores: np.ndarray) -> Rows:
    """A `Recommender.top_from_index` answer (item indices, scores) as JSON rows."""
    return listed(model.items_.ids(items).tolist(), scores)


def from_index(model: Recommender, user_id: str, items: np.ndarray, scores: np.ndarray,
               vectors: bool = True) -> Candidates:
    """A `Recommender.top_from_index` answer as the candidates `candidates_of` makes of the same items (the index
    answers only while no item was added after training); the scorer's ``vectors`` only for a contextual policy
    (the others never read them: looking the items up costs a request more than the policy's choice)."""
    if not vectors:
        return Candidates(model.items_.ids(items), np.asarray(scores, np.float64), np.zeros(len(items), bool))
    return candidates_from(model, user_id, model.items_.ids(items), scores)


def new_exposure_id() -> str:
    """A list's id, drawn before the list: the policy's random stream comes from it (`request_rng`)."""
    return uuid.uuid4().hex


def with_recent(context: Context, items: list[str]) -> Context:
    """``context`` with ``items`` (oldest first) before its own ``recent`` items."""
    if not items:
        return context
    return dataclasses.replace(context, recent=(*items, *context.recent))


def listed(item_ids: list[str], scores: np.ndarray, reasons: np.ndarray | None = None,
           propensities: np.ndarray | None = None) -> Rows:
    """A list (in display order) as JSON rows ``item_id, score, rank, propensity`` and ``reasons``: a score that is
    not finite becomes null, an empty reason is left out; the propensity is 1 unless given."""
    chances = [1.0] * len(item_ids) if propensities is None else propensities.tolist()
    rows: Rows = [{ITEM_ID: item, SCORE: score if math.isfinite(score) else None, RANK: rank, PROPENSITY: chance}
                  for rank, (item, score, chance) in enumerate(zip(item_ids, scores.tolist(), chances), 1)]
    for row, reason in zip(rows, [] if reasons is None else reasons.tolist()):
        if reason != "":
            row[REASONS] = reason
    return rows
