"""``/healthz`` (the process answers), ``/readyz`` (model loaded, database reachable, event ingestion not stalled; a
model version that failed to load is reported while the previous one keeps serving), ``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tailored.serve.security import bearer, require

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, response: Response) -> dict[str, Any]:
    """Answers within ``database_check_seconds`` even while the database hangs (then not ready)."""
    service = getattr(request.app.state, "service", None)
    try:
        database = service is not None and await service.database_calls(service.store.ping)
    except Exception:  # noqa: BLE001  (any database failure, or no answer in time, means not ready)
        database = False
    ingestion = service is not None and service.committer.healthy()
    ready = service is not None and database and ingestion
    response.status_code = status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE
    if not ready:
        response.headers["Retry-After"] = "1"
    return {"ready": ready, "model_version": service.model_version if service else None, "database": database,
            "ingestion": ingestion,
            "reload_failures": service.reload_failures if service else 0,
            "last_reload_error": service.reload_error if service else None}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Response:
    """Prometheus text format: per-route counts and latency, fallbacks, cache hits, shed requests, events, model.
    Needs an ``admin`` key unless the service runs with ``public_metrics``; holds no user or item ids."""
    if not request.app.state.settings.public_metrics:
        await require("admin")(request, credentials)
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
