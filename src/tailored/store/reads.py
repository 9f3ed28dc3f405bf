"""What a store reads: stored ids and fingerprints of users, stored events, attributes and the erasure list, each
read leaving out the users erased (`StoreReads._erased`). `EventStore` adds opening, migrating and every write."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tailored.data.columns import ITEM_ID, TIMESTAMP
from tailored.store import schema
from tailored.store.pseudonyms import Pseudonyms

ID_CHUNK = 5_000
"""Ids per query of a set of ids (databases bound the parameters of one query)."""
EVENT_FIELDS = ("event_id", "user_id", "item_id", "type", "value", "timestamp", "exposure_id")
# statements built once (SQLAlchemy would rebuild and re-key them per call)
SELECT_STORED = sa.select(*[schema.events.c[name] for name in EVENT_FIELDS]).where(
    schema.events.c.event_id.in_(sa.bindparam("ids", expanding=True)))
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
