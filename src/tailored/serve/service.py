"""What the service holds between requests: the served model (with the items added since training), the event
store, the key cache, the rate limiter and the erased users (followed from the store: `ErasureFollower`)."""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import threading
from pathlib import Path
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tailored.data.columns import ITEM_ID, RANK, REASONS, SCORE, TIMESTAMP, USER_ID
from tailored.errors import ConfigError
from tailored.pipeline.recommender import Recommender
from tailored.query import Context, Query
from tailored.registry.model_dir import load_model, read_manifest
from tailored.registry.versions import ModelRegistry
from tailored.rank.candidates import ANN_MIN_ITEMS
from tailored.serve.cache import ListCache, Rows, context_key
from tailored.serve.committer import EventCommitter
from tailored.serve.erasures import ErasureFollower
from tailored.serve.exposures import ExposureWriter
from tailored.serve.live_events import EventFollower
from tailored.serve.limits import DatabaseCalls
from tailored.serve.metrics import Metrics
from tailored.serve.security import KeyCache, RateLimiter
from tailored.serve.settings import ServiceSettings
from tailored.store import EventStore

logger = logging.getLogger(__name__)
STORED_HISTORY = 200
"""How many of a user's latest stored events the service folds in (those since training, for a trained user)."""
ERASED = "\x00erased"
"""The id an erased user is served under: unknown to every model, so the cold-start fallback answers."""
SESSION = "\x00session"
"""The id of an anonymous session: no client id can hold a control character, so nothing is stored under it."""


class Service:
    def __init__(self, settings: ServiceSettings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.store = EventStore(settings.db_url, settings.pseudonym_key)
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.lock = threading.Lock()
        self.database_calls = DatabaseCalls(settings.database_check_seconds)
        self.keys = KeyCache(self.store.key_scopes, self.database_calls, settings.key_cache_seconds,
                             settings.key_outage_seconds, settings.max_invalid_keys)
        self.registry = ModelRegistry(settings.registry) if settings.registry is not None else None
        one_source = (settings.model is None) != (settings.model_dir is None)
        if not one_source or (settings.model is not None and self.registry is None):
            raise ConfigError("Serve either --model-dir DIR or --model NAME@STAGE with --registry DIR.")
        self.exposures = ExposureWriter(self.store)
        self.committer = EventCommitter(self.store, timeout=settings.commit_timeout_seconds)
        self.cache = ListCache(settings.cache_size)
        self.erasures = ErasureFollower(self.store, lambda subjects: self.cache.clear(), settings.erasure_poll_seconds)
        self.reload_failures = 0
        self.failed_path: Path | None = None
        self.reload_error: str | None = None
        self.live: set[str] = set()  # stored ids of the users with events since the served model's training
        self.event_follower = EventFollower(self.store, self.users_changed, settings.events_poll_seconds)
        self._load(self.model_path())  # what was stored before the follower's first row: read from the store here
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
    def quick_recommend(self, user_id: str, k: int) -> Rows | None:
        """Top-``k`` of a trained user straight from the vector index (`Recommender.top_from_index`): no context, no
        explanation, no request-time stage, no event since training (``live``: the users with events received after
        the training data's end, from the store at load and from this process since). None when the full path must
        answer."""
        served = self.served_id(user_id)
        model = self.model
        if served == ERASED or served in self.live:
            return None
        found = model.top_from_index(model.users_.position(served), k)
        return None if found is None else indexed(model, *found)

    def recommend(self, query: Query, k: int, explain: bool, stages: list[Any] | None = None,
                  plain: bool = False) -> Rows:
        """Top-``k`` for the query's user, or its anonymous session (no user id: known by ``context.recent``) --
        ``item_id, score, rank`` and ``reasons`` with ``explain``: the model's own list (`Recommender.recommend_one`);
        when the model does not know the user, its fold-in of the user's stored events (scorers that score a
        history), else the cold-start path from the user's stored attributes; the fallback for an erased user;
        ``stages`` (request-time rules) after the model's own. A trained user's stored events since training count at
        once (`Recommender.with_events`: seen, folded in, and the context's ``recent`` items); the store is asked only
        for the users in ``live``, and a ``plain`` request of theirs (no context, explanation or rules) is answered
        from the vector index with their folded-in factors when the model has one (`Recommender.top_from_index`)."""
        user_id, context, model = SESSION if query.user_id is None else query.user_id, query.context, self.model
        served = self.served_id(user_id)
        position = -1 if served == ERASED else model.users_.position(served)
        known = position >= 0 and bool(model.warm_users_[position])  # trained on the user's own events
        if not known:
            self.metrics.fallbacks.inc()
        key = (served, k, explain, context_key(context))
        generation = self.cache.generation()
        cached = None if stages else self.cache.get(key)
        if cached is not None:
            self.metrics.cache_hits.inc()
            return cached
        attributes = None
        if known and served in self.live:  # the events since training join the training history
            events = model.unseen_events(self._stored_events(user_id).assign(**{USER_ID: served}))
            model = model.with_events(events)
            context = with_recent(context, events[ITEM_ID].tolist())
            found = model.top_from_index(position, k) if plain else None
            if found is not None:
                self.cache.put(key, served, rows := indexed(model, *found), generation)
                return rows
        elif not known and served != ERASED and query.user_id is not None:
            context = with_recent(context, self._stored_events(user_id)[ITEM_ID].tolist())  # folded in as a session
            attributes = self._stored_attributes(user_id) or None
        model = model.with_stages(stages) if stages else model
        asked = Query(None if query.user_id is None else served, context, query.exclude, attributes)
        found = model.recommend_one(asked, k, explain)
        rows = listed(found.item_ids.tolist(), found.scores, found.reasons)
        if not stages:
            self.cache.put(key, served, rows, generation)
        return rows

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


def with_recent(context: Context, items: list[str]) -> Context:
    """``context`` with ``items`` (oldest first) before its own ``recent`` items."""
    if not items:
        return context
    return dataclasses.replace(context, recent=(*items, *context.recent))


def listed(item_ids: list[str], scores: np.ndarray, reasons: np.ndarray | None = None) -> Rows:
    """A list (best first) as JSON rows ``item_id, score, rank`` and ``reasons``: a score that is not finite becomes
    null, an empty reason is left out."""
    rows: Rows = [{ITEM_ID: item, SCORE: score if math.isfinite(score) else None, RANK: rank}
                  for rank, (item, score) in enumerate(zip(item_ids, scores.tolist()), 1)]
    for row, reason in zip(rows, [] if reasons is None else reasons.tolist()):
        if reason != "":
            row[REASONS] = reason
    return rows
