"""The service under hostile conditions, over real HTTP: every route locked without its key and scope, fuzzing from
the OpenAPI schema, overload shedding, a database that goes away and comes back, SIGTERM while requests are in
flight."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from tailored.benchmarks.service import running_service
from tailored.serve import ServiceSettings, create_app
from tailored.store import EventStore
from tests.serve.test_service import auth, counts, serving

SCOPES = ("recommend", "events:write", "admin")


def keys_for(url: str) -> dict[str, str]:
    store = EventStore(url)
    keys = {scope: store.create_key([scope]) for scope in SCOPES} | {"all": store.create_key(SCOPES)}
    store.engine.dispose()
    return keys


def test_every_route_but_the_probes_needs_a_key_and_its_scope(model_dir, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    keys = keys_for(url)
    with serving(create_app(ServiceSettings(model_dir, url))) as base:
        schema = httpx.get(f"{base}/openapi.json").json()
        routes = [(method.upper(), path) for path, operations in schema["paths"].items() for method in operations]
        assert len(routes) >= 12
        for method, path in routes:
            target = base + path.replace("{user_id}", "u1").replace("{item_id}", "i1")
            event = {"event_id": "s1", "user_id": "u1", "item_id": "i1", "type": "view"}
            body = {"events": [event]} if "events" in path else {}
            credentials = [("none", None), ("bad", "tlr_0_x")] + [(scope, keys[scope]) for scope in SCOPES]
            answers = {name: httpx.request(method, target, json=body, headers=auth(key) if key else {}).status_code
                       for name, key in credentials}
            if path in ("/healthz", "/readyz"):
                assert set(answers.values()) == {200}, (method, path, answers)
                continue
            assert answers["none"] == answers["bad"] == 401, (method, path, answers)
            allowed = [scope for scope in SCOPES if answers[scope] not in (401, 403)]
            refused = sorted(answers[scope] for scope in SCOPES if scope not in allowed)
            assert len(allowed) == 1 and refused == [403, 403], (method, path, answers)
        httpx.get(f"{base}/v1/users/secret-user-42/recommendations", headers=auth(keys["recommend"]))
        metrics = httpx.get(f"{base}/metrics", headers=auth(keys["admin"])).text
        assert "tailored_requests_total" in metrics and "secret-user-42" not in metrics and '"i1"' not in metrics


def test_schemathesis_fuzzing_finds_no_server_error(model_dir, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    keys = keys_for(url)
    with serving(create_app(ServiceSettings(model_dir, url))) as base:
        run = subprocess.run([str(Path(sys.executable).parent / "st"), "run", f"{base}/openapi.json", "--checks",
                              "not_a_server_error", "--header", f"Authorization: Bearer {keys['all']}",
                              "--max-examples", "25", "--seed", "1", "--no-color"],
                             capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0 and "No issues found" in run.stdout, run.stdout[-4000:]


def test_overload_is_shed_with_503_and_retry_after(model_dir, tmp_path) -> None:
    """One request waits on the database (a test transaction holds SQLite's write lock); with room for one request
    in flight, the next is refused at once with Retry-After; the first then completes and is stored."""
    path = tmp_path / "db.sqlite"
    url = f"sqlite:///{path}"
    keys = keys_for(url)
    with serving(create_app(ServiceSettings(model_dir, url, max_in_flight=1))) as base:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        waiting: dict[str, httpx.Response] = {}
        event = {"events": [{"event_id": "held", "user_id": "u1", "item_id": "i1", "type": "view"}]}
        thread = threading.Thread(target=lambda: waiting.setdefault("answer", httpx.post(
            f"{base}/v1/events", json=event, headers=auth(keys["events:write"]), timeout=60)))
        thread.start()
        time.sleep(1.0)
        began = time.perf_counter()
        shed = httpx.get(f"{base}/v1/users/u1/recommendations", headers=auth(keys["recommend"]))
        assert shed.status_code == 503 and shed.headers["Retry-After"] == "1" and "Overloaded" in shed.json()["detail"]
        assert time.perf_counter() - began < 1.0
        assert httpx.get(f"{base}/healthz").status_code == 200  # probes are never shed
        blocker.execute("ROLLBACK")
        thread.join(timeout=60)
        assert counts(waiting["answer"]) == {"accepted": 1, "duplicates": 0}
        assert httpx.get(f"{base}/v1/users/u1/recommendations", headers=auth(keys["recommend"])).status_code == 200


def test_rate_limit_answers_429_with_retry_after(model_dir, tmp_path) -> None:
    """Each key has its own limit; past it, Retry-After says when the oldest request of the last minute leaves it."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    keys = keys_for(url)
    with serving(create_app(ServiceSettings(model_dir, url, rate_limit_per_minute=3))) as base:
        start = time.monotonic()
        codes = [httpx.get(f"{base}/v1/trending", headers=auth(keys["recommend"])) for _ in range(4)]
        elapsed = time.monotonic() - start
        other = httpx.get(f"{base}/v1/trending", headers=auth(keys["all"]))
    assert [answer.status_code for answer in codes] == [200, 200, 200, 429] and other.status_code == 200
    assert 60 - elapsed - 1 <= int(codes[-1].headers["Retry-After"]) <= 60


class Proxy:
    """A TCP relay to the database that can be cut (every connection dropped, new ones refused) and restored, or
    frozen (connections stay open, nothing goes through: a hung server)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.connections, self.frozen = target, [], False
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.listener: socket.socket | None = None

    def start(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=True)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def cut(self) -> None:
        """Shut down (which, unlike close, wakes the threads blocked on these sockets), then close."""
        assert self.listener is not None
        for each in [self.listener, *self.connections]:
            try:
                each.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            each.close()
        self.connections = []

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.frozen:
                    time.sleep(0.05)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for each in (source, sink):
                try:
                    each.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_a_database_outage_answers_503_and_recovers_without_restart(model_dir, postgres_url, caplog) -> None:
    address = httpx.URL(postgres_url.replace("postgresql://", "http://"))
    proxy = Proxy((address.host, address.port))
    proxy.start()
    url = postgres_url.replace(f"{address.host}:{address.port}", f"127.0.0.1:{proxy.port}")
    keys = keys_for(url)
    event = lambda name: {"events": [{"event_id": name, "user_id": "u1", "item_id": "i1", "type": "view"}]}  # noqa: E731
    caplog.set_level("INFO")
    with serving(create_app(ServiceSettings(model_dir, url))) as base:
        writer, reader = auth(keys["events:write"]), auth(keys["recommend"])
        assert httpx.post(f"{base}/v1/events", json=event("before"), headers=writer).status_code == 200
        assert httpx.get(f"{base}/v1/users/u1/recommendations", headers=reader).status_code == 200
        proxy.cut()
        down = httpx.post(f"{base}/v1/events", json=event("during"), headers=writer, timeout=60)
        assert down.status_code == 503 and down.headers["Retry-After"] == "1", down.text
        assert "database is unavailable" in down.json()["detail"] and "nothing was stored" in down.json()["detail"]
        assert httpx.get(f"{base}/readyz").status_code == 503
        served = httpx.get(f"{base}/v1/users/u1/recommendations", headers=reader)  # the model needs no database
        unknown = httpx.get(f"{base}/v1/users/private-person-42/recommendations", headers=reader)
        assert unknown.status_code == 200  # its stored attributes are out of reach: the plain cold-start answer
        assert served.status_code == 200 and len(served.json()["items"]) == 10
        proxy.start()
        deadline = time.time() + 30
        while httpx.get(f"{base}/readyz").status_code != 200 and time.time() < deadline:
            time.sleep(0.2)
        after = httpx.post(f"{base}/v1/events", json=event("after"), headers=writer)
        assert counts(after) == {"accepted": 1, "duplicates": 0}
        store = EventStore(url)
        deadline, logged = time.time() + 10, 0
        while not logged and time.time() < deadline:  # the impression shown during the outage is written once it ends
            time.sleep(0.2)
            with store.engine.connect() as connection:
                logged = connection.execute(sa.text("select count(*) from exposures where exposure_id = :e"),
                                            {"e": served.json()["exposure_id"]}).scalar()
        assert logged == 1
    with store.engine.connect() as connection:
        assert sorted(connection.execute(sa.text("select event_id from events")).scalars()) == ["after", "before"]
    ours = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("tailored"))
    assert "database unavailable on POST /v1/events" in ours and "private-person-42" not in ours, ours
    store.engine.dispose()
    proxy.cut()


def test_sigterm_finishes_requests_in_flight_and_flushes_impressions(model_dir, tmp_path) -> None:
    path = tmp_path / "db.sqlite"
    url = f"sqlite:///{path}"
    keys = keys_for(url)
    with running_service(model_dir, url) as (base, server):
        listed = httpx.get(f"{base}/v1/users/u1/recommendations", headers=auth(keys["recommend"]))
        exposure = listed.json()["exposure_id"]
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the next POST waits for the database
        answers: list[httpx.Response] = []
        event = {"events": [{"event_id": "in-flight", "user_id": "u1", "item_id": "i2", "type": "cart"}]}
        thread = threading.Thread(target=lambda: answers.append(httpx.post(
            f"{base}/v1/events", json=event, headers=auth(keys["events:write"]), timeout=60)))
        thread.start()
        time.sleep(1.0)
        server.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        blocker.execute("ROLLBACK")
        thread.join(timeout=60)
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    assert answers and answers[0].status_code == 200 and counts(answers[0]) == {"accepted": 1, "duplicates": 0}
    with sqlite3.connect(path) as connection:
        assert connection.execute("select count(*) from events where event_id = 'in-flight'").fetchone() == (1,)
        logged = connection.execute("select count(*) from exposures where exposure_id = ?", (exposure,))
        assert logged.fetchone() == (1,)
