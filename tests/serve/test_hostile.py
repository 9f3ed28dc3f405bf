"""Stalls and hostile clients against a real `tailored serve` process, over real HTTP and raw sockets, on a real
SQLite file: a write lock longer than the commit timeout, slow bodies, huge headers, floods of invalid keys, a
database that stops answering, malformed numbers."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tailored.serve.limits import DatabaseCalls
from tailored.serve.security import KeyCache

from tests.serve.test_robustness import Proxy, keys_for
from tests.serve.test_service import auth, counts

PRIVATE = ("private-user-7", "private-item-9", "private-event-3")
"""Ids that must never reach the server's log."""


@contextmanager
def tailored_serve(model_dir: Path, url: str, log: Path,
                   **settings: object) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`tailored serve` in its own process with ``TAILORED_<SETTING>`` variables; stderr goes to ``log``; yields the
    base URL, once ready, and the process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {f"TAILORED_{name.upper()}": str(value) for name, value in settings.items()}
    with log.open("w") as sink:
        server = subprocess.Popen([sys.executable, "-m", "tailored", "serve", "--model-dir", str(model_dir),
                                   "--db", url, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=sink, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert server.poll() is None and time.time() < deadline, log.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)


def events(*event_ids: str) -> dict[str, list[dict[str, str]]]:
    return {"events": [{"event_id": event_id, "user_id": PRIVATE[0], "item_id": "i1", "type": "view"}
                       for event_id in event_ids]}


def wait_for(condition, seconds: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_a_write_lock_longer_than_the_commit_timeout_is_survived_and_answered_truthfully(model_dir, tmp_path) -> None:
    """Another connection holds SQLite's write lock past the commit timeout: the waiting POST is told its events are
    not confirmed (and they are stored once the lock goes), /readyz turns red, new POSTs are refused at once with
    nothing stored, and ingestion recovers without a restart; the log holds no id and no traceback."""
    path, log = tmp_path / "db.sqlite", tmp_path / "serve.log"
    url = f"sqlite:///{path}"
    keys = keys_for(url)
    writer = auth(keys["events:write"])
    with tailored_serve(model_dir, url, log, commit_timeout_seconds=1) as (base, _):
        assert httpx.get(f"{base}/readyz").json()["ingestion"] is True
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        held = httpx.post(f"{base}/v1/events", json=events(PRIVATE[2]), headers=writer, timeout=30)
        assert held.status_code == 503 and held.headers["Retry-After"] == "1", held.text
        assert held.json()["detail"] == ("The commit was not confirmed within 1 s (the database is slow or locked); "
                                         "the events may still be stored: resend them with the same event ids, "
                                         "duplicates are ignored.")
        wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 503)
        assert httpx.get(f"{base}/readyz").json()["ingestion"] is False
        refused = httpx.post(f"{base}/v1/events", json=events("refused"), headers=writer, timeout=30)
        assert refused.status_code == 503 and "stalled" in refused.json()["detail"]
        assert "nothing was stored by this request" in refused.json()["detail"]
        time.sleep(1.5)  # the lock outlives the commit timeout by more than its length
        blocker.execute("ROLLBACK")
        blocker.close()
        wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200)
        resent = httpx.post(f"{base}/v1/events", json=events(PRIVATE[2], "refused", "after"), headers=writer)
        assert counts(resent) == {"accepted": 2, "duplicates": 1}  # the held event was stored, the refused one not
    text = log.read_text()
    assert "Traceback" not in text and not any(private in text for private in PRIVATE), text
    with sqlite3.connect(path) as connection:
        stored = sorted(row[0] for row in connection.execute("select event_id from events"))
    assert stored == ["after", PRIVATE[2], "refused"]


def slow_post(port: int, key: str | None = None) -> socket.socket:
    """A connection that sends a POST's headers announcing 1,000 bytes of body, then one byte, then nothing."""
    connection = socket.create_connection(("127.0.0.1", port))
    authorization = f"Authorization: Bearer {key}\r\n" if key else ""
    connection.sendall(f"POST /v1/events HTTP/1.1\r\nHost: x\r\n{authorization}Content-Type: application/json\r\n"
                       f"Content-Length: 1000\r\n\r\n{{".encode())
    return connection


def status_of(connection: socket.socket, timeout: float) -> int:
    connection.settimeout(timeout)
    return int(connection.recv(65536).split(b" ", 2)[1])


