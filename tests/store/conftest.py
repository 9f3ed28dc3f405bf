"""Every store test runs on SQLite and on PostgreSQL (a fresh database per test, from the root `postgres_url`)."""

from __future__ import annotations

import pytest

from tailored.store import EventStore


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(database_url):
    """A store factory on the test's database (SQLite file or fresh PostgreSQL database)."""
    opened = []

    def open_store(**options) -> EventStore:
        opened.append(EventStore(database_url, **options))
        return opened[-1]

    yield open_store
    for each in opened:
        each.engine.dispose()
