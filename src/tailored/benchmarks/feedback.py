"""`tailored benchmark feedback`: online learning measured from outside, as clients see it.

Starts `tailored serve` (`benchmarks.service.running_service`) on one model and one database, twice:

- **greedy**: top-10 lists at ``rate`` per second for ``seconds`` (open loop, `benchmarks.load`): the baseline;
- **thompson**: the same lists at the same rate (what exploring and learning each impression cost a request), then
  ``lists`` lists fetched by ``clients`` concurrent clients and a click on every item shown, sent back with the
  list's ``exposure_id`` in batches of ``batch_size`` over ``clients`` connections: the events per second stored,
  attributed and learnt (each POST is answered once its events are committed, attributed and learnt). ``GET
  /v1/policy`` (admin key) before and after says how many rewards the policy learnt: it must equal the clicks
  credited by the answers. A request answered 503 (shed under load) is resent after a pause; ``lists_resent`` and
  ``posts_resent`` count them.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from tailored.benchmarks.load import run_load
from tailored.benchmarks.service import _recommendation_requests, running_service, server_cpu_seconds
from tailored.registry.model_dir import load_model
from tailored.store import EventStore
from tailored.store.attribution import CREDITED

RESENDS = 5
"""How many times a request answered 503 is sent again (the benchmark measures a loaded, shared machine too)."""
RESEND_PAUSE_SECONDS = 0.2


def feedback_benchmark(model_dir: Path, db_url: str | None = None, lists: int = 2_000, batch_size: int = 100,
                       clients: int = 8, rate: float = 200.0, seconds: float = 10.0, connections: int = 8,
                       say: Callable[[str], None] = print) -> dict[str, Any]:
    """Latency of lists under greedy and thompson, then the clicks on ``lists`` thompson lists posted back;
    figures as the clients measure them (no assertion on time)."""
    with tempfile.TemporaryDirectory() as folder:
        url = db_url or f"sqlite:///{Path(folder) / 'benchmark.db'}"
        store = EventStore(url)
        key = store.create_key(["recommend", "events:write", "admin"])
        users = load_model(model_dir).users_.external_ids.astype(str)
        figures: dict[str, Any] = {"users": len(users), "lists": lists, "batch_size": batch_size, "clients": clients}
        for policy in ("greedy", "thompson"):
            with running_service(model_dir, url, policy) as (base, server):
                say(f"{policy}: lists at {rate:g}/s for {seconds:g} s")
                requests = _recommendation_requests(base, key, users)  # the same users, in the same order
                figures |= run_load(base, requests, rate, seconds, connections).summary(f"{policy}_lists")
                if policy == "thompson":
                    say(f"thompson: {lists} lists, then a click on every item shown, {batch_size} per POST")
                    figures |= asyncio.run(_clicks(base, key, users, lists, batch_size, clients, server.pid))
        store.engine.dispose()
    return figures


async def _clicks(base: str, key: str, users: np.ndarray, lists: int, batch_size: int, clients: int,
                  server: int) -> dict[str, Any]:
    """Fetch ``lists`` lists, click every item shown (with the list's exposure id), post the clicks in batches;
    events per second attributed and learnt, the CPU time the ``server`` process spent on them (what the clients
    on the same machine do not inflate), and the policy's learnt rewards before and after."""
    import httpx

    picked = users[np.random.default_rng(3).integers(len(users), size=lists)]
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120,
                                 limits=httpx.Limits(max_connections=clients)) as client:
        before = (await client.get("/v1/policy")).raise_for_status().json()
        began = time.perf_counter()
        shown, lists_resent = await _each(clients, [
            partial(client.get, f"/v1/users/{quote(user, safe='')}/recommendations", params={"k": 10})
            for user in picked])
        fetched = time.perf_counter() - began
        run = np.random.default_rng().integers(1 << 62)
        clicks = [{"event_id": f"click-{run}-{number}-{row['item_id']}", "user_id": body["user_id"],
                   "item_id": row["item_id"], "type": "click", "exposure_id": body["exposure_id"]}
                  for number, answer in enumerate(shown) for body in [answer.raise_for_status().json()]
                  for row in body["items"]]
        batches = [clicks[start:start + batch_size] for start in range(0, len(clicks), batch_size)]
        began, cpu = time.perf_counter(), server_cpu_seconds(server)
        answers, posts_resent = await _each(clients, [partial(client.post, "/v1/events", json={"events": batch})
                                                      for batch in batches])
        elapsed, cpu = time.perf_counter() - began, server_cpu_seconds(server) - cpu
        after = (await client.get("/v1/policy")).raise_for_status().json()
    by = Counter(each["by"] for answer in answers for each in answer.raise_for_status().json()["attribution"])
    credited = sum(by[name] for name in CREDITED)
    learnt = after["rewards"] - before["rewards"]
    return {"lists_fetched_per_second": lists / fetched, "clicks_posted": len(clicks),
            "clicks_seconds": elapsed, "clicks_per_second": len(clicks) / elapsed,
            "clicks_server_cpu_seconds": cpu,
            "clicks_per_server_cpu_second": len(clicks) / cpu if cpu > 0 else float("nan"),
            **{f"clicks_by_{name}": by[name] for name in ("exposure_id", "window", "duplicate", "none")},
            "clicks_credited_per_second": credited / elapsed, "rewards_learnt": learnt,
            "learnt_equals_credited": learnt == credited, "lists_resent": lists_resent, "posts_resent": posts_resent}


async def _each(limit: int, calls: list[Callable[[], Awaitable[Any]]]) -> tuple[list[Any], int]:
    """Send ``calls`` (functions making one request), at most ``limit`` at a time; the answers in order and how many
    requests were sent again: one answered 503 (shed, or ingestion stalled) is resent after a pause, at most
    `RESENDS` times (event ids are idempotent: a resent event is stored and learnt once)."""
    gate, resent = asyncio.Semaphore(limit), 0

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        nonlocal resent
        async with gate:
            answer = await call()
            for _ in range(RESENDS):
                if answer.status_code != 503:
                    break
                resent += 1
                await asyncio.sleep(RESEND_PAUSE_SECONDS)
                answer = await call()
            return answer

    answers = await asyncio.gather(*(one(call) for call in calls))
    return answers, resent
