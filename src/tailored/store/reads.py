"""What a store reads: stored ids and fingerprints of users, stored events, attributes and the erasure list, each
read leaving out the users erased (`StoreReads._erased`). `EventStore` adds opening, migrating and every write."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tailored.data.columns import ITEM_ID, TIMESTAMP
from tailored.store import schema
from tailored.store.attribution import (ATTRIBUTED_TYPES, ATTRIBUTION_WINDOW_SECONDS, attribute, attribution_of,
                                        check_window, feedback_log, shown_positions, unrolled)
from tailored.store.pseudonyms import Pseudonyms

if TYPE_CHECKING:
    from tailored.store.database import Event

ID_CHUNK = 5_000
"""Ids per query of a set of ids (databases bound the parameters of one query)."""
EVENT_FIELDS = ("event_id", "user_id", "item_id", "type", "value", "timestamp", "exposure_id")
# statements built once (SQLAlchemy would rebuild and re-key them per call)
SELECT_STORED = sa.select(*[schema.events.c[name] for name in EVENT_FIELDS]).where(
    schema.events.c.event_id.in_(sa.bindparam("ids", expanding=True)))
EXPOSURE_FIELDS = ("exposure_id", "user_id", "created_at", "model_version", "policy", "items", "propensities",
                   "context", "experiment", "arm", "latency_ms")
SELECT_EXPOSURES = sa.select(*[schema.exposures.c[name] for name in EXPOSURE_FIELDS]).where(
    schema.exposures.c.user_id.in_(sa.bindparam("users", expanding=True)))
SELECT_ATTRIBUTABLE = sa.select(*[schema.events.c[name] for name in EVENT_FIELDS]).where(
    schema.events.c.user_id.in_(sa.bindparam("users", expanding=True)) & schema.events.c.type.in_(ATTRIBUTED_TYPES))
SLOT_FIELDS = ("exposure_id", "user_id", "created_at", "items")
SELECT_RECENT_SLOTS = sa.select(*[schema.exposures.c[name] for name in SLOT_FIELDS]).where(
    schema.exposures.c.user_id.in_(sa.bindparam("users", expanding=True))
    & schema.exposures.c.created_at.between(sa.bindparam("created_low"), sa.bindparam("high")))
DETAIL_FIELDS = ("exposure_id", "propensities", "policy", "model_version", "context")
SELECT_DETAILS = sa.select(*[schema.exposures.c[name] for name in DETAIL_FIELDS]).where(
    schema.exposures.c.exposure_id.in_(sa.bindparam("ids", expanding=True)))
SELECT_RECENT_ATTRIBUTABLE = SELECT_ATTRIBUTABLE.where(
    schema.events.c.timestamp.between(sa.bindparam("low"), sa.bindparam("high"))
    & schema.events.c.item_id.in_(sa.bindparam("items", expanding=True))
    & schema.events.c.event_id.not_in(sa.bindparam("given", expanding=True)))
USERS_PER_CHUNK = 1_000
"""Users per chunk of the feedback log (attribution never crosses users: each chunk is attributed on its own)."""
SELECT_ERASED = sa.select(schema.erasures.c.subject).where(
    schema.erasures.c.subject.in_(sa.bindparam("subjects", expanding=True)))


class StoreReads:
    """The reads of `EventStore` on its ``engine``, with its ``pseudonyms`` and the installation's ``_audit_key``."""

    engine: sa.Engine
    pseudonyms: Pseudonyms
    _audit_key: bytes

    # -- identities -----------------------------------------------------------------------------------------------
    def user_key(self, user_id: str) -> str:
        """The id stored for a user: the id itself, or its keyed hash when pseudonymisation is on."""
        return self.pseudonyms.user_key(user_id)

    def subject(self, user_id: str) -> str:
        """A keyed fingerprint of a user for the audit log and the erasure list (never the id itself)."""
        return self._fingerprint(self.user_key(user_id))

    def _fingerprint(self, stored_id: str) -> str:
        return self.pseudonyms.fingerprint(self._audit_key, stored_id)

    # -- events ---------------------------------------------------------------------------------------------------
    def stored_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        """Which of these event ids are stored."""
        with self.engine.connect() as connection:
            return set(self._stored_events(connection, set(event_ids)))

    def _stored_events(self, connection: sa.Connection, event_ids: set[str]) -> dict[str, dict[str, Any]]:
        """The stored events among ``event_ids`` (queried in chunks: databases bound the parameters per query)."""
        ordered, found = sorted(event_ids), {}
        for start in range(0, len(ordered), ID_CHUNK):
            rows = connection.execute(SELECT_STORED, {"ids": ordered[start:start + ID_CHUNK]})
            found |= {row[0]: dict(zip(EVENT_FIELDS, row, strict=True)) | {"timestamp_given": True} for row in rows}
        return found

    def count_events(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(schema.events)).scalar())

    def latest_events(self, user_id: str, limit: int) -> pd.DataFrame:
        """The user's ``limit`` latest stored events as ``item_id, timestamp``, oldest first (repeats kept: order is
        signal); none for an erased user."""
        events, stored = schema.events.c, self.user_key(user_id)
        query = (sa.select(events.item_id, events.timestamp).where(events.user_id == stored)
                 .order_by(events.timestamp.desc(), events.id.desc()).limit(limit))
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()[::-1]
            if rows and self._erased(connection, {stored}):
                rows = []
        return pd.DataFrame({ITEM_ID: [row[0] for row in rows], TIMESTAMP: np.array([row[1] for row in rows], float)})

    def last_event_row(self) -> int:
        """The id of the last stored event row (0 for none)."""
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.max(schema.events.c.id))).scalar() or 0)

    def event_rows(self, after: int, among: Iterable[int] = ()) -> list[tuple[int, str]]:
        """``(row id, stored user id)`` of the event rows after row ``after`` and of those of the row ids ``among``
        (ids missing below it: a transaction not committed yet when last looked), in row order."""
        events, gaps = schema.events.c, sorted(among)
        condition = events.id > after
        if gaps:
            condition = condition | events.id.in_(gaps)
        query = sa.select(events.id, events.user_id).where(condition).order_by(events.id)
        with self.engine.connect() as connection:
            return [(int(found), user) for found, user in connection.execute(query)]

    def users_with_events_since(self, received_after: float) -> set[str]:
        """The stored ids of the users with events received after ``received_after`` (unix seconds)."""
        events = schema.events.c
        query = sa.select(events.user_id).where(events.received_at > received_after).distinct()
        with self.engine.connect() as connection:
            return set(connection.execute(query).scalars())

    # -- feedback -------------------------------------------------------------------------------------------------
    def feedback_log(self, window: float = ATTRIBUTION_WINDOW_SECONDS, users_per_chunk: int = USERS_PER_CHUNK,
                     extra: Sequence[str] = ()) -> Iterator[pd.DataFrame]:
        """The feedback log (`attribution.LOG_COLUMNS`: one row per shown position with its propensity, policy and
        attributed click, purchase and revenue, then the exposures' ``extra`` columns, e.g. ``experiment, arm``), in
        chunks of ``users_per_chunk`` users, each ordered by time then exposure and position. User ids are as stored
        (pseudonyms in a pseudonymising store); erased users' rows never appear. Events are attributed with
        ``window`` seconds (`tailored.store.attribution`)."""
        for shown, attribution in self._attributed_chunks(window, users_per_chunk):
            yield feedback_log(shown, attribution, extra=extra)

    def feedback_state_rows(self, window: float = ATTRIBUTION_WINDOW_SECONDS,
                            users_per_chunk: int = USERS_PER_CHUNK) -> Iterator[pd.DataFrame]:
        """What a policy's online state is rebuilt from when the service starts: the feedback log's rows plus each
        exposure's ``context``. Every row is an impression (``item_id`` shown at ``position`` by ``policy``: learn it
        with ``rewards=None``); its ``click`` / ``purchase`` / ``revenue`` are the sums of the reward shares that
        `attribute` gives its events one by one, so replaying the rows with a reward equals having learnt online
        from every `attribute` answer (the same rule, the same window)."""
        for shown, attribution in self._attributed_chunks(window, users_per_chunk):
            yield feedback_log(shown, attribution, extra=["context"])

    def attribute(self, events: Sequence[Event | str], window: float = ATTRIBUTION_WINDOW_SECONDS,
                  stored: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
        """The attribution of these stored events (`Event`s or event ids; those not stored, e.g. of erased users,
        are left out), as `feedback_log` attributes them: one row per event, in the given order, with ``event_id,
        user_id`` (as stored) ``, item_id, type, value, timestamp``, the ``exposure_id`` and ``position`` matched
        (missing and 0 when none), ``by`` (exposure_id / window / none / duplicate), the event's reward shares
        ``click, purchase, revenue`` (learn a reward from the rows where they are positive) and the exposure's
        ``propensity, policy, model_version, context``. Reads only the users' exposures and click/cart/purchase
        events near the events' times: those that can change the answer (`attribution.attribute`). ``stored``: the
        stored rows of these event ids (by id: `EVENT_FIELDS` at least, an id missing is not stored) when the caller
        has them, e.g. a group commit's (`EventStore.append_event_group`): they are then not read again."""
        return pd.DataFrame(self.attribution_columns(events, window, stored))

    def attribution_columns(self, events: Sequence[Event | str], window: float = ATTRIBUTION_WINDOW_SECONDS,
                            stored: Mapping[str, Mapping[str, Any]] | None = None,
                            details: bool = True) -> dict[str, np.ndarray]:
        """`attribute`'s answer as one array per column, without a frame (the service's per-commit path); with
        ``details=False``, without the exposure's ``propensity, policy, model_version, context`` (not read)."""
        window = check_window(window)
        ids = list(dict.fromkeys(each if isinstance(each, str) else each.event_id for each in events))
        fields = itemgetter(*EVENT_FIELDS)
        with self.engine.connect() as connection:
            if stored is None:
                stored = self._stored_events(connection, set(ids))
            given = [fields(stored[each]) for each in ids if each in stored]
            near = [row for row in given if row[3] in ATTRIBUTED_TYPES]
            exposures, candidates = [], []
            if near:
                # an earlier event of the same exposure (created in [t - window, t]) is at most a window older, and
                # the exposures that decide where it went were created at most a window before it
                times = [float(row[5]) for row in near]
                low, high = min(times) - window, max(times)
                # the events attributed are held already: not read again, unless too many to name in one query
                bounds = {"created_low": low - window, "low": low, "high": high,
                          "given": [row[0] for row in near] if len(near) <= ID_CHUNK else []}
                exposures, candidates = self._exposures_and_events(connection, sorted({row[1] for row in near}), bounds,
                                                                   sorted({row[2] for row in near}))
            # plain arrays, no frames until the answer: a batch of a few events costs a few milliseconds
            known = {row[0] for row in given}
            pool = _columns(given + [row for row in candidates if row[0] not in known], EVENT_FIELDS)
            lists = _columns(exposures, SLOT_FIELDS)
            rows, positions, item_ids = unrolled(lists["items"])
            shown = {"exposure_id": lists["exposure_id"][rows], "user_id": lists["user_id"][rows],
                     "created_at": lists["created_at"][rows].astype(float), "position": positions, "item_id": item_ids}
            found = attribution_of(shown, pool, window)
            slot, count = found.slot[:len(given)], len(given)
            exposure, position = _taken(shown["exposure_id"], slot), _taken(positions, slot, 0)
            read = self._details(connection, exposure, position) if details else {}
        answer = {name: pool[name][:count] for name in EVENT_FIELDS if name != "exposure_id"}
        answer["value"], answer["timestamp"] = answer["value"].astype(float), answer["timestamp"].astype(float)
        answer |= {"exposure_id": exposure, "position": position, "by": found.by[:count], "click": found.click[:count],
                   "purchase": found.purchase[:count], "revenue": found.revenue[:count]}
        return answer | read

    def _details(self, connection: sa.Connection, exposure: np.ndarray, position: np.ndarray) -> dict[str, np.ndarray]:
        """``propensity, policy, model_version, context`` of each (``exposure``, ``position``); NaN and None where
        the exposure is None. Read for the exposures matched only: their lists of numbers and contexts are JSON."""
        hit = np.flatnonzero(pd.notna(exposure))
        wanted, rows = sorted(set(exposure[hit])), []
        for start in range(0, len(wanted), ID_CHUNK):
            rows += map(tuple, connection.execute(SELECT_DETAILS, {"ids": wanted[start:start + ID_CHUNK]}))
        lists = _columns(rows, DETAIL_FIELDS)
        at = pd.Index(lists["exposure_id"]).get_indexer(exposure[hit])
        lengths = np.fromiter(map(len, lists["propensities"]), np.int64, len(rows))
        flat = np.array(list(chain.from_iterable(lists["propensities"])), dtype=float)
        details = {"propensity": np.full(len(exposure), np.nan)} | {
            name: np.full(len(exposure), None, dtype=object) for name in ("policy", "model_version", "context")}
        details["propensity"][hit] = flat[(np.cumsum(lengths) - lengths)[at] + position[hit] - 1]
        for name in ("policy", "model_version", "context"):
            details[name][hit] = lists[name][at]
        return details

    def _attributed_chunks(self, window: float,
                           users_per_chunk: int) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """Per chunk of the users with exposures (erased users left out): their shown positions and the attribution
        of their click, cart and purchase events."""
        window = check_window(window)
        with self.engine.connect() as connection:
            erased = set(connection.execute(sa.select(schema.erasures.c.subject)).scalars())
            users = sorted(set(connection.execute(sa.select(schema.exposures.c.user_id).distinct()).scalars()))
            if erased:
                users = sorted(set(users) - self._among(erased, set(users)))
            for start in range(0, len(users), users_per_chunk):
                exposures, events = self._exposures_and_events(connection, users[start:start + users_per_chunk])
                shown = shown_positions(pd.DataFrame(exposures, columns=[*EXPOSURE_FIELDS]).sort_values(
                    ["created_at", "exposure_id"], kind="stable"))
                yield shown, attribute(shown, pd.DataFrame(events, columns=[*EVENT_FIELDS]), window)

    def _exposures_and_events(self, connection: sa.Connection, users: list[str], bounds: dict[str, float] | None = None,
                              items: list[str] | None = None) -> tuple[list[tuple], list[tuple]]:
        """The exposures (`EXPOSURE_FIELDS`) and the click, cart and purchase events of these stored user ids; with
        ``bounds`` and ``items``, only the exposures created between ``created_low`` and ``high``, as `SLOT_FIELDS`
        (what the rule reads), and the events of these items timed between ``low`` and ``high`` (an event of another
        item never shares a slot with the events attributed: it cannot change their answer), but not those of the ids
        ``given``."""
        exposures: list[tuple] = []  # plain tuples: pandas inspects a Row's attributes one by one (slow)
        events: list[tuple] = []
        recent = bounds is not None
        for start in range(0, len(users), ID_CHUNK):
            chunk = {"users": users[start:start + ID_CHUNK]} | (bounds or {})
            exposures += map(tuple, connection.execute(SELECT_RECENT_SLOTS if recent else SELECT_EXPOSURES, chunk))
            if not recent:
                events += map(tuple, connection.execute(SELECT_ATTRIBUTABLE, chunk))
                continue
            for first in range(0, len(items or ()), ID_CHUNK):
                events += map(tuple, connection.execute(SELECT_RECENT_ATTRIBUTABLE,
                                                        chunk | {"items": items[first:first + ID_CHUNK]}))
        return exposures, events

    # -- attributes -----------------------------------------------------------------------------------------------
    def user_attributes(self, user_id: str) -> dict[str, Any] | None:
        """The user's stored attributes; None for a user without any, or erased."""
        stored = self.user_key(user_id)
        with self.engine.connect() as connection:
            users = schema.users.c
            row = connection.execute(sa.select(users.attributes).where(users.user_id == stored)).first()
            erased = row is not None and self._erased(connection, {stored})
        return None if row is None or erased else dict(row[0])

    def item_ids(self) -> set[str]:
        with self.engine.connect() as connection:
            return set(connection.execute(sa.select(schema.items.c.item_id)).scalars())

    def items_table(self) -> pd.DataFrame:
        """Every stored item: ``item_id`` and its attribute columns."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(schema.items.c.item_id, schema.items.c.attributes)).all()
        return pd.DataFrame([{ITEM_ID: item_id, **attributes} for item_id, attributes in rows], columns=None)

    # -- erasures -------------------------------------------------------------------------------------------------
    def erased_subjects(self, since: float = 0.0) -> set[str]:
        """The fingerprints (`subject`) of the users erased at or after ``since`` (unix seconds; all by default)."""
        with self.engine.connect() as connection:
            return set(connection.execute(sa.select(schema.erasures.c.subject)
                                          .where(schema.erasures.c.erased_at >= since)).scalars())

    def is_erased(self, user_id: str) -> bool:
        return bool(self.erased_users([user_id]))

    def erased_users(self, user_ids: Iterable[str]) -> set[str]:
        """Which of these (clear) user ids belong to erased users."""
        stored = {self.user_key(user_id): str(user_id) for user_id in user_ids}
        with self.engine.connect() as connection:
            return {stored[key] for key in self._erased(connection, set(stored))}

    def audit_entries(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(schema.audit_log).order_by(schema.audit_log.c.id)).mappings().all()
        return [dict(row) for row in rows]

    def _erased(self, connection: sa.Connection, stored_ids: set[str]) -> set[str]:
        """Which of these stored user ids belong to erased users."""
        if not stored_ids:
            return set()
        subjects = {self._fingerprint(stored): stored for stored in stored_ids}
        ordered, found = list(subjects), []
        for start in range(0, len(ordered), ID_CHUNK):
            chunk = {"subjects": ordered[start:start + ID_CHUNK]}
            found += connection.execute(SELECT_ERASED, chunk).scalars().all()
        return {subjects[subject] for subject in found}

    def _among(self, erased: set[str], stored_ids: set[str]) -> set[str]:
        """Which of these stored user ids have their fingerprint in ``erased``."""
        return {stored for stored in stored_ids if self._fingerprint(stored) in erased}

    # -- health ---------------------------------------------------------------------------------------------------
    def ping(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(1)).scalar() == 1


def _columns(rows: list[tuple], fields: Sequence[str]) -> dict[str, np.ndarray]:
    """Rows of these fields as one object array per field (a field can hold lists: an exposure's items)."""
    columns = list(zip(*rows, strict=True)) or [()] * len(fields)
    return {name: np.fromiter(column, dtype=object, count=len(rows)) for name, column in zip(fields, columns)}


def _taken(values: np.ndarray, slot: np.ndarray, missing: Any = None) -> np.ndarray:
    """``values`` at the rows ``slot``, ``missing`` where the slot is -1 (not attributed)."""
    taken = np.full(len(slot), missing, dtype=object if missing is None else values.dtype)
    taken[slot >= 0] = values[slot[slot >= 0]]
    return taken
