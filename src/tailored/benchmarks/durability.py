"""`tailored benchmark durability`: ``kill -9`` the server while clients send events, many times over, then check
the store: every event that got a 2xx is there (none lost) and none is there twice.

Each trial starts `tailored serve` on the same database, first re-sends what the previous trial left unanswered
plus a sample of what it acknowledged (as a client retrying would: those must come back as duplicates, never as
new rows), then lets ``clients`` threads post batches of 1-50 new events until the process is killed with
SIGKILL at a random moment. A kill tests a process crash (the operating system still holds written pages); the
store's ``synchronous=FULL`` is what covers a power loss, which no test here can simulate.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tailored.benchmarks.service import running_service
from tailored.store import EventStore, schema


def durability_benchmark(model_dir: Path, db_url: str | None = None, trials: int = 100, clients: int = 4,
                         seed: int = 0, progress: Any = None) -> dict[str, Any]:
    import httpx

    rng = random.Random(seed)
    acknowledged: set[str] = set()
    unanswered: list[dict[str, Any]] = []
    committed_unanswered = 0
    with tempfile.TemporaryDirectory() as folder:
        url = db_url or f"sqlite:///{Path(folder) / 'durability.db'}"
        store = EventStore(url)
        headers = {"Authorization": f"Bearer {store.create_key(['events:write'])}"}
        for trial in range(trials):
            with running_service(model_dir, url) as (base, server):
                committed_unanswered += len(store.stored_event_ids(event["event_id"] for event in unanswered))
                again = rng.sample(sorted(acknowledged), min(20, len(acknowledged)))
                resend = unanswered + [_event(event_id) for event_id in again]
                unanswered = []
                for start in range(0, len(resend), 500):
                    batch = resend[start:start + 500]
                    answer = httpx.post(f"{base}/v1/events", json={"events": batch}, headers=headers, timeout=60)
                    answer.raise_for_status()
                    acknowledged |= {event["event_id"] for event in batch}
                clients_of_trial = _Clients(base, headers, seed, trial, acknowledged, unanswered)
                threads = [threading.Thread(target=clients_of_trial.post, args=(number,)) for number in range(clients)]
                for thread in threads:
                    thread.start()
                time.sleep(rng.uniform(0.2, 1.5))
                server.kill()
                server.wait(timeout=30)
                clients_of_trial.stop.set()
                for thread in threads:
                    thread.join(timeout=30)
            if progress is not None:
                progress(trial + 1, trials, len(acknowledged))
        with store.engine.connect() as connection:
            rows = int(connection.execute(sa.select(sa.func.count()).select_from(schema.events)).scalar())
            distinct = int(connection.execute(sa.select(sa.func.count(sa.distinct(schema.events.c.event_id)))).scalar())
        stored = store.stored_event_ids(acknowledged)
        store.engine.dispose()
    return {"trials": trials, "events_acknowledged": len(acknowledged), "rows_stored": rows,
            "acknowledged_but_lost": len(acknowledged) - len(stored), "stored_twice": rows - distinct,
            "committed_before_the_answer_was_sent": committed_unanswered}


@dataclass
class _Clients:
    """The clients of one trial: each posts batches of new events until its request fails (the server was killed) or
    ``stop`` is set; the acknowledged ids and the unanswered events are recorded under a lock."""

    base: str
    headers: dict[str, str]
    seed: int
    trial: int
    acknowledged: set[str]
    unanswered: list[dict[str, Any]]
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, number: int) -> None:
        import httpx

        local = random.Random(self.seed * 1_000_003 + self.trial * 101 + number)
        with httpx.Client(base_url=self.base, headers=self.headers, timeout=10) as http:
            sent = 0
            while not self.stop.is_set():
                batch = [_event(f"t{self.trial}-c{number}-{sent + n}") for n in range(local.randint(1, 50))]
                sent += len(batch)
                try:
                    ok = http.post("/v1/events", json={"events": batch}).status_code == 200
                except httpx.TransportError:
                    ok = False
                with self.lock:
                    if ok:
                        self.acknowledged.update(event["event_id"] for event in batch)
                    else:
                        self.unanswered.extend(batch)
                if not ok:
                    return


def _event(event_id: str) -> dict[str, Any]:
    """The same id always carries the same payload, so a retry is a duplicate, never a conflict."""
    return {"event_id": event_id, "user_id": f"u{zlib.crc32(event_id.encode()) % 97}",
            "item_id": f"i{len(event_id) % 13}", "type": "view", "timestamp": 1_700_000_000.0}
