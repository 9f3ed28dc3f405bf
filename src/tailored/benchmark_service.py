"""`tailored benchmark-service`: the running service measured from outside, as a client sees it.

Starts `tailored serve` in its own process on a free port (a fresh SQLite database unless ``--db``), creates a key,
then, from this process:

- **ingestion**: posts ``events`` events in batches of ``batch_size`` (each a new ``event_id``) over ``clients``
  concurrent connections and reports events per second durably committed (the server acknowledges after the
  commit; the database is counted at the end to check that nothing was lost);
- **recommendations**: GETs top-10 lists for random known users for ``seconds`` over ``clients`` connections and
  reports requests per second and latency percentiles (p50, p99) as the load generator measures them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from tailored.errors import ConfigError
from tailored.registry.model_dir import load_model
from tailored.store import EventStore


@contextmanager
def running_service(model_dir: Path, db_url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`tailored serve` in a child process; yields its base URL, once ready, and the process."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "tailored", "serve", "--model-dir", str(model_dir), "--db", db_url, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
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
                      seconds: float = 20.0, clients: int = 8) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        url = db_url or f"sqlite:///{Path(folder) / 'benchmark.db'}"
        store = EventStore(url)
        key, before = store.create_key(["recommend", "events:write"]), store.count_events()
        users = load_model(model_dir).users_.external_ids.astype(str)
        with running_service(model_dir, url) as (base, _):
            ingestion = asyncio.run(_ingest(base, key, users, events, batch_size, clients))
            serving = asyncio.run(_recommend(base, key, users, seconds, clients))
        committed = store.count_events() - before
        store.engine.dispose()
    return {**ingestion, "events_committed": committed, **serving}


async def _ingest(base: str, key: str, users: np.ndarray, events: int, batch_size: int, clients: int) -> dict[str, Any]:
    import httpx

    rng = np.random.default_rng(0)
    run = rng.integers(1 << 62)
    batches = [[{"event_id": f"{run}-{start + n}", "user_id": str(users[rng.integers(len(users))]), "item_id": f"i{n % 997}",
                 "type": "view"} for n in range(min(batch_size, events - start))] for start in range(0, events, batch_size)]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for each in batches:
        queue.put_nowait(each)
    accepted = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        while not queue.empty():
            answer = await client.post("/v1/events", json={"events": queue.get_nowait()})
            answer.raise_for_status()
            accepted += answer.json()["accepted"]

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    elapsed = time.perf_counter() - start
    return {"events_sent": events, "events_accepted": accepted, "ingest_seconds": elapsed, "events_per_second": accepted / elapsed}


async def _recommend(base: str, key: str, users: np.ndarray, seconds: float, clients: int) -> dict[str, Any]:
    import httpx

    rng = np.random.default_rng(1)
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            user = users[rng.integers(len(users))]
            began = time.perf_counter()
            answer = await client.get(f"/v1/users/{user}/recommendations", params={"k": 10})
            latencies.append(time.perf_counter() - began)
            errors += answer.status_code != 200

    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    elapsed = time.perf_counter() - start
    milliseconds = np.array(latencies) * 1000
    return {"requests": len(latencies), "errors": errors, "requests_per_second": len(latencies) / elapsed,
            "p50_ms": float(np.percentile(milliseconds, 50)), "p99_ms": float(np.percentile(milliseconds, 99))}


def ann_benchmark(n_items: int = 100_000, factors: int = 64, queries: int = 1_000, seed: int = 0,
                  ef_values: tuple[int, ...] = (64, 128, 256)) -> list[dict[str, Any]]:
    """Recall@10 of the HNSW index against exact scoring and milliseconds per single-user query, on synthetic factor
    vectors: ``clustered`` (items and users around 100 taste centres, as factor models learn them) and ``isotropic``
    (independent Gaussian vectors, the hardest case)."""
    from tailored.retrieval import VectorIndex, recall_at

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
