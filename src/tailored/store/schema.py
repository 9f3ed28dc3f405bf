"""Tables of the event store (SQLAlchemy Core) and their migrations, applied in order and recorded in
``schema_version`` so that an existing database is brought up to date rather than recreated."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

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
    sa.Column("erased_at", sa.Float, nullable=False),
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
schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))


def _create_v1(connection: sa.Connection) -> None:
    metadata.create_all(connection, tables=[events, users, items, exposures, api_keys, erasures, audit_log])


def _batch_v2(connection: sa.Connection) -> None:
    metadata.create_all(connection, tables=[batch_recommendations])


MIGRATIONS: list[Callable[[sa.Connection], None]] = [_create_v1, _batch_v2]
"""Migration n (1-based) brings a database at version n - 1 to version n; append, never edit."""


def migrate(engine: sa.Engine) -> int:
    """Apply the migrations the database lacks, each in its own transaction; returns the version reached."""
    metadata.create_all(engine, tables=[schema_version])
    with engine.begin() as connection:
        current = connection.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
    for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
        with engine.begin() as connection:
            step(connection)
            connection.execute(schema_version.insert().values(version=version))
    return len(MIGRATIONS)
