"""The store's schema migrations: Alembic revisions (``versions/``) applied when a store opens, in code (no
``alembic.ini``), on the store's own connection and under its write lock.

A database made before Alembic recorded its version in a ``schema_version`` table (migration n there is revision
``000n`` here): it is stamped with that revision, the table dropped, and the revisions it lacks applied."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from tailored.errors import ConfigError
from tailored.store.schema import write_transaction

if TYPE_CHECKING:
    from alembic.config import Config

LEGACY_TABLE = "schema_version"
VERSION_TABLE = "alembic_version"
LOCATION = Path(__file__).parent


def _config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration for the revisions shipped in this package, running on ``connection``."""
    from alembic.config import Config  # imported here: only a store that migrates pays for Alembic (~0.1-0.3 s)

    config = Config()
    config.set_main_option("script_location", str(LOCATION).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The latest revision, the one every store is brought to: the highest ``NNNN`` of ``versions/NNNN_*.py`` (each
    revision's id is its file's prefix; a test checks that this is Alembic's head)."""
    return max(path.name.partition("_")[0] for path in (LOCATION / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


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
        found = revision(connection)
    if found == latest:
        return latest
    if found is not None and found > latest:
        raise ConfigError(f"The database is at schema revision {found}, made by a newer tailored than this one (which "
                          f"knows revisions up to {latest}): upgrade tailored, or open a backup of the database.")
    from alembic import command

    with write_transaction(engine, exclusive=True) as connection:
        _adopt_legacy(connection)
        command.upgrade(_config(connection), "head")
    return latest


def _adopt_legacy(connection: sa.Connection) -> None:
    """Stamp a database of the ``schema_version`` era with its revision and drop that table."""
    if not sa.inspect(connection).has_table(LEGACY_TABLE):
        return
    from alembic import command

    version = connection.execute(sa.text(f"select max(version) from {LEGACY_TABLE}")).scalar()
    if version:
        command.stamp(_config(connection), f"{version:04d}")
    connection.execute(sa.text(f"drop table {LEGACY_TABLE}"))
