"""Writers racing each other and erasures, in threads and in two processes, on SQLite and PostgreSQL: the database
decides, so no event of an erased user survives and no two processes acknowledge different payloads for one id."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from tailored.errors import ConflictError
from tailored.store import EventStore, schema
from tailored.store.database import Event

REPOSITORY = Path(__file__).resolve().parents[2]
VICTIMS = [f"victim-{number}" for number in range(20)]


def append_stream(url: str, batches: int) -> None:
    """``batches`` small batches, each with one event of every victim and one of a bystander."""
    store = EventStore(url)
    for batch in range(batches):
        store.append_events([Event(f"{user}-{batch}", user, "i1", "view") for user in [*VICTIMS, "bystander"]])
    store.engine.dispose()


def erase_while_appending(url: str, appender: threading.Thread | subprocess.Popen) -> EventStore:
    """Erase every victim, one by one at random moments, while ``appender`` (started) stores their events."""
    store, rng = EventStore(url), random.Random(0)
    while store.count_events() == 0:
        time.sleep(0.001)
    for user in VICTIMS:
        store.erase_user(user)
        time.sleep(rng.uniform(0, 0.01))
    appender.join() if isinstance(appender, threading.Thread) else appender.wait(timeout=120)
    return store


def stored_users(store: EventStore) -> set[str]:
    with store.engine.connect() as connection:
        return set(connection.execute(sa.select(schema.events.c.user_id).distinct()).scalars())


def test_an_erasure_racing_appends_in_another_thread_leaves_nothing_behind(database_url) -> None:
    EventStore(database_url).engine.dispose()  # created and migrated before the race
    appender = threading.Thread(target=append_stream, args=(database_url, 300))
    appender.start()
    store = erase_while_appending(database_url, appender)
    assert stored_users(store) == {"bystander"}
    assert all(store.is_erased(user) for user in VICTIMS)


def test_an_erasure_racing_appends_in_another_process_leaves_nothing_behind(database_url) -> None:
    EventStore(database_url).engine.dispose()
    appender = subprocess.Popen([sys.executable, "-c", "import sys; from tests.store.test_races import append_stream; "
                                 "append_stream(sys.argv[1], 300)", database_url], cwd=REPOSITORY)
    store = erase_while_appending(database_url, appender)
    assert appender.returncode == 0
    assert stored_users(store) == {"bystander"}
