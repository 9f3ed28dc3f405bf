"""Tables of the event store (SQLAlchemy Core), the engine for a URL and the write transaction. The tables are made
and changed by the Alembic revisions of `tailored.store.migrations`, which must give exactly these declarations (a
test compares them)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import sqlalchemy as sa

from tailored.errors import ConfigError

WRITER = "tailored_writer"
"""Execution option of a write transaction: on SQLite it begins with ``BEGIN IMMEDIATE`` (the write lock first)."""
ERASURE_LOCK = 0x7461696C6F726564  # "tailored": PostgreSQL's advisory lock ordering writes against erasures
SQLITE_BUSY_SECONDS = 30.0
"""How long a SQLite connection waits for another's lock before it fails with "database is locked"."""


class UnconfirmedCommit(Exception):
    """The database failed while committing a write: whether the write is stored is unknown (retrying is safe: every
    write of the store is idempotent). Errors before the commit roll the transaction back: nothing is stored."""


metadata = sa.MetaData()

events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(200), nullable=False, unique=True),
    sa.Column("user_id", sa.String(200), nullable=False, index=True),
    sa.Column("item_id", sa.String(200), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("exposure_id", sa.String(64), nullable=True),  # the list the client says the event answers
)


def _attributes(name: str, key: str) -> sa.Table:
    return sa.Table(name, metadata, sa.Column(key, sa.String(200), primary_key=True),
                    sa.Column("attributes", sa.JSON, nullable=False), sa.Column("updated_at", sa.Float, nullable=False))


users = _attributes("users", "user_id")
items = _attributes("items", "item_id")
exposures = sa.Table(
    "exposures", metadata,
    sa.Column("exposure_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(200), nullable=False, index=True),
    sa.Column("model_version", sa.String(200), nullable=False),
    sa.Column("items", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("policy", sa.String(200), nullable=False),  # the spec of the policy that chose the list
    sa.Column("propensities", sa.JSON, nullable=False),  # per position, as `items`: P(that item there)
    sa.Column("context", sa.JSON, nullable=False),  # the request's context ({} when none)
    sa.Column("experiment", sa.String(100), nullable=True),  # the experiment the user was in, and their arm
    sa.Column("arm", sa.String(100), nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=True),  # from the request's arrival to its answer
    sa.Column("scores", sa.JSON(none_as_null=True), nullable=True),  # per position, as `items`: served (NULL: not kept)
)
api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("key_hash", sa.String(128), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)
erasures = sa.Table(
    "erasures", metadata,
    sa.Column("subject", sa.String(128), primary_key=True),
    sa.Column("erased_at", sa.Float, nullable=False, index=True),  # the services' polls
)
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)
batch_recommendations = sa.Table(
    "batch_recommendations", metadata,
    sa.Column("batch_id", sa.String(64), nullable=False, index=True),
    sa.Column("user_id", sa.String(200), nullable=False),
    sa.Column("item_id", sa.String(200), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
experiments = sa.Table(
    "experiments", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("surface", sa.String(100), nullable=False),
    sa.Column("running_on", sa.String(100), nullable=True, unique=True),  # = surface while running: one per surface
    sa.Column("design", sa.JSON, nullable=False),  # arms, shares, metric, guardrails, minimum users, salt
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("stopped_at", sa.Float, nullable=True),
    sa.Column("stop_reason", sa.String(200), nullable=True),
)
experiment_exclusions = sa.Table(
    "experiment_exclusions", metadata,
    sa.Column("user_id", sa.String(200), primary_key=True),
    sa.Column("excluded_at", sa.Float, nullable=False),
)
daily_metrics = sa.Table(  # aggregates only: no user id, nothing to erase
    "daily_metrics", metadata,
    sa.Column("day", sa.String(10), primary_key=True),  # YYYY-MM-DD (UTC) of the exposures
    sa.Column("metric", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),  # "" overall, "segment" or "category" per group
    sa.Column("key", sa.String(200), primary_key=True),  # the group ("" overall)
    sa.Column("value", sa.Float, nullable=True),  # NULL: not computable that day (e.g. no list shown)
    sa.Column("computed_at", sa.Float, nullable=False),
)
trainings = sa.Table(
    "trainings", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("record", sa.JSON, nullable=False),  # quality, bias, evaluation, diff (monitoring.training)
)
alerts = sa.Table(
    "alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("day", sa.String(10), nullable=False, index=True),
    sa.Column("rule", sa.String(100), nullable=False),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("message", sa.String(500), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
)
store_settings = sa.Table(
    "store_settings", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)
AUDIT_SECRET = "audit_secret"
"""The installation's random key of erasure fingerprints (`store_settings`), made with the database."""
PSEUDONYMS = "pseudonym_check"
"""Whether user ids are pseudonymised (`store_settings`): "" for ids in clear, else a check value of the key."""


def engine_for(url: str) -> sa.Engine:
    """An engine for ``url``; SQLite gets WAL, full fsync and a busy timeout, PostgreSQL the psycopg 3 driver."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith(("sqlite:", "postgresql+")):
        raise ConfigError(f"Unsupported database URL {url!r}: use sqlite:///FILE.db or postgresql://USER@HOST/DB.")
    if url.startswith("sqlite:"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            connection.isolation_level = None  # the driver's own BEGIN skips reads: SQLAlchemy begins (below)
            cursor = connection.cursor()
            _write_ahead_log(cursor)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITER) else "BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _write_ahead_log(cursor: sqlite3.Cursor) -> None:
    """Put the database in WAL mode. SQLite fails this at once, without waiting out the busy timeout, while another
    connection converts the same new file (processes opening a new database together): it is retried as long."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def write_transaction(engine: sa.Engine, exclusive: bool = False) -> Iterator[sa.Connection]:
    """A transaction that writes, ordered against erasures: on SQLite it holds the database's write lock from its
    first statement (``BEGIN IMMEDIATE``: a check and the write it guards see the same data); on PostgreSQL it holds
    an advisory lock, shared by writers and ``exclusive`` for an erasure or a migration, so an erasure waits for the
    writes in flight to commit and the writes after it wait for it (READ COMMITTED then shows them the erasure)."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITER: True})
        transaction = connection.begin()
        try:
            if engine.dialect.name == "postgresql":
                lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
                connection.execute(sa.text(f"select {lock}(:key)"), {"key": ERASURE_LOCK})
            yield connection
        except BaseException:
            with suppress(sa.exc.DBAPIError):  # a connection already lost has rolled back by itself
                transaction.rollback()
            raise
        try:
            transaction.commit()
        except sa.exc.DBAPIError as error:
            raise UnconfirmedCommit(f"The database failed while committing ({type(error).__name__}): the write may "
                                    "or may not be stored.") from error
