"""`EventStore`: idempotent, durable event appends (one transaction per batch: group commit), user and item
attributes, exposures, API keys, erasure with an audit trail, and the export that feeds training.

The URL picks the database: ``sqlite:///path.db`` (the embedded default, in WAL mode with ``synchronous=FULL`` so an
acknowledged batch survives a crash) or ``postgresql://...`` (psycopg 3). An event's ``event_id`` is unique: the
same event sent twice is stored once, whichever request or process sends it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tailored.data.columns import EVENT_TYPE, ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.errors import ConfigError, ConflictError, DataError
from tailored.store import schema
from tailored.store.migrations import migrate
from tailored.store.pseudonyms import Pseudonyms
from tailored.store.reads import StoreReads
from tailored.store.schema import engine_for, write_transaction

DEFAULT_URL = "sqlite:///tailored.db"
SCOPES = ("recommend", "events:write", "admin")
KEY_PREFIX = "tlr"
EXPORT_COLUMNS = [USER_ID, ITEM_ID, VALUE, TIMESTAMP, EVENT_TYPE, "event_id", "received_at"]
"""What `EventStore.export_events` writes: the columns training reads, then what identifies each stored event."""
INSERTED_EVENT_FIELDS = ("event_id", "user_id", "item_id", "type", "value", "timestamp", "received_at", "exposure_id")
"""The columns an event append writes (the row id is the database's)."""
_inserted_fields = itemgetter(*INSERTED_EVENT_FIELDS)


@dataclass(frozen=True)
class Event:
    """One interaction. ``timestamp``: unix seconds (None: when received); ``exposure_id``: the list the event
    answers, when the client knows it (attribution then tries that exposure first: `tailored.store.attribution`)."""

    event_id: str
    user_id: str
    item_id: str
    type: str
    value: float | None = None
    timestamp: float | None = None
    exposure_id: str | None = None


class Appended(NamedTuple):
    """What a group commit did (`EventStore.append_event_group`): per batch (accepted, duplicates) or its
    ConflictError, and the ids it stored (new to the store, first come first served across the group; none for a
    refused batch, nor for events of erased users); ``stored``: the stored row (`reads.EVENT_FIELDS` and more) of
    each of the group's event ids stored before or by this commit."""

    results: list[tuple[int, int] | ConflictError]
    fresh: list[frozenset[str]]
    stored: dict[str, dict[str, Any]]


class EventStore(StoreReads):
    """The engine's database. ``pseudonym_key``: user ids are stored as keyed hashes (HMAC-SHA256) when given; the
    database records whether it is pseudonymised, and with which key (a check value), and a store opened with a
    missing or another key is refused. ``create=False``: a SQLite file that does not exist is refused rather than
    created (admin commands: a mistyped path must not act on a new, empty database). Its reads are `StoreReads`'s."""

    def __init__(self, url: str = DEFAULT_URL, pseudonym_key: str | None = None, create: bool = True) -> None:
        self.url = url
        self.engine = engine_for(url)
        self.pseudonyms = Pseudonyms(pseudonym_key)
        database = self.engine.url.database
        if not create and self.engine.dialect.name == "sqlite" and database not in (None, "", ":memory:") \
                and not Path(database).is_file():
            raise ConfigError(f"No database at {database!r} ({safe_url(url)}): check the path; `tailored serve` and "
                              "`tailored keys create` create a new one.")
        try:
            self.version = migrate(self.engine)
            with self.engine.connect() as connection:
                names = sa.select(schema.store_settings.c.name, schema.store_settings.c.value)
                settings = dict(connection.execute(names).all())
            recorded = settings.get(schema.PSEUDONYMS)
            self.pseudonyms.check(self._record_pseudonyms() if recorded is None else recorded, safe_url(url))
        except sa.exc.OperationalError as error:
            raise ConfigError(f"Cannot open the database {safe_url(url)}: {error.orig}") from error
        self._audit_key = settings[schema.AUDIT_SECRET].encode()
        # the insert of every event append, built once (SQLAlchemy rebuilds and re-keys a statement per call). On
        # SQLite, plain SQL run by the driver's executemany on tuples (SQLAlchemy's per-row parameter handling was
        # most of an append's cost), which sums the rows inserted (an id skipped is not counted); on PostgreSQL the
        # drivers batch the rows, so the ids inserted come back
        self._insert_events = self._insert_ignoring(schema.events, "event_id").returning(schema.events.c.event_id)
        self._insert_events_sqlite = None if self.engine.dialect.name != "sqlite" else (
            f"INSERT INTO events ({', '.join(f'{chr(34)}{name}{chr(34)}' for name in INSERTED_EVENT_FIELDS)}) VALUES "
            f"({', '.join('?' * len(INSERTED_EVENT_FIELDS))}) ON CONFLICT (event_id) DO NOTHING")

    # -- identities ---------------------------------------------------------------------------------------------
    def _record_pseudonyms(self) -> str:
        """Record whether the database pseudonymises user ids: the first store to open it decides, but one made
        before revision 0003 is judged by the user ids it already holds. Returns what is recorded. Exclusive: two
        stores opening a new database at once both find nothing recorded, and the second must then read the first's."""
        with write_transaction(self.engine, exclusive=True) as connection:
            recorded = connection.execute(sa.select(schema.store_settings.c.value).where(
                schema.store_settings.c.name == schema.PSEUDONYMS)).scalar()
            if recorded is None:
                held = connection.execute(sa.select(schema.events.c.user_id).limit(100)).scalars().all()
                self.pseudonyms.check_held(held, safe_url(self.url))
                recorded = self.pseudonyms.check_value()
                connection.execute(schema.store_settings.insert().values(name=schema.PSEUDONYMS, value=recorded))
        return recorded

    def check_model_users(self, user_ids: np.ndarray, model: str) -> None:
        """Refuse a model trained on ids in clear when user ids are pseudonymised (`Pseudonyms.check_model_users`)."""
        self.pseudonyms.check_model_users(user_ids, model)

    # -- events -------------------------------------------------------------------------------------------------
    def append_events(self, batch: Sequence[Event]) -> tuple[int, int]:
        """Store one batch in one transaction; returns (accepted, duplicates). Raises ConflictError, storing
        nothing, when an event id comes back with a different payload."""
        result = self.append_event_batches([batch])[0]
        if isinstance(result, ConflictError):
            raise result
        return result

    def append_event_batches(self, batches: Sequence[Sequence[Event]]) -> list[tuple[int, int] | ConflictError]:
        """Group commit: store several clients' batches in one transaction. Each batch gets (accepted, duplicates)
        -- an event id already stored (or earlier in the group) with the same payload is a duplicate, events of
        erased users are refused as duplicates -- or a ConflictError, and then none of its events is stored
        (`append_event_group` also says which ids each batch stored and gives the stored rows)."""
        return self.append_event_group(batches).results

    def append_event_group(self, batches: Sequence[Sequence[Event]]) -> Appended:
        """`append_event_batches`, answering with what the commit knows without reading again: the ids each batch
        stored and the stored rows of the group's event ids (what `StoreReads.attribute` reads, as ``stored``).

        The database decides between processes: the insert skips the ids stored meanwhile by another transaction
        (the unique ``event_id``); if it skipped any, the transaction is rolled back and the group decided again,
        comparing with those rows, now read (each retry follows a commit of one of these ids, so retries end)."""
        now = time.time()
        rows = [[self._event_row(event, now) for event in batch] for batch in batches]
        while True:
            try:
                with write_transaction(self.engine) as connection:
                    return self._append(connection, rows)
            except _StoredMeanwhile:
                continue

    def _append(self, connection: sa.Connection, rows: list[list[dict[str, Any]]]) -> Appended:
        """Decide each batch of the group against the stored events and store the fresh ones (see above)."""
        seen = self._stored_events(connection, {row["event_id"] for batch in rows for row in batch})
        erased = self._erased(connection, {row["user_id"] for batch in rows for row in batch})
        results: list[tuple[int, int] | ConflictError] = []
        stored_by: list[frozenset[str]] = []
        fresh: list[dict[str, Any]] = []
        for batch in rows:
            mine: dict[str, dict[str, Any]] = {}
            conflicts = [row["event_id"] for row in batch
                         if (kept := mine.setdefault(row["event_id"], seen.get(row["event_id"], row))) is not row
                         and not _same_event(row, kept)]
            if conflicts:
                results.append(ConflictError(f"{len(conflicts)} event id(s) already stored with a different payload "
                                             f"(first: {conflicts[0]!r}); nothing of this batch was stored."))
                stored_by.append(frozenset())
                continue
            new = [row for event_id, row in mine.items() if event_id not in seen and row["user_id"] not in erased]
            seen |= {row["event_id"]: row for row in new}
            fresh += new
            results.append((len(new), len(batch) - len(new)))
            stored_by.append(frozenset(row["event_id"] for row in new))
        if fresh:
            if self._insert_events_sqlite is not None:
                inserted = connection.exec_driver_sql(self._insert_events_sqlite,
                                                      list(map(_inserted_fields, fresh))).rowcount
            else:
                stored = [{name: row[name] for name in INSERTED_EVENT_FIELDS} for row in fresh]
                inserted = len(connection.execute(self._insert_events, stored).all())
            if inserted < len(fresh):
                raise _StoredMeanwhile
        return Appended(results, stored_by, seen)

    def _event_row(self, event: Event, now: float) -> dict[str, Any]:
        return {"event_id": event.event_id, "user_id": self.user_key(event.user_id), "item_id": str(event.item_id),
                "type": event.type, "value": event.value,
                "timestamp": now if event.timestamp is None else float(event.timestamp), "received_at": now,
                "exposure_id": None if event.exposure_id is None else str(event.exposure_id),
                "timestamp_given": event.timestamp is not None}

    def export_events(self, chunk_size: int = 100_000) -> Iterator[pd.DataFrame]:
        """Every stored event in `EXPORT_COLUMNS`, in chunks: the canonical columns (``user_id, item_id, value,
        timestamp, event_type``) then ``event_id`` and ``received_at`` (so a job can deduplicate and audit what it
        trained on); never one of an erased user (an erasure deletes them, and rows restored from a backup are
        skipped)."""
        events = schema.events.c
        query = sa.select(events.user_id, events.item_id, events.value, events.timestamp, events.type, events.event_id,
                          events.received_at).order_by(events.id)
        with self.engine.connect() as connection:
            erased = set(connection.execute(sa.select(schema.erasures.c.subject)).scalars())
            result = connection.execution_options(stream_results=True, yield_per=chunk_size).execute(query)
            for rows in result.partitions(chunk_size):
                frame = pd.DataFrame(rows, columns=EXPORT_COLUMNS)
                if erased:
                    frame = frame[~frame[USER_ID].isin(self._among(erased, set(frame[USER_ID])))]
                frame[VALUE] = frame[VALUE].fillna(1.0)
                frame[TIMESTAMP] = frame[TIMESTAMP].astype("int64")
                yield frame

    def write_batch(self, batch_id: str, chunk: pd.DataFrame) -> None:
        """Append one chunk of a batch of lists (``user_id, item_id, score, rank``) in one transaction, leaving out
        erased users (a model trained before their erasure still knows them)."""
        rows = chunk[[USER_ID, ITEM_ID, "score", "rank"]].assign(batch_id=batch_id, created_at=time.time())
        rows[USER_ID] = rows[USER_ID].astype(str).map(self.user_key)
        with write_transaction(self.engine) as connection:
            rows = rows[~rows[USER_ID].isin(self._erased(connection, set(rows[USER_ID])))]
            if len(rows):
                connection.execute(schema.batch_recommendations.insert(), rows.to_dict("records"))

    # -- attributes ---------------------------------------------------------------------------------------------
    def put_user(self, user_id: str, attributes: Mapping[str, Any]) -> None:
        """Store the user's attributes; a ConflictError, storing nothing, for an erased user."""
        self._upsert(schema.users, "user_id", self.user_key(user_id), attributes)

    def put_item(self, item_id: str, attributes: Mapping[str, Any]) -> None:
        self._upsert(schema.items, "item_id", str(item_id), attributes)

    # -- exposures ----------------------------------------------------------------------------------------------
    def log_exposure(self, user_id: str, model_version: str, item_ids: Sequence[str]) -> str:
        """Record one impression now; returns its id (the service batches them with `log_exposures`)."""
        exposure = exposure_row(user_id, model_version, item_ids)
        self.log_exposures([exposure])
        return exposure["exposure_id"]

    def log_exposures(self, rows: Sequence[dict[str, Any]]) -> None:
        """Record impressions made by `exposure_row` in one transaction; those of erased users are not stored."""
        if not rows:
            return
        stored = [row | {"user_id": self.user_key(row["user_id"])} for row in rows]
        with write_transaction(self.engine) as connection:
            erased = self._erased(connection, {row["user_id"] for row in stored})
            stored = [row for row in stored if row["user_id"] not in erased]
            if stored:
                connection.execute(schema.exposures.insert(), stored)

    def served_scores(self, low: float, high: float) -> pd.DataFrame:
        """One row per shown position of the exposures created in [low, high) that kept their scores (those logged
        before revision 0007, or with a score that was not finite, did not): ``created_at``, ``model_version``,
        ``fallback`` (the exposure's context says so: the cold-start fallback or the holdout answered) and
        ``score``."""
        exposures = schema.exposures.c
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(exposures.created_at, exposures.model_version,
                                                sa.cast(exposures.context, sa.Text), sa.cast(exposures.scores, sa.Text))
                                      .where((exposures.created_at >= low) & (exposures.created_at < high)
                                             & exposures.scores.is_not(None))).all()
        lists = pd.DataFrame(list(map(tuple, rows)), columns=["created_at", "model_version", "context", "scores"])
        contexts, scores = (json.loads("[" + ",".join(lists[name]) + "]") for name in ("context", "scores"))
        lengths = np.fromiter(map(len, scores), dtype=np.int64, count=len(scores))
        fallback = pd.Series(contexts, dtype=object).str.get("fallback").eq(True).to_numpy(bool)
        return pd.DataFrame({"created_at": np.repeat(lists["created_at"].to_numpy(float), lengths),
                             "model_version": np.repeat(lists["model_version"].to_numpy(object), lengths),
                             "fallback": np.repeat(fallback, lengths),
                             "score": np.fromiter(chain.from_iterable(scores), dtype=float, count=int(lengths.sum()))})

    # -- keys -----------------------------------------------------------------------------------------------------
    def create_key(self, scopes: Iterable[str]) -> str:
        """A new API key with ``scopes`` (stored as a SHA-256 hash: the key is shown once, here)."""
        scopes = sorted(set(scopes))
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ConfigError(f"Unknown or missing scope(s) {unknown or scopes}; valid scopes: {', '.join(SCOPES)}.")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with write_transaction(self.engine) as connection:
            connection.execute(schema.api_keys.insert().values(
                key_id=key_id, key_hash=_digest(secret), scopes=",".join(scopes), created_at=time.time(),
                revoked=False))
        return f"{KEY_PREFIX}_{key_id}_{secret}"

    def list_keys(self) -> pd.DataFrame:
        """Every key's id, scopes, creation time and state (never the secret, which is not stored)."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(schema.api_keys.c.key_id, schema.api_keys.c.scopes,
                                                schema.api_keys.c.created_at, schema.api_keys.c.revoked)
                                      .order_by(schema.api_keys.c.created_at)).all()
        frame = pd.DataFrame(rows, columns=["key_id", "scopes", "created_at", "revoked"])
        frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s", utc=True).dt.floor("s")
        return frame

    def revoke_key(self, key_id: str) -> None:
        """Revoke a key by its id (the part after ``tlr_``); audited. Services stop accepting it within 30 s."""
        with write_transaction(self.engine) as connection:
            found = connection.execute(schema.api_keys.update().where(schema.api_keys.c.key_id == key_id)
                                       .values(revoked=True)).rowcount
            if not found:
                raise ConfigError(f"No API key with id {key_id!r}: `tailored keys list` shows them.")
            connection.execute(schema.audit_log.insert().values(action="revoke_key", subject=key_id, detail={},
                                                                at=time.time()))

    def key_scopes(self, key: str) -> frozenset[str] | None:
        """The scopes of a valid, unrevoked key; None otherwise (compared in constant time)."""
        prefix, _, rest = key.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != KEY_PREFIX or not key_id or not secret:
            return None
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(schema.api_keys.c.key_hash, schema.api_keys.c.scopes).where(
                (schema.api_keys.c.key_id == key_id) & ~schema.api_keys.c.revoked)).first()
        if row is None or not hmac.compare_digest(row[0], _digest(secret)):
            return None
        return frozenset(row[1].split(","))

    # -- privacy --------------------------------------------------------------------------------------------------
    def erase_user(self, user_id: str) -> dict[str, int]:
        """Delete the user's events, attributes, exposures and exclusion from experiments, remember the erasure (so
        later events and exports never bring the user back) and audit it without the id; returns the rows deleted
        per table. Writes that check for erasures are ordered against it (`write_transaction`): none stores the
        user's data after it."""
        stored, subject = self.user_key(user_id), self.subject(user_id)
        with write_transaction(self.engine, exclusive=True) as connection:
            deleted = {table.name: connection.execute(table.delete().where(table.c.user_id == stored)).rowcount
                       for table in (schema.events, schema.users, schema.exposures, schema.experiment_exclusions)}
            connection.execute(self._insert_ignoring(schema.erasures, "subject"),
                               [{"subject": subject, "erased_at": time.time()}])
            connection.execute(schema.audit_log.insert().values(action="erase_user", subject=subject, detail=deleted,
                                                                at=time.time()))
        return deleted

    def prune(self, retention_days: float) -> dict[str, int]:
        """Data retention: delete events (by their timestamp) and exposures older than ``retention_days``; audited."""
        if not retention_days > 0:  # NaN too
            raise ConfigError(f"The retention window must be positive, got {retention_days} days.")
        cutoff = time.time() - retention_days * 86_400
        with write_transaction(self.engine) as connection:
            deleted = {table.name: connection.execute(table.delete().where(column < cutoff)).rowcount
                       for table, column in ((schema.events, schema.events.c.timestamp),
                                             (schema.exposures, schema.exposures.c.created_at))}
            connection.execute(schema.audit_log.insert().values(action="retention", subject=f"{retention_days:g} days",
                                                                detail=deleted, at=time.time()))
        return deleted

    # -- helpers --------------------------------------------------------------------------------------------------
    def _insert_ignoring(self, table: sa.Table, key: str) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing(index_elements=[key])

    def _upsert(self, table: sa.Table, key: str, value: str, attributes: Mapping[str, Any]) -> None:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        values = {key: value, "attributes": json.loads(json.dumps(dict(attributes), default=str)),
                  "updated_at": time.time()}
        statement = dialect.insert(table).values(**values)
        statement = statement.on_conflict_do_update(index_elements=[key], set_={"attributes": values["attributes"],
                                                                                "updated_at": values["updated_at"]})
        with write_transaction(self.engine) as connection:
            if table is schema.users and self._erased(connection, {value}):
                raise ConflictError("This user was erased: their attributes are not stored (an erasure is final).")
            connection.execute(statement)


