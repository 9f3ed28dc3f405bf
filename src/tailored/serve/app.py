"""`create_app(settings)`: the FastAPI application, its routers, error handling, limits, CORS and metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from tailored import __version__
from tailored.errors import TailoredError
from tailored.serve.metrics import Metrics
from tailored.serve.routers import events, health, items, recommendations, users
from tailored.serve.service import Service
from tailored.serve.settings import ServiceSettings


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
        service.exposures.stop()

    app = FastAPI(title="tailored", version=__version__, lifespan=lifespan,
                  description="Recommendations, feedback events, users and items of a tailored engine.")
    app.state.metrics = Metrics()
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type"])

    @app.middleware("http")
    async def limits_and_metrics(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            return JSONResponse({"detail": f"Request body over {settings.max_body_bytes} bytes."}, status_code=413)
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        app.state.metrics.observe(request.method, getattr(route, "path", "unmatched"), response.status_code,
                                  time.perf_counter() - start)
        return response

    @app.exception_handler(TailoredError)
    async def bad_input(request: Request, error: TailoredError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    for router in (recommendations.router, events.router, users.router, items.router, health.router):
        app.include_router(router)
    return app
