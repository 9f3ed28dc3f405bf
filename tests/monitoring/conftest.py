"""A fresh event store per test (SQLite; ``events`` in the store tests also on PostgreSQL when a server is given, as
tests/store does), and a helper to log exposures at given times."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from tailored.store import EventStore
from tailored.store.database import exposure_row


@pytest.fixture
def events(tmp_path) -> Iterator[EventStore]:
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    yield store
    store.engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_events(request: pytest.FixtureRequest, tmp_path) -> Iterator[EventStore]:
    """The store on SQLite and on a fresh PostgreSQL database (skipped without TAILORED_TEST_POSTGRES_URL)."""
    sqlite = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(sqlite if request.param == "sqlite" else request.getfixturevalue("postgres_url"))
    yield store
    store.engine.dispose()


def shown(store: EventStore, exposure_id: str, user: str, items: Sequence[str], at: float,
          **options: Any) -> None:
    """Log one exposure of ``items`` to ``user`` created at unix time ``at``."""
    store.log_exposures([exposure_row(user, "m1", items, exposure_id=exposure_id, **options) | {"created_at": at}])
