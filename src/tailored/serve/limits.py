"""The service's front door, as plain ASGI middleware (no per-request wrapping objects): the body size limit, load
shedding and the per-route metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tailored.serve.metrics import Metrics

RETRY_AFTER_SECONDS = 1
UNSHED = ("/healthz", "/readyz", "/metrics")
"""Probes and the scraper are answered even under overload."""


def unavailable(detail: str) -> JSONResponse:
    """503 with ``Retry-After``: the client should come back in a second."""
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class LoopLag:
    """How late the event loop runs a timer (sampled every ``every`` seconds, smoothed): requests answered on the
    loop never pile up as "in flight", they wait in front of it, and its lateness is that wait. The smoothing
    (weight ``weight`` per sample) lets one long callback -- validating a batch of 10,000 events -- pass, while a
    loop that stays late is caught within a few samples."""

    def __init__(self, every: float = 0.01, weight: float = 0.3) -> None:
        self.every, self.weight, self.seconds = every, weight, 0.0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._watch())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _watch(self) -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(self.every)
            late = max(time.perf_counter() - began - self.every, 0.0)
            self.seconds += self.weight * (late - self.seconds)


class Guard:
    """Refuses bodies over ``max_body_bytes`` (413; a body without ``Content-Length`` gets 411) and, while
    ``max_in_flight`` requests are in progress or the event loop runs more than ``max_lag`` seconds late, sheds
    the next request at once with 503 and ``Retry-After`` rather than queueing it; times every answered request by
    route template (never by id)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_in_flight: int, max_lag: float, lag: LoopLag,
                 metrics: Metrics) -> None:
        self.app, self.max_body_bytes, self.max_in_flight, self.metrics = app, max_body_bytes, max_in_flight, metrics
        self.max_lag, self.lag = max_lag, lag
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        status: list[int] = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        self.in_flight += 1
        start = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.in_flight -= 1
            route: Any = scope.get("route")
            self.metrics.observe(scope["method"], getattr(route, "path", "unmatched"), status[0], time.perf_counter() - start)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None and scope["method"] in ("POST", "PUT", "PATCH") and b"transfer-encoding" in headers:
            return JSONResponse({"detail": "Send the body with a Content-Length header."}, status_code=411)
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return JSONResponse({"detail": f"Request body over {self.max_body_bytes} bytes."}, status_code=413)
        if (self.in_flight >= self.max_in_flight or self.lag.seconds > self.max_lag) and scope["path"] not in UNSHED:
            self.metrics.shed.inc()
            return unavailable(f"Overloaded: {self.in_flight} requests in progress, queue of "
                               f"{self.lag.seconds * 1000:.0f} ms; retry shortly.")
        return None
