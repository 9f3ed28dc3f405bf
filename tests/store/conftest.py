"""Every store test runs on SQLite and on PostgreSQL. PostgreSQL comes from ``TAILORED_TEST_POSTGRES_URL`` (CI
starts a server with `.ci/postgres`); each test gets a fresh database. Without the URL those cases are skipped, or
fail when ``TAILORED_REQUIRE_POSTGRES=1``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
        return
    server = os.environ.get("TAILORED_TEST_POSTGRES_URL")
    if not server:
        if os.environ.get("TAILORED_REQUIRE_POSTGRES") == "1":
            pytest.fail("TAILORED_REQUIRE_POSTGRES=1 but TAILORED_TEST_POSTGRES_URL is not set (start one with .ci/postgres)")
        pytest.skip("no PostgreSQL server: set TAILORED_TEST_POSTGRES_URL (e.g. $(.ci/postgres))")
    name = f"tailored_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield server.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
