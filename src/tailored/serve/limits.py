"""The service's front door, as plain ASGI middleware (no per-request wrapping objects): the body size limit, the key
check, load shedding, the body read under a deadline and the per-route metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from fastapi import FastAPI
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tailored.serve.metrics import Metrics
from tailored.serve.security import AUTHENTICATED, authenticate
from tailored.serve.settings import ServiceSettings

access = logging.getLogger("tailored.serve.access")
"""One line per request at INFO: method, route template (never the path: it may hold a user id), status, ms."""
logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 1
Result = TypeVar("Result")
UNSHED = ("/healthz", "/readyz", "/metrics")
"""Probes and the scraper are answered even under overload."""


def unavailable(detail: str) -> JSONResponse:
    """503 with ``Retry-After``: the client should come back in a second."""
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class DatabaseCalls:
    """Blocking database calls awaited from the event loop, at most ``concurrency`` at once, each awaited at most
    ``timeout`` seconds, its wait for a turn included (then TimeoutError; a call already started is left to finish
    in its thread, its result dropped, and holds its turn until then). Daemon threads, not the thread pool: a hung
    database holds neither the requests' threads nor the shutdown."""

    def __init__(self, timeout: float, concurrency: int = 4) -> None:
        self.timeout = timeout
        self.turns = asyncio.Semaphore(concurrency)

    async def __call__(self, function: Callable[..., Result], *args: Any) -> Result:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.timeout):
            await self.turns.acquire()
            future: Future[Result] = Future()

            def run() -> None:
                try:
                    if future.set_running_or_notify_cancel():  # not given up on before it started
                        try:
                            future.set_result(function(*args))
                        except BaseException as error:  # noqa: BLE001  (handed to the awaiting request)
                            future.set_exception(error)
                finally:
                    with contextlib.suppress(RuntimeError):  # the loop has closed: nothing waits for the turn
                        loop.call_soon_threadsafe(self.turns.release)

            threading.Thread(target=run, name="database-call", daemon=True).start()
            return await asyncio.wrap_future(future)


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
    """In this order: refuses headers over ``max_header_bytes`` (431) and bodies over ``max_body_bytes`` (413; a body
    without ``Content-Length`` gets 411); sheds every request but the probes while the event loop runs more than
    ``max_queue_ms`` late; checks the key of a request that needs one (401, 429) before anything else is spent on
    it; sheds with 503 and ``Retry-After`` while ``max_in_flight`` requests with a valid key are in progress, so
    requests without one never take their room; reads the body within ``body_timeout_seconds`` (else 408), so a
    client that stops sending frees its place. Times every answered request by route template (never by id)."""

    def __init__(self, app: ASGIApp, api: FastAPI, settings: ServiceSettings, lag: LoopLag, metrics: Metrics) -> None:
        self.app, self.api, self.settings, self.lag, self.metrics = app, api, settings, lag, metrics
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        refusal = self._refusal(scope)
        if refusal is None and self._needs_key(scope["path"]):
            service = self.api.state.service
            outcome = await authenticate(service.keys, service.limiter, scope["headers"])
            if isinstance(outcome, JSONResponse):
                refusal = outcome
            else:
                scope[AUTHENTICATED] = outcome
        admitted = AUTHENTICATED in scope
        crowded = self.in_flight >= self.settings.max_in_flight
        if refusal is None and admitted and crowded and scope["path"] not in UNSHED:
            refusal = self._shed()
        if refusal is not None:
            await refusal(scope, receive, send)
            _log_access(scope["method"], "unmatched", refusal.status_code, start)
            return
        status: list[int | None] = [None]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        self.in_flight += admitted
        try:
            body = await self._body(scope, receive)
            if body is None:
                detail = f"Request body not received within {self.settings.body_timeout_seconds:g} s."
                late = JSONResponse({"detail": detail}, status_code=408)
                await late(scope, receive, sending)
            else:
                await self.app(scope, body, sending)
        except Exception as error:  # noqa: BLE001  (logged here, without its message: it may quote ids)
            place = traceback.extract_tb(error.__traceback__)[-1]
            logger.error("unhandled %s on %s %s at %s:%s", type(error).__name__, scope["method"],
                         getattr(scope.get("route"), "path", "unmatched"), place.filename, place.lineno)
            if status[0] is None:
                await JSONResponse({"detail": "Internal error."}, status_code=500)(scope, receive, sending)
        finally:
            self.in_flight -= admitted
            route: str = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(scope["method"], route, status[0] or 500, time.perf_counter() - start)
            _log_access(scope["method"], route, status[0] or 500, start)

    def _needs_key(self, path: str) -> bool:
        return path.startswith("/v1/") or (path == "/metrics" and not self.settings.public_metrics)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        if sum(len(name) + len(value) for name, value in scope["headers"]) > self.settings.max_header_bytes:
            return JSONResponse({"detail": f"Request headers over {self.settings.max_header_bytes} bytes."},
                                status_code=431)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None and scope["method"] in ("POST", "PUT", "PATCH") and b"transfer-encoding" in headers:
            return JSONResponse({"detail": "Send the body with a Content-Length header."}, status_code=411)
        if length is not None and (not length.isdigit() or int(length) > self.settings.max_body_bytes):
            return JSONResponse({"detail": f"Request body over {self.settings.max_body_bytes} bytes."}, status_code=413)
        if self.lag.seconds > self.settings.max_queue_ms / 1000 and scope["path"] not in UNSHED:
            return self._shed()
        return None

    def _shed(self) -> JSONResponse:
        self.metrics.shed.inc()
        return unavailable(f"Overloaded: {self.in_flight} requests in progress, queue of "
                           f"{self.lag.seconds * 1000:.0f} ms; retry shortly.")

    async def _body(self, scope: Scope, receive: Receive) -> Receive | None:
        """A ``receive`` that replays the body, read in full within ``body_timeout_seconds``; None when it is late.
        Requests without a body pass as they are."""
        length = dict(scope["headers"]).get(b"content-length")
        if length is None or int(length) == 0:
            return receive
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(self.settings.body_timeout_seconds):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":  # the client went away: let the app see it
                        return _replay([message], receive)
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            return None
        return _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that gives ``messages`` first."""

    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


def _log_access(method: str, route: str, status: int, start: float) -> None:
    access.info("method=%s route=%s status=%d ms=%.2f", method, route, status, (time.perf_counter() - start) * 1000)
