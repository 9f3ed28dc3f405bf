"""`create_app(settings)`: the FastAPI application, its routers, error handling, limits, CORS and metrics."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from tailored import __version__
from tailored.errors import ConflictError, TailoredError
from tailored.serve.metrics import Metrics
from tailored.serve.routers import events, health, items, recommendations, users
from tailored.serve.service import Service
from tailored.serve.settings import ServiceSettings


RETRY_AFTER_SECONDS = 1
logger = logging.getLogger(__name__)


def unavailable(detail: str) -> JSONResponse:
    """503 with ``Retry-After``: the client should come back in a second."""
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def create_app(settings: ServiceSettings) -> FastAPI:
    """The service for ``settings``; the model and the store open when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = app.state.service = Service(settings)
        app.state.metrics.model_version.info({"version": service.model_version})
        stop = threading.Event()

        def follow() -> None:
            while not stop.wait(settings.reload_seconds):
                if service.follow_registry():
                    app.state.metrics.model_version.info({"version": service.model_version})

        watcher = threading.Thread(target=follow, name="registry-watcher", daemon=True)
        if service.registry is not None:
            watcher.start()
        yield
        stop.set()
        service.committer.stop()
        service.exposures.stop()

    app = FastAPI(title="tailored", version=__version__, lifespan=lifespan,
                  description="Recommendations, feedback events, users and items of a tailored engine.")
    app.state.metrics = Metrics()
    app.state.settings = settings
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type"])

    in_flight = 0

    @app.middleware("http")
    async def limits_and_metrics(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        nonlocal in_flight
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            return JSONResponse({"detail": f"Request body over {settings.max_body_bytes} bytes."}, status_code=413)
        if in_flight >= settings.max_in_flight and request.url.path not in (*health.PROBES, "/metrics"):
            app.state.metrics.shed.inc()
            return unavailable(f"Overloaded: {in_flight} requests in progress; retry shortly.")
        in_flight += 1
        start = time.perf_counter()
        try:
            response = await call_next(request)
        finally:
            in_flight -= 1
        route = request.scope.get("route")
        app.state.metrics.observe(request.method, getattr(route, "path", "unmatched"), response.status_code,
                                  time.perf_counter() - start)
        return response

    @app.exception_handler(TailoredError)
    async def bad_input(request: Request, error: TailoredError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        """422 naming each field and what is wrong, without echoing the input (it may be NaN, or personal)."""
        details = [{"loc": list(each["loc"]), "msg": each["msg"], "type": each["type"]} for each in error.errors()]
        return JSONResponse({"detail": details}, status_code=422)

    @app.exception_handler(ConflictError)
    async def conflict(request: Request, error: ConflictError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=409)

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    @app.exception_handler(sa.exc.TimeoutError)
    @app.exception_handler(TimeoutError)
    async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
        logger.warning("database unavailable on %s: %s", request.url.path, type(error).__name__)
        return unavailable("The database is unavailable; nothing was stored by this request. Retry shortly.")

    for router in (recommendations.router, events.router, users.router, items.router, health.router):
        app.include_router(router)
    return app
