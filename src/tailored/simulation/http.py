"""The HTTP driver: the world's traffic played against a running ``tailored serve``.

The service must serve a model trained on the world's history (`tailored simulate --write-world DIR` writes it,
with the trained items' attributes, for ``tailored model train``). Lists are asked in blocks of ``block`` requests
sent at once by a bounded pool of ``threads`` (``GET /v1/users/{user}/recommendations?k=K``); the world answers
each block with clicks and purchases, posted in one ``POST /v1/events`` naming each list's ``exposure_id`` (so the
service's policy learns from them before the next block); items arriving in the world are ``PUT /v1/items/{id}``
with their attributes before the first block after their arrival. The service's policy is fixed at its start
(``--policy``): one run per service.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tailored.errors import ConfigError, TailoredError
from tailored.policies.base import Policy
from tailored.simulation.run import PolicyRun, Progress, Traffic, feedback_log, outcome
from tailored.simulation.world import World

if TYPE_CHECKING:
    import httpx

BLOCK = 64
"""Requests per block: sent together, answered by the world together, their events posted in one batch."""
THREADS = 8
EVENTS_PER_POST = 1_000
RETRIED = (429, 503)
"""Answers of an overloaded service: the request is sent again after its ``Retry-After``."""
MAX_WAIT = 1.0


class ServiceError(TailoredError):
    """The service refused a request or could not be reached."""


def _client(base_url: str, key: str, threads: int, timeout: float) -> httpx.Client:
    try:
        import httpx
    except ImportError as error:
        raise ConfigError("The HTTP driver (--serve) needs httpx: pip install httpx.") from error
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    return httpx.Client(base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, limits=limits,
                        timeout=timeout)


@dataclass
class HttpDriver:
    """Plays a world's traffic against the service at ``url`` with the API key ``key`` (scopes ``recommend``,
    ``events:write`` and, for new items, ``admin``)."""

    url: str
    key: str
    threads: int = THREADS
    block: int = BLOCK
    timeout: float = 30.0
    name: str = "http"

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"--serve {self.url!r} is not an http(s) URL (e.g. http://127.0.0.1:8000).")
        if self.threads < 1 or self.block < 1:
            raise ConfigError(f"threads={self.threads} and block={self.block} must be at least 1.")

    def run(self, world: World, traffic: Traffic, spec: str | Policy, oracle: np.ndarray, keep_log: bool = False,
            progress: Progress | None = None) -> PolicyRun:
        """Runs the service's policy through ``traffic``; ``spec`` (a spec string, '' for any) must name the policy
        the service serves."""
        if not isinstance(spec, str):
            raise ConfigError("The HTTP driver runs the service's own policy: give its spec, not a policy object.")
        k, n, started = traffic.k, len(traffic), time.perf_counter()
        shown, propensities = np.full((n, k), -1, np.int64), np.zeros((n, k))
        clicks, purchases, revenue = np.zeros((n, k), bool), np.zeros((n, k), bool), np.zeros((n, k))
        expected, exposures = np.zeros(n), np.empty(n, dtype=object)
        served, version = "", ""
        waves, arrived = world.arrivals(), 0
        edges = sorted({0, n, *range(0, n, self.block), *np.searchsorted(traffic.moments, [m for m, _ in waves])})
        with _client(self.url, self.key, self.threads, self.timeout) as client, \
                ThreadPoolExecutor(self.threads) as pool:
            for start, stop in zip(edges[:-1], edges[1:], strict=True):
                while arrived < len(waves) and waves[arrived][0] <= traffic.moments[start]:
                    self._put_items(client, pool, world, waves[arrived][1])
                    arrived += 1
                users = world.user_ids[traffic.users[start:stop]]
                answers = list(pool.map(lambda user: self._recommend(client, user, k), users))
                for row, answer in enumerate(answers, start):
                    listed = answer["items"][:k]
                    indices = world.item_index(np.array([item["item_id"] for item in listed], dtype=object))
                    if (indices < 0).any():
                        raise ConfigError(f"The service at {self.url} recommends items this world does not hold "
                                          f"(e.g. {listed[int(np.argmin(indices))]['item_id']!r}): serve a model "
                                          "trained on the same world's history (--write-world).")
                    shown[row, : len(listed)] = indices
                    propensities[row, : len(listed)] = [item["propensity"] for item in listed]
                    exposures[row] = answer["exposure_id"]
                served, version = answers[-1]["policy"], answers[-1]["model_version"]
                if spec and served.partition(":")[0] != spec.partition(":")[0]:
                    raise ConfigError(f"The service at {self.url} serves {served!r}, not {spec!r}: start it with "
                                      f"--policy {spec}, or leave --policy out.")
                rows = slice(start, stop)
                answer = outcome(world, traffic, rows, shown[rows])
                clicks[rows], purchases[rows], revenue[rows], expected[rows] = (answer.clicks, answer.purchases,
                                                                                answer.revenue, answer.expected)
                self._post_events(client, world, traffic, rows, shown[rows], exposures[rows], answer.clicks,
                                  answer.purchases)
                if progress is not None:
                    progress(stop - start)
        new_shown = (np.where(shown >= 0, world.new[np.maximum(shown, 0)], False)).sum(axis=1)
        run = PolicyRun(served, clicks.sum(axis=1), purchases.sum(axis=1), revenue.sum(axis=1), expected, oracle,
                        new_shown, k, time.perf_counter() - started)
        if keep_log:
            logged = Traffic(traffic.users, traffic.moments, exposures, traffic.click_draws, traffic.purchase_draws)
            run.log = feedback_log(world, logged, shown, propensities, clicks, purchases, revenue, served, version)
        return run

    def _recommend(self, client: httpx.Client, user: str, k: int) -> dict[str, Any]:
        return self._answer(client, "GET", f"/v1/users/{user}/recommendations", params={"k": k})

    def _put_items(self, client: httpx.Client, pool: ThreadPoolExecutor, world: World, items: np.ndarray) -> None:
        rows = world.item_table(items).to_dict("records")
        list(pool.map(lambda row: self._answer(client, "PUT", f"/v1/items/{row.pop('item_id')}", json=row), rows))

    def _post_events(self, client: httpx.Client, world: World, traffic: Traffic, rows: slice, shown: np.ndarray,
                     exposures: np.ndarray, clicks: np.ndarray, purchases: np.ndarray) -> None:
        events = [*self._events(world, traffic, rows, shown, exposures, clicks, "click"),
                  *self._events(world, traffic, rows, shown, exposures, purchases, "purchase")]
        for start in range(0, len(events), EVENTS_PER_POST):
            self._answer(client, "POST", "/v1/events", json={"events": events[start : start + EVENTS_PER_POST]})

    @staticmethod
    def _events(world: World, traffic: Traffic, rows: slice, shown: np.ndarray, exposures: np.ndarray,
                happened: np.ndarray, kind: str) -> Iterable[dict[str, Any]]:
        lists, positions = np.nonzero(happened)
        users = world.user_ids[traffic.users[rows][lists]]
        items = shown[lists, positions]
        for exposure, user, item, position in zip(exposures[lists], users, items, positions, strict=True):
            event = {"event_id": f"{exposure}-{position + 1}-{kind}", "user_id": user,
                     "item_id": world.item_ids[item], "type": kind, "exposure_id": exposure}
            if kind == "purchase":
                event["value"] = float(world.prices[item])
            yield event

    def _answer(self, client: httpx.Client, method: str, path: str, **arguments: Any) -> dict[str, Any]:
        """The JSON answer of one request (empty for 204), asked again after ``Retry-After`` while the service is
        overloaded (429, 503) for up to ``timeout`` seconds; a `ServiceError` naming the request otherwise."""
        import httpx

        deadline = time.monotonic() + self.timeout
        while True:
            try:
                response = client.request(method, path, **arguments)
            except httpx.HTTPError as error:
                raise ServiceError(f"{method} {self.url}{path} failed: {error}. Is `tailored serve` running there?"
                                   ) from error
            if response.status_code not in RETRIED or time.monotonic() > deadline:
                break
            time.sleep(min(_seconds(response.headers.get("Retry-After")), MAX_WAIT))
        if response.status_code >= 400:
            raise ServiceError(f"{method} {self.url}{path} answered {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else {}


def _seconds(retry_after: str | None) -> float:
    """A ``Retry-After`` header's seconds (a short pause when absent or a date)."""
    try:
        return max(float(retry_after or ""), 0.0)
    except ValueError:
        return 0.05
