"""A fresh SQLite event store per test, and a helper to log exposures at given times."""

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


def shown(store: EventStore, exposure_id: str, user: str, items: Sequence[str], at: float,
          **options: Any) -> None:
    """Log one exposure of ``items`` to ``user`` created at unix time ``at``."""
    store.log_exposures([exposure_row(user, "m1", items, exposure_id=exposure_id, **options) | {"created_at": at}])
