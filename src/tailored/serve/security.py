"""API keys with scopes (``Authorization: Bearer <key>``) and a per-key rate limit (a token bucket in memory)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

bearer = HTTPBearer(auto_error=False)
ERRORS: dict[int | str, dict[str, str]] = {
    400: {"description": "Bad input (an unknown context key, an unknown item...): the detail names it."},
    401: {"description": "Missing, invalid or revoked API key."},
    403: {"description": "The key lacks the scope this route needs."},
    413: {"description": "Request body over the size limit."},
    429: {"description": "Rate limit of the key exceeded; see Retry-After."},
    503: {"description": "Overloaded or database unavailable: nothing was stored; see Retry-After."},
}
"""The error answers every ``/v1`` route may give, for the OpenAPI schema."""


class RateLimiter:
    """At most ``per_minute`` requests per key per minute, refilled continuously."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def wait(self, key: str) -> float:
        """0 when the request may go ahead (a token is spent), else the seconds until the next token."""
        now = time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            self.buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        return 0.0 if allowed else (1.0 - tokens) / self.rate


def require(scope: str) -> Callable[..., Awaitable[str]]:
    """A dependency: the request's key must be valid, hold ``scope`` and be within its rate; returns the key id."""

    async def check(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Missing API key: send 'Authorization: Bearer <key>'.",
                                headers={"WWW-Authenticate": "Bearer"})
        service = request.app.state.service
        found, scopes = service.cached_key_scopes(credentials.credentials)
        if not found:  # the database answers in the thread pool, never on the event loop
            scopes = await run_in_threadpool(service.key_scopes, credentials.credentials)
        if scopes is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Invalid or revoked API key.",
                                headers={"WWW-Authenticate": "Bearer"})
        if scope not in scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"This key lacks the '{scope}' scope.")
        key_id = credentials.credentials.split("_")[1]
        wait = service.limiter.wait(key_id)
        if wait > 0:
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "Rate limit exceeded for this key; retry later.",
                                headers={"Retry-After": str(math.ceil(wait))})
        return key_id

    return check
