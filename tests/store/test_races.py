"""Writers racing each other and erasures, in threads and in two processes, on SQLite and PostgreSQL: the database
decides, so no event of an erased user survives and no two writers acknowledge different payloads for one id."""

from __future__ import annotations

import json
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
    thread = isinstance(appender, threading.Thread)
    while store.count_events() == 0:
        assert appender.is_alive() if thread else appender.poll() is None, "the appender ended before storing anything"
        time.sleep(0.001)
    for user in VICTIMS:
        store.erase_user(user)
        time.sleep(rng.uniform(0, 0.01))
    if thread:
        appender.join()
    else:
        appender.wait(timeout=120)
    return store


def claim(url: str, user: str, count: int, folder: str | None = None) -> dict[str, bool]:
    """Send ``count`` events, one per transaction, with the ids every claimant uses and a payload of this ``user``;
    whether each was accepted (else refused as a conflict). With ``folder``, first say ready there and wait for go."""
    store = EventStore(url)
    if folder is not None:
        (Path(folder) / f"ready-{user}").touch()
        while not (Path(folder) / "go").exists():
            time.sleep(0.001)
    accepted = {}
    for number in range(count):
        try:
            accepted[f"race-{number}"] = store.append_events([Event(f"race-{number}", user, "i1", "view")]) == (1, 0)
        except ConflictError:
            accepted[f"race-{number}"] = False
    store.engine.dispose()
    return accepted


def assert_one_winner_each(url: str, claims: dict[str, dict[str, bool]]) -> None:
    """Each id acknowledged to exactly one claimant, whose payload is the one stored."""
    store = EventStore(url)
    with store.engine.connect() as connection:
        stored = dict(connection.execute(sa.select(schema.events.c.event_id, schema.events.c.user_id)).all())
    store.engine.dispose()
    for event_id, owner in stored.items():
        winners = [user for user, accepted in claims.items() if accepted[event_id]]
        assert winners == [owner], f"{event_id}: acknowledged to {winners}, stored for {owner}"
    assert len(stored) == len(next(iter(claims.values())))


def test_two_writers_in_threads_with_one_event_id_and_different_payloads_get_one_acknowledgement(database_url) -> None:
    EventStore(database_url).engine.dispose()
    claims: dict[str, dict[str, bool]] = {}
    threads = [threading.Thread(target=lambda user=user: claims.setdefault(user, claim(database_url, user, 200)))
               for user in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert_one_winner_each(database_url, claims)


def test_two_processes_with_one_event_id_and_different_payloads_get_one_acknowledgement(database_url, tmp_path) -> None:
    EventStore(database_url).engine.dispose()
    code = ("import json, sys; from tests.store.test_races import claim; "
            "print(json.dumps(claim(*sys.argv[1:3], 200, sys.argv[3])))")
    processes = {user: subprocess.Popen([sys.executable, "-c", code, database_url, user, str(tmp_path)], cwd=REPOSITORY,
                                        stdout=subprocess.PIPE, text=True) for user in ("left", "right")}
    while not all((tmp_path / f"ready-{user}").exists() for user in processes):
        assert all(process.poll() is None for process in processes.values()), "a claimant died before the race"
        time.sleep(0.01)
    (tmp_path / "go").touch()
    claims = {user: json.loads(process.communicate(timeout=120)[0]) for user, process in processes.items()}
    assert_one_winner_each(database_url, claims)


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
    code = "import sys; from tests.store.test_races import append_stream; append_stream(sys.argv[1], 300)"
    appender = subprocess.Popen([sys.executable, "-c", code, database_url], cwd=REPOSITORY)
    store = erase_while_appending(database_url, appender)
    assert appender.returncode == 0
    assert stored_users(store) == {"bystander"}
