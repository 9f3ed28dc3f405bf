"""`tailored benchmark service`: the running service measured from outside, as a client sees it.

Starts `tailored serve` in its own process on a free port (a fresh SQLite database unless ``--db``), creates a key,
then, from this process, one phase after the other:

- **batch ingestion**: ``events`` events in batches of ``batch_size`` over 8 connections; events per second durably
  committed (acknowledged after the commit; the database is counted afterwards: nothing may be missing);
- **single events**: one event per POST at ``event_rate`` per second for ``phase_seconds`` (group commit across
  requests);
- **one connection**: top-10 lists one request at a time (100 per second): the latency of a lone client;
- **load**: top-10 lists for random known users at ``rate`` per second for ``seconds`` over ``connections``
  connections, open loop (`tailored.benchmarks.load`), with the server's resident memory sampled every 5 s;
- **overload**: twice ``rate`` for ``phase_seconds``: what is not served must be refused quickly with ``Retry-After``;
- **ANN recall**: recall@10 of the vector index as the service builds it, against exact scoring.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from tailored.benchmarks.load import request_bytes, run_load
from tailored.errors import ConfigError
from tailored.policies import parse_policy
from tailored.registry.model_dir import load_model
from tailored.store import EventStore


@contextmanager
def running_service(model_dir: Path, db_url: str, policy: str | None = None
                    ) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`tailored serve` in a child process (serving ``policy`` when given, else ``TAILORED_POLICY`` or greedy);
    yields its base URL, once ready, and the process."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "tailored", "serve", "--model-dir", str(model_dir), "--db", db_url, "--port",
               str(port), "--no-access-log"]  # stderr is read only if the service fails to start
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=os.environ | ({} if policy is None else {"TAILORED_POLICY": policy}))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            if server.poll() is not None:
                raise ConfigError(f"The service did not start: {server.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.time() > deadline:
                raise ConfigError("The service did not become ready within 120 s.")
            time.sleep(0.2)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=30)


def service_benchmark(model_dir: Path, db_url: str | None = None, events: int = 100_000, batch_size: int = 1_000,
                      rate: float = 1_000.0, seconds: float = 60.0, connections: int = 32, event_rate: float = 600.0,
                      phase_seconds: float = 10.0, ann_users: int = 1_000, say: Callable[[str], None] = print,
                      policy: str = "greedy") -> dict[str, Any]:
    """Every phase against one `tailored serve` process serving ``policy``; figures as the clients measure them,
    and the server's CPU time per request of the load phase (`server_cpu_seconds`: a figure that other work on a
    shared machine does not inflate as much as the wall-clock latencies)."""
    parse_policy(policy)  # a bad spec is refused before anything starts
    with tempfile.TemporaryDirectory() as folder:
        url = db_url or f"sqlite:///{Path(folder) / 'benchmark.db'}"
        store = EventStore(url)
        key, before = store.create_key(["recommend", "events:write"]), store.count_events()
        model = load_model(model_dir)
        users = model.users_.external_ids.astype(str)
        figures: dict[str, Any] = {"users": len(users), "items": len(model.items_), "policy": policy}
        with running_service(model_dir, url, policy) as (base, server):
            say("batch ingestion")
            figures |= asyncio.run(_ingest(base, key, users, events, batch_size, 8))
            figures["events_committed"] = store.count_events() - before
            say(f"single-event POSTs at {event_rate:g}/s")
            single = run_load(base, _single_events(base, key, users), event_rate, phase_seconds, 16)
            figures |= single.summary("single_event")
            say("one connection")
            lists = _recommendation_requests(base, key, users)
            figures |= run_load(base, lists, 100, phase_seconds, 1).summary("one_connection")
            say(f"recommendations at {rate:g}/s for {seconds:g} s")
            memory, cpu = _MemorySampler(server.pid), server_cpu_seconds(server.pid)
            load = run_load(base, lists, rate, seconds, connections)
            cpu = server_cpu_seconds(server.pid) - cpu
            summary = load.summary("load")
            figures |= summary | memory.stop() | {
                "load_server_cpu_ms_per_request": cpu / max(int(summary["load_ok"]), 1) * 1000}
            say(f"overload: {2 * rate:g}/s for {phase_seconds:g} s")
            overload = run_load(base, lists, 2 * rate, phase_seconds, 4 * connections)
            figures |= overload.summary("overload") | {"overload_retry_after_missing": overload.retry_after_missing}
        store.engine.dispose()
    say("ANN recall against exact scoring")
    return figures | _served_recall(model, ann_users)


def _recommendation_requests(base: str, key: str, users: np.ndarray, count: int = 100_000) -> list[bytes]:
    """Top-10 requests for random known users."""
    picked = users[np.random.default_rng(1).integers(len(users), size=count)]
    return [request_bytes(base, "GET", f"/v1/users/{quote(user, safe='')}/recommendations?k=10", key)
            for user in picked]


def _single_events(base: str, key: str, users: np.ndarray) -> Callable[[int], bytes]:
    """Request number -> a POST of one new event."""
    run = np.random.default_rng().integers(1 << 62)

    def make(number: int) -> bytes:
        event = {"event_id": f"single-{run}-{number}", "user_id": str(users[number % len(users)]), "item_id": "i1",
                 "type": "click"}
        return request_bytes(base, "POST", "/v1/events", key, json.dumps({"events": [event]}).encode())

    return make


class _MemorySampler:
    """The server's resident memory every ``every`` seconds while the load runs."""

    def __init__(self, pid: int, every: float = 5.0) -> None:
        self.pid, self.samples, self.stopping = pid, [_rss_mib(pid)], threading.Event()
        self.thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self.thread.start()

    def _run(self, every: float) -> None:
        while not self.stopping.wait(every):
            self.samples.append(_rss_mib(self.pid))

    def stop(self) -> dict[str, float]:
        self.stopping.set()
        self.thread.join()
        samples = np.array(self.samples)
        return {"rss_first_mib": float(samples[0]), "rss_last_mib": float(samples[-1]),
                "rss_spread_percent": float((samples.max() - samples.min()) / samples[0] * 100)}


