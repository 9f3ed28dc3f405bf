"""API keys with scopes (``Authorization: Bearer <key>``), their cache, and a per-key rate limit (the `limits`
package's moving window, in memory). The `Guard` (limits.py) authenticates a request before it admits it or reads its
body, and charges its rate once; a route's `require` dependency then checks the scope it needs."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.responses import JSONResponse

from tailored.store.database import KEY_PREFIX

if TYPE_CHECKING:
    from tailored.serve.limits import DatabaseCalls

logger = logging.getLogger(__name__)

bearer = HTTPBearer(auto_error=False)
AUTHENTICATED = "tailored.key"
"""The ASGI scope entry where the Guard leaves the request's ``(key id, scopes)`` once its key is checked."""
KEY_CACHE_SECONDS = 30.0
MAX_KEY_LENGTH = 256
"""Longer credentials are refused without a lookup (keys made by `tailored keys create` have 64 characters)."""
ERRORS: dict[int | str, dict[str, str]] = {
    400: {"description": "Bad input (an unknown context key, an unknown item...): the detail names it."},
    401: {"description": "Missing, invalid or revoked API key."},
    403: {"description": "The key lacks the scope this route needs."},
    408: {"description": "The request body did not arrive in time."},
    431: {"description": "Request headers over the size limit."},
    413: {"description": "Request body over the size limit."},
    429: {"description": "Rate limit of the key exceeded; see Retry-After."},
    503: {"description": "Overloaded or database unavailable: the detail says whether anything was stored; see "
                         "Retry-After."},
}
"""The error answers every ``/v1`` route may give, for the OpenAPI schema."""


class KeyCheckUnavailable(Exception):
    """The database cannot tell whether a key is valid, and the key was not found valid recently enough."""


class KeyCache:
    """Scopes of API keys (None: invalid or revoked), checked against the database (``lookup``, through ``calls``:
    bounded in time) at most every ``fresh_seconds`` per key: a revoked key stops working within that time.

    While the database fails or does not answer, a key found valid within the last ``outage_seconds`` keeps its
    scopes (for ``calls.timeout`` seconds after a failure the database is not asked again for them, so most of those
    requests do not wait on it);
    other keys get KeyCheckUnavailable. Valid keys are kept (as many as `tailored keys create` made); invalid ones
    are remembered by digest, only the ``max_invalid`` most recent, so a flood of made-up keys costs bounded memory;
    a key of the wrong shape is refused without a lookup."""

    def __init__(self, lookup: Callable[[str], frozenset[str] | None], calls: DatabaseCalls,
                 fresh_seconds: float = KEY_CACHE_SECONDS, outage_seconds: float = 600.0,
                 max_invalid: int = 10_000) -> None:
        self.lookup, self.calls, self.max_invalid = lookup, calls, max_invalid
        self.fresh_seconds, self.outage_seconds = fresh_seconds, outage_seconds
        self.valid: dict[str, tuple[frozenset[str], float]] = {}
        self.invalid: OrderedDict[bytes, float] = OrderedDict()
        self.retry_at = 0.0

    async def scopes(self, key: str) -> frozenset[str] | None:
        if len(key) > MAX_KEY_LENGTH or not key.startswith(KEY_PREFIX + "_"):
            return None
        now = time.monotonic()
        valid = self.valid.get(key)
        if valid is not None and now - valid[1] < self.fresh_seconds:
            return valid[0]
        digest = hashlib.sha256(key.encode()).digest()
        checked = self.invalid.get(digest)
        if checked is not None and now - checked < self.fresh_seconds:
            self.invalid.move_to_end(digest)
            return None
        stale = valid is not None and now - valid[1] < self.outage_seconds
        if stale and now < self.retry_at:  # the database failed a moment ago: do not wait on it again yet
            return valid[0]  # type: ignore[index]
        try:
            scopes = await self.calls(self.lookup, key)
        except (sa.exc.SQLAlchemyError, TimeoutError) as error:
            if now >= self.retry_at:
                logger.warning("key check failed: %s; keys valid in the last %.0f s keep working",
                               type(error).__name__, self.outage_seconds)
            self.retry_at = time.monotonic() + self.calls.timeout
            if stale:
                return valid[0]  # type: ignore[index]
            raise KeyCheckUnavailable(f"The database is unavailable and this key was not checked in the last "
                                      f"{self.outage_seconds:g} s; retry shortly.") from error
        if scopes is None:
            self.valid.pop(key, None)
            self.invalid[digest] = now
            self.invalid.move_to_end(digest)
            while len(self.invalid) > self.max_invalid:
                self.invalid.popitem(last=False)
        else:
            self.valid[key] = (scopes, now)
        return scopes


def refusal(status_code: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers or None)


async def authenticate(keys: KeyCache, limiter: RateLimiter, headers: list[tuple[bytes, bytes]]
                       ) -> tuple[str, frozenset[str]] | JSONResponse:
    """The request's ``(key id, scopes)``, its rate charged; or the refusal: 401 without a valid key, 429 past the
    key's rate, 503 when the database cannot tell."""
    key = bearer_key(headers)
    if key is None:
        return refusal(401, "Missing API key: send 'Authorization: Bearer <key>'.", **{"WWW-Authenticate": "Bearer"})
    try:
        scopes = await keys.scopes(key)
    except KeyCheckUnavailable as error:
        return refusal(503, str(error), **{"Retry-After": "1"})
    if scopes is None:
        return refusal(401, "Invalid or revoked API key.", **{"WWW-Authenticate": "Bearer"})
    key_id = key.split("_")[1]
    wait = limiter.retry_after(key_id)
    if wait is not None:
        return refusal(429, "Rate limit exceeded for this key; retry later.", **{"Retry-After": str(wait)})
    return key_id, scopes


def bearer_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The credentials of an ``Authorization: Bearer`` header, None without one."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            return (credentials.strip() or None) if scheme.lower() == "bearer" else None
    return None


class RateLimiter:
    """At most ``per_minute`` requests per key in any 60 seconds: the `limits` package's moving window, in memory."""

    def __init__(self, per_minute: int) -> None:
        self.limit = RateLimitItemPerMinute(per_minute)
        self.windows = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, key: str) -> int | None:
        """None when the request may go ahead (it is counted), else the whole seconds (at least 1) until the oldest
        request of the key's last minute leaves the window."""
        if self.windows.hit(self.limit, key):
            return None
        return max(math.ceil(self.windows.get_window_stats(self.limit, key).reset_time - time.time()), 1)


def require(scope: str) -> Callable[..., Awaitable[str]]:
    """A dependency: the request's key (checked by the Guard) must hold ``scope``; returns the key id."""

    async def check(request: Request, _: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        """(``bearer`` declares the scheme in the OpenAPI document; the Guard has read the header.)"""
        authenticated: tuple[str, frozenset[str]] | None = request.scope.get(AUTHENTICATED)
        if authenticated is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Missing API key: send 'Authorization: Bearer <key>'.",
                                headers={"WWW-Authenticate": "Bearer"})
        key_id, scopes = authenticated
        if scope not in scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"This key lacks the '{scope}' scope.")
        return key_id

    return check