def test_slow_bodies_without_a_key_take_no_room_and_slow_bodies_with_one_time_out(model_dir, tmp_path) -> None:
    """64 connections without a valid key sending one byte of body are refused at once (401, body unread) and leave
    the in-flight budget to keyed requests; keyed connections that stop sending are answered 408 after the body
    timeout, which frees their room."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    keys = keys_for(url)
    reader, writer = auth(keys["recommend"]), auth(keys["events:write"])
    with tailored_serve(model_dir, url, tmp_path / "serve.log", max_in_flight=4, body_timeout_seconds=2) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        keyless = [slow_post(port, None if n % 2 else "tlr_0123456789abcdef_not-a-secret") for n in range(64)]
        assert [status_of(connection, 5) for connection in keyless] == [401] * 64
        assert httpx.get(f"{base}/v1/users/u1/recommendations", headers=reader).status_code == 200
        assert httpx.post(f"{base}/v1/events", json=events("e1"), headers=writer).status_code == 200
        stalled = [slow_post(port, keys["events:write"]) for _ in range(4)]
        time.sleep(0.5)
        shed = httpx.get(f"{base}/v1/users/u1/recommendations", headers=reader)
        assert shed.status_code == 503 and "Overloaded: 4 requests in progress" in shed.json()["detail"]
        for connection in stalled:
            assert status_of(connection, 10) == 408
        assert httpx.get(f"{base}/v1/users/u1/recommendations", headers=reader).status_code == 200
        for connection in keyless + stalled:
            connection.close()


def resident_mib(process: subprocess.Popen[bytes]) -> float:
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024


def test_huge_headers_get_431_and_made_up_keys_cost_bounded_memory(model_dir, tmp_path) -> None:
    """200 distinct 1 MB Authorization headers took the server from 201 to 392 MiB, never freed: now each gets 431
    and the server grows by little; thousands of made-up keys of the right shape get 401 from a bounded cache."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    keys = keys_for(url)
    with tailored_serve(model_dir, url, tmp_path / "serve.log", max_invalid_keys=100) as (base, server):
        with httpx.Client() as client:
            for n in range(20):  # warm up: allocator pools, the first requests' imports
                client.get(f"{base}/v1/trending", headers=auth(f"tlr_{n:016x}_warm"))
            before = resident_mib(server)
            for n in range(200):
                huge = client.get(f"{base}/v1/trending", headers=auth(f"tlr_{n:016x}_" + "x" * 1_000_000))
                assert huge.status_code == 431 and huge.json()["detail"] == "Request headers over 16384 bytes."
            for n in range(2_000):
                assert client.get(f"{base}/v1/trending", headers=auth(f"tlr_{n:016x}_" + "y" * 200)).status_code == 401
            grown = resident_mib(server) - before
            assert client.get(f"{base}/v1/trending", headers=auth(keys["recommend"])).status_code == 200
    assert grown < 40, f"the server grew by {grown:.0f} MiB"


def test_the_invalid_key_cache_keeps_only_the_most_recent() -> None:
    import asyncio

    looked_up: list[str] = []
    cache = KeyCache(lambda key: looked_up.append(key),  # type: ignore[func-returns-value]
                     DatabaseCalls(5.0), max_invalid=3)
    made_up = [f"tlr_{n:016x}_secret" for n in range(5)]

    async def check(keys: list[str]) -> list[frozenset[str] | None]:
        return [await cache.scopes(key) for key in keys]

    assert asyncio.run(check(made_up + made_up[2:] + ["not-a-key", "tlr_" + "z" * 300])) == [None] * 10
    assert looked_up == made_up and len(cache.invalid) == 3  # the last three were remembered; odd shapes never asked
    asyncio.run(check(made_up[:1]))
    assert looked_up == made_up + made_up[:1]