class _StoredMeanwhile(Exception):
    """Another transaction stored one of the event ids being inserted after they were read: decide again."""


def _same_event(new: dict[str, Any], kept: dict[str, Any]) -> bool:
    """Whether a resent event matches the one kept; a resend without a timestamp matches any stored time."""
    same = all(new[name] == kept[name] for name in ("user_id", "item_id", "type", "value", "exposure_id"))
    return same and (not (new["timestamp_given"] and kept["timestamp_given"]) or new["timestamp"] == kept["timestamp"])


def exposure_row(user_id: str, model_version: str, item_ids: Sequence[str], propensities: Sequence[float] | None = None,
                 policy: str = "greedy", context: Mapping[str, Any] | None = None,
                 exposure_id: str | None = None, experiment: str | None = None, arm: str | None = None,
                 latency_ms: float | None = None, scores: Sequence[float] | None = None) -> dict[str, Any]:
    """An impression made now, ready for `EventStore.log_exposures`: the items in display order, each position's
    propensity (the probability that ``policy`` put that item there; 1 everywhere by default: a greedy list), the
    spec of the policy, the request's context, the exposure's id (a new one unless given: the service draws the
    list's random numbers from it), the experiment and arm the user is in (None: none) and the time taken to serve
    it, and each position's ``scores`` as served (None: not kept; the daily ``psi_scores`` reads them). A propensity
    out of (0, 1], or not one per item, is a DataError; so are scores that are not one finite number per item."""
    items = list(map(str, item_ids))
    shown = [1.0] * len(items) if propensities is None else [float(each) for each in propensities]
    if len(shown) != len(items) or not all(0.0 < each <= 1.0 for each in shown):
        raise DataError(f"Exposure propensities {shown} must be one per item ({len(items)} items), each in (0, 1]: "
                        "pass the slate's own propensities.")
    served = None if scores is None else np.asarray(scores, dtype=object)
    if served is not None and not (served.shape == (len(items),) and all(
            isinstance(each, int | float | np.integer | np.floating) and not isinstance(each, bool | np.bool_)
            and np.isfinite(each) for each in served)):
        raise DataError(f"Exposure scores {list(scores)!r} must be one finite number per item ({len(items)} items): "
                        "pass the list's scores as served, or scores=None when one is missing or not finite.")
    return {"exposure_id": uuid.uuid4().hex if exposure_id is None else str(exposure_id), "user_id": str(user_id),
            "model_version": model_version, "items": items, "created_at": time.time(), "policy": policy,
            "propensities": shown, "context": json.loads(json.dumps(dict(context or {}), default=str)),
            "experiment": experiment, "arm": arm, "latency_ms": latency_ms,
            "scores": None if served is None else [float(each) for each in served]}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return sa.engine.make_url(url).render_as_string(hide_password=True) if "://" in url else url