def server_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process ``pid`` has used so far (Linux ``/proc``; NaN
    elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _served_recall(model: Any, users: int) -> dict[str, Any]:
    """Recall@10 of the index the service builds (its ef_search) against exact scoring, for random users."""
    from tailored.rank.candidates import ANN_MIN_ITEMS, recall_at
    from tailored.serve.settings import ServiceSettings

    if not getattr(model.scorer, "inner_product", False) or len(model.items_) < ANN_MIN_ITEMS:
        return {"ann": "none: exact scoring"}
    ef = ServiceSettings.from_env(None).ann_ef_search
    indexed = model.with_vector_index(ef_search=ef)
    vectors = model.scorer.user_factors_[np.random.default_rng(2).integers(len(model.users_), size=users)]
    return {"ann_ef_search": ef, "ann_recall_at_10": recall_at(indexed.vector_index_, vectors, 10)}


async def _ingest(base: str, key: str, users: np.ndarray, events: int, batch_size: int, clients: int) -> dict[str, Any]:
    import httpx

    rng = np.random.default_rng(0)
    run = rng.integers(1 << 62)
    batches = [[{"event_id": f"{run}-{start + n}", "user_id": str(users[rng.integers(len(users))]),
                 "item_id": f"i{n % 997}", "type": "view"} for n in range(min(batch_size, events - start))]
               for start in range(0, events, batch_size)]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for each in batches:
        queue.put_nowait(each)
    accepted = retries = 0

    async def worker(client: httpx.AsyncClient) -> None:
        """Posts batches; a 503 or 429 is retried after its Retry-After, as a well-behaved client does."""
        nonlocal accepted, retries
        while not queue.empty():
            batch = queue.get_nowait()
            answer = await client.post("/v1/events", json={"events": batch})
            while answer.status_code in (429, 503):
                retries += 1
                await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
                answer = await client.post("/v1/events", json={"events": batch})
            answer.raise_for_status()
            accepted += answer.json()["accepted"]

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    elapsed = time.perf_counter() - start
    return {"events_sent": events, "events_accepted": accepted, "ingest_retries": retries, "ingest_seconds": elapsed,
            "events_per_second": accepted / elapsed}


def ann_benchmark(n_items: int = 100_000, factors: int = 64, queries: int = 1_000, seed: int = 0,
                  ef_values: tuple[int, ...] = (64, 128, 256)) -> list[dict[str, Any]]:
    """Recall@10 of the HNSW index against exact scoring and milliseconds per single-user query, on synthetic factor
    vectors: ``clustered`` (items and users around 100 taste centres, as factor models learn them) and ``isotropic``
    (independent Gaussian vectors, the hardest case)."""
    from tailored.rank.candidates import VectorIndex, recall_at

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(100, factors))
    data = {
        "clustered": (centres[rng.integers(100, size=n_items)] + 0.7 * rng.normal(size=(n_items, factors)),
                      centres[rng.integers(100, size=queries)] + 0.7 * rng.normal(size=(queries, factors))),
        "isotropic": (rng.normal(size=(n_items, factors)), rng.normal(size=(queries, factors))),
    }
    rows = []
    for name, (items, users) in data.items():
        users = users.astype(np.float32)
        exact = VectorIndex(items, kind="exact")
        began = time.perf_counter()
        graph = VectorIndex(items, kind="hnsw")
        build = time.perf_counter() - began
        for ef in ef_values:
            graph._graph.hnsw.efSearch = ef
            rows.append({"vectors": name, "ef_search": ef, "recall@10": recall_at(graph, users, 10),
                         "hnsw_ms": _per_query_ms(graph, users), "exact_ms": _per_query_ms(exact, users[:200]),
                         "build_seconds": build})
    return rows


def _per_query_ms(index: Any, users: np.ndarray) -> float:
    began = time.perf_counter()
    for user in users:
        index.search(user, 10)
    return (time.perf_counter() - began) / len(users) * 1000
