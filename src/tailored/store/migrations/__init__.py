"""The store's schema migrations: Alembic revisions (``versions/``) applied when a store opens, in code (no
``alembic.ini``), on the store's own connection and under its write lock.

A database made before Alembic recorded its version in a ``schema_version`` table (migration n there is revision
``000n`` here): it is stamped with that revision, the table dropped, and the revisions it lacks applied."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from tailored.store.schema import write_transaction

LEGACY_TABLE = "schema_version"
VERSION_TABLE = "alembic_version"


def _config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration for the revisions shipped in this package, running on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The latest revision: the one every store is brought to."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None, "the store ships at least one revision"
    return revision


def revision(connection: sa.Connection) -> str | None:
    """The revision the database is at (None: not made by Alembic, or empty)."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(sa.text(f"select version_num from {VERSION_TABLE}")).scalar()


def migrate(engine: sa.Engine) -> str:
    """Bring the database to `head` in one exclusive write transaction (processes opening a database at once
    migrate it once: the second finds it migrated); returns the revision reached."""
    latest = head()
    with engine.connect() as connection:
        if revision(connection) == latest:
            return latest
    with write_transaction(engine, exclusive=True) as connection:
        _adopt_legacy(connection)
        command.upgrade(_config(connection), "head")
    return latest


def _adopt_legacy(connection: sa.Connection) -> None:
    """Stamp a database of the ``schema_version`` era with its revision and drop that table."""
    if not sa.inspect(connection).has_table(LEGACY_TABLE):
        return
    version = connection.execute(sa.text(f"select max(version) from {LEGACY_TABLE}")).scalar()
    if version:
        command.stamp(_config(connection), f"{version:04d}")
    connection.execute(sa.text(f"drop table {LEGACY_TABLE}"))
