"""The hot request answered without the framework: ``GET /v1/users/{user_id}/recommendations`` (at most ``k`` in the
query) for a trained user, with a key the Guard accepted (and charged to its rate). Routing, dependency injection
and response validation cost several times the recommendation itself; this lane applies the same checks (id
rules, key scope), gives the same answer (`Service.quick_recommend`, the vector index), logs the same
impression and feeds the same metrics. Anything else -- another route, context, ``explain``, a key without the scope, a
malformed id, an unknown user, a model with stages to run -- goes on to FastAPI, which answers or refuses it."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from tailored.serve.routers import recommendations
from tailored.serve.security import AUTHENTICATED
from tailored.serve.service import new_exposure_id
from tailored.serve.validation import MAX_ID_LENGTH, clean_id

PREFIX, SUFFIX = "/v1/users/", "/recommendations"
ROUTE = PREFIX + "{user_id}" + SUFFIX
HEADERS = [(b"content-type", b"application/json")]


class FastLane:
    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app, self.api = app, api
        self.route = next(route for route in recommendations.router.routes if getattr(route, "path", None) == ROUTE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self._answer(scope) if scope["type"] == "http" and scope["method"] == "GET" else None
        if body is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # the metrics label, as routing would set it
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*HEADERS, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _answer(self, scope: Scope) -> bytes | None:
        path: str = scope["path"]
        if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
            return None
        user_id = path[len(PREFIX):-len(SUFFIX)]
        k = _k(scope["query_string"])
        service = getattr(self.api.state, "service", None)
        if k is None or service is None or not user_id or "/" in user_id or len(user_id) > MAX_ID_LENGTH:
            return None
        try:
            user_id = clean_id(user_id)
        except ValueError:
            return None
        authenticated = scope.get(AUTHENTICATED)  # (key id, scopes): checked and charged by the Guard
        if authenticated is None or "recommend" not in authenticated[1]:
            return None
        started = time.perf_counter()
        assigned = service.assigned(user_id)
        if assigned is not None and (assigned.model is not None or not assigned.personalised):
            return None  # another arm's model, or the holdout: the router's path
        exposure_id = new_exposure_id()
        rows = service.quick_recommend(user_id, min(k, service.settings.max_k), exposure_id)
        if rows is None:
            return None
        service.expose(exposure_id, user_id, rows, None, assigned, (time.perf_counter() - started) * 1000)
        answer: dict[str, Any] = {"user_id": user_id, "items": rows, "model_version": service.model_version,
                                  "exposure_id": exposure_id, "policy": service.policy.spec}
        if assigned is not None:
            answer["experiment"] = assigned.answer()
        return json.dumps(answer, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _k(query: bytes) -> int | None:
    """``k`` from a query string holding nothing else (default 10); None for anything the router must see."""
    if not query:
        return 10
    name, _, value = query.partition(b"=")
    return int(value) if name == b"k" and value.isdigit() and len(value) <= 7 and 0 < int(value) <= 1_000_000 else None