def test_keys_seen_recently_work_through_a_hung_then_failing_database_and_probes_answer(model_dir, postgres_url,
                                                                                      tmp_path) -> None:
    """PostgreSQL hangs (a relay that stops passing bytes), then refuses connections: a key checked within
    TAILORED_KEY_OUTAGE_SECONDS keeps being served (trained users need no database), past that bound it is refused;
    a key never seen gets 503; /readyz answers 503 within TAILORED_DATABASE_CHECK_SECONDS; all recover after."""
    address = httpx.URL(postgres_url.replace("postgresql://", "http://"))
    proxy = Proxy((address.host, address.port))
    proxy.start()
    url = postgres_url.replace(f"{address.host}:{address.port}", f"127.0.0.1:{proxy.port}")
    keys = keys_for(url)
    reader = auth(keys["recommend"])
    settings = {"key_cache_seconds": 0.5, "key_outage_seconds": 8, "database_check_seconds": 1}
    with tailored_serve(model_dir, url, tmp_path / "serve.log", **settings) as (base, _):
        assert httpx.get(f"{base}/v1/users/u1/recommendations", headers=reader).status_code == 200
        down = time.monotonic()
        proxy.frozen = True
        time.sleep(1)  # the key's cache entry is stale now
        for _ in range(3):
            began = time.monotonic()
            served = httpx.get(f"{base}/v1/users/u1/recommendations", headers=reader, timeout=10)
            assert served.status_code == 200 and time.monotonic() - began < 2.5, served.text
        began = time.monotonic()
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["database"] is False and time.monotonic() - began < 2.5
        unseen = httpx.get(f"{base}/v1/users/u1/recommendations", headers=auth(keys["admin"]), timeout=10)
        assert unseen.status_code == 503 and unseen.json()["detail"] == (
            "The database is unavailable and this key was not checked in the last 8 s; retry shortly.")
        proxy.cut()  # from a hang to refused connections
        assert httpx.get(f"{base}/v1/users/u1/recommendations", headers=reader, timeout=10).status_code == 200
        time.sleep(max(0.0, 8.5 - (time.monotonic() - down)))
        assert httpx.get(f"{base}/v1/users/u1/recommendations", headers=reader, timeout=10).status_code == 503
        proxy.frozen = False
        proxy.start()
        wait_for(lambda: httpx.get(f"{base}/readyz", timeout=10).status_code == 200, 30)
        assert httpx.get(f"{base}/v1/users/u1/recommendations", headers=auth(keys["all"])).status_code == 200
    proxy.cut()


def test_malformed_numbers_and_oversized_inputs_are_refused_naming_the_field(model_dir, tmp_path) -> None:
    url, log = f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "serve.log"
    keys = keys_for(url)
    admin, writer, reader = auth(keys["admin"]), auth(keys["events:write"]), auth(keys["recommend"])
    with tailored_serve(model_dir, url, log) as (base, _):
        huge_k = httpx.get(f"{base}/v1/users/u1/recommendations?k={'9' * 5000}", headers=reader)
        assert huge_k.status_code == 422 and huge_k.json()["detail"][0]["loc"] == ["query", "k"]
        assert httpx.get(f"{base}/v1/users/u1/recommendations?k={'9' * 5000}").status_code == 401
        many = httpx.put(f"{base}/v1/users/u1", json={f"a{n}": n for n in range(201)}, headers=admin)
        assert many.status_code == 422 and "at most 200 items" in many.json()["detail"][0]["msg"]
        assert httpx.put(f"{base}/v1/users/u1", json={f"a{n}": n for n in range(200)}, headers=admin).status_code == 204
        absurd_attribute = httpx.put(f"{base}/v1/users/u1", json={"income": 1e308}, headers=admin)
        assert absurd_attribute.status_code == 422
        assert ["body", "income"] == absurd_attribute.json()["detail"][0]["loc"][:2]
        for field, value, message in [("timestamp", False, "Input should be a valid number"),
                                      ("timestamp", True, "Input should be a valid number"),
                                      ("timestamp", "5", "Input should be a valid number"),
                                      ("value", "5", "Input should be a valid number"),
                                      ("value", True, "Input should be a valid number"),
                                      ("value", 1e308, "Input should be less than or equal to 1000000000"),
                                      ("value", -1e308, "Input should be greater than or equal to -1000000000")]:
            body = {"events": [{"event_id": "e", "user_id": "u1", "item_id": "i1", "type": "view", field: value}]}
            refused = httpx.post(f"{base}/v1/events", json=body, headers=writer)
            kind = refused.json()["detail"][0]["type"]
            assert refused.status_code == 422 and refused.json()["detail"] == [
                {"loc": ["body", "events", 0, field], "msg": message, "type": kind}], (field, value)
        infinite = httpx.post(f"{base}/v1/events", headers=writer | {"Content-Type": "application/json"},
                              content=b'{"events": [{"event_id": "e", "user_id": "u1", "item_id": "i1", "type": "view",'
                                      b' "value": 1e999}]}')
        assert infinite.status_code == 422 and infinite.json()["detail"][0]["msg"] == "Input should be a finite number"
        # counted before the events are validated: 10,001 invalid events get 413, not 422
        too_many = {"events": [{"event_id": f"e{n}", "user_id": "u1", "item_id": "i1", "type": "nonsense"}
                               for n in range(10_001)]}
        refused = httpx.post(f"{base}/v1/events", json=too_many, headers=writer)
        assert refused.status_code == 413
        assert refused.json()["detail"] == "10001 events in one request; at most 10000: split the batch."
        numbers = {"events": [{"event_id": f"e{value}", "user_id": "u1", "item_id": "i1", "type": "rating",
                               "value": value, "timestamp": 1_700_000_000} for value in (5, 4.5, -1e9)]}
        assert counts(httpx.post(f"{base}/v1/events", json=numbers, headers=writer)) == {"accepted": 3, "duplicates": 0}
    text = log.read_text()
    assert "Traceback" not in text, text


def test_a_request_the_fast_lane_declines_is_charged_once(model_dir, tmp_path) -> None:
    """An unknown user goes past the fast lane to FastAPI: with 3 requests a minute, 3 are served, not 1."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    reader = auth(keys_for(url)["recommend"])
    with tailored_serve(model_dir, url, tmp_path / "serve.log", rate_limit_per_minute=3) as (base, _):
        answers = [httpx.get(f"{base}/v1/users/someone-new/recommendations", headers=reader).status_code
                   for _ in range(4)]
    assert answers == [200, 200, 200, 429]


def test_a_database_that_stops_taking_writes_is_answered_503_without_ids_in_the_log(model_dir, postgres_url,
                                                                                      tmp_path) -> None:
    """PostgreSQL turned read-only while the service runs (its connections dropped, the new ones read-only): a POST
    is answered 503 "nothing was stored" (the driver's error is not an OperationalError: it was a 500 whose
    traceback quoted the ids), recommendations go on, and writes resume once the database takes them again."""
    import sqlalchemy as sa

    name = postgres_url.rsplit("/", 1)[1]
    admin = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")

    def read_only(on: bool) -> None:
        with admin.connect() as connection:
            state = "on" if on else "off"
            connection.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {state}'))
            connection.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name "
                                       "AND pid <> pg_backend_pid()"), {"name": name})

    keys = keys_for(postgres_url)
    writer, reader = auth(keys["events:write"]), auth(keys["recommend"])
    log = tmp_path / "serve.log"
    try:
        with tailored_serve(model_dir, postgres_url, log) as (base, _):
            assert httpx.post(f"{base}/v1/events", json=events("before"), headers=writer).status_code == 200
            read_only(True)
            refused = httpx.post(f"{base}/v1/events", json=events(PRIVATE[2]), headers=writer)
            assert refused.status_code == 503, refused.text
            assert refused.json()["detail"] == ("The database is unavailable; nothing was stored by this request. "
                                                "Retry shortly.")
            assert httpx.get(f"{base}/v1/users/u1/recommendations", headers=reader).status_code == 200
            read_only(False)
            wait_for(lambda: httpx.post(f"{base}/v1/events", json=events("after"), headers=writer).status_code == 200)
    finally:
        read_only(False)
        admin.dispose()
    text = log.read_text()
    assert "Traceback" not in text and not any(private in text for private in PRIVATE), text


def test_a_commit_that_fails_at_commit_time_is_answered_as_unconfirmed_not_as_nothing_stored(model_dir, postgres_url,
                                                                                               tmp_path) -> None:
    """A PostgreSQL error raised by COMMIT itself (here a deferred constraint trigger; a connection lost during the
    commit is the same to the client) leaves the outcome unknown: the POST must not say "nothing was stored", the
    writer goes on, and an event that commits is acknowledged. The store raises UnconfirmedCommit there."""
    import sqlalchemy as sa

    from tailored.store import EventStore
    from tailored.store.database import Event
    from tailored.store.schema import UnconfirmedCommit

    admin = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    keys = keys_for(postgres_url)
    with admin.connect() as connection:
        connection.execute(sa.text(
            "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.item_id = 'refused-at-commit' THEN RAISE EXCEPTION 'refused at commit'; END IF; "
            "RETURN NULL; END $$"))
        connection.execute(sa.text("CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON events DEFERRABLE "
                                   "INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()"))
    admin.dispose()
    store = EventStore(postgres_url)
    with pytest.raises(UnconfirmedCommit, match="may or may not be stored"):
        store.append_events([Event("direct", "u1", "refused-at-commit", "view")])
    store.engine.dispose()
    writer = auth(keys["events:write"])
    log = tmp_path / "serve.log"
    with tailored_serve(model_dir, postgres_url, log) as (base, _):
        failing = {"events": [{"event_id": PRIVATE[2], "user_id": PRIVATE[0], "item_id": "refused-at-commit",
                               "type": "view"}]}
        answer = httpx.post(f"{base}/v1/events", json=failing, headers=writer)
        assert answer.status_code == 503 and "may or may not be stored" in answer.json()["detail"], answer.text
        assert "nothing was stored" not in answer.json()["detail"]
        after = httpx.post(f"{base}/v1/events", json=events("after"), headers=writer)
        assert counts(after) == {"accepted": 1, "duplicates": 0}
    text = log.read_text()
    assert "Traceback" not in text and not any(private in text for private in PRIVATE), text
