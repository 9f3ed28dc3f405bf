"""`create_app(settings)`: the FastAPI application, its routers, error handling, limits, CORS and metrics."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from tailored import __version__
from tailored.errors import ConfigError, ConflictError, TailoredError
from tailored.serve.committer import IngestionUnavailable
from tailored.serve.fast_lane import FastLane
from tailored.serve.limits import Guard, LoopLag, unavailable
from tailored.serve.metrics import Metrics
from tailored.serve.routers import dashboard, events, health, items, policy, recommendations, users
from tailored.serve.service import Service
from tailored.serve.settings import ServiceSettings
from tailored.store import schema
from tailored.store.database import safe_url

logger = logging.getLogger(__name__)


def create_app(settings: ServiceSettings) -> FastAPI:
    """The service for ``settings``; the model and the store open when the app starts (or before: `open_service`)."""

    lag = LoopLag()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = open_service(app)
        lag.start()
        app.state.metrics.model_version.info({"version": service.model_version})
        app.state.metrics.follow_daily(service.daily_figures)
        stop = threading.Event()

        def follow() -> None:
            while not stop.wait(settings.reload_seconds):
                if service.follow_registry():
                    app.state.metrics.model_version.info({"version": service.model_version})

        watcher = threading.Thread(target=follow, name="registry-watcher", daemon=True)
        if service.registry is not None:
            watcher.start()
        yield
        lag.stop()
        stop.set()
        service.committer.stop()
        service.exposures.stop()
        service.erasures.stop()
        service.event_follower.stop()
        service.experiments.stop()

    app = FastAPI(title="tailored", version=__version__, lifespan=lifespan,
                  description="Recommendations, feedback events, users and items of a tailored engine.")
    app.state.metrics = Metrics()
    app.state.settings = settings
    for router in (recommendations.router, events.router, users.router, items.router, policy.router,
                   health.router, dashboard.router):
        app.include_router(router)
    app.add_middleware(FastLane, api=app)
    app.add_middleware(Guard, api=app, settings=settings, lag=lag, metrics=app.state.metrics)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type"])

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

    @app.exception_handler(sa.exc.DBAPIError)
    @app.exception_handler(sa.exc.TimeoutError)
    async def database_unavailable(request: Request, error: Exception) -> JSONResponse:
        """A failed transaction is rolled back: nothing was stored. Logged by type only (the database's message
        and SQLAlchemy's may quote the statement's parameters: ids)."""
        route = getattr(request.scope.get("route"), "path", "unmatched")  # the template: a path may hold a user id
        logger.warning("database unavailable on %s %s: %s", request.method, route, type(error).__name__)
        return unavailable("The database is unavailable; nothing was stored by this request. Retry shortly.")

    @app.exception_handler(schema.UnconfirmedCommit)
    async def unconfirmed(request: Request, error: schema.UnconfirmedCommit) -> JSONResponse:
        route = getattr(request.scope.get("route"), "path", "unmatched")
        logger.warning("database failed while committing on %s %s", request.method, route)
        return unavailable("The database failed while committing this request's change: it may or may not be "
                           "stored. Retry it: repeating it is safe.")

    @app.exception_handler(IngestionUnavailable)
    async def ingestion_unavailable(request: Request, error: IngestionUnavailable) -> JSONResponse:
        logger.warning("events not acknowledged: %s", error)
        return unavailable(str(error))

    return app


def open_service(app: FastAPI) -> Service:
    """The app's service (model, store, writers), opened once. `tailored serve` opens it before the server starts,
    so that a bad model or database is a clear error (exit 2) instead of a failed startup; an app started without
    it opens it as it starts. A SQLite file in a missing folder, and a database that takes no writes (a read-only
    file or replica), are refused here rather than on the first event."""
    if getattr(app.state, "service", None) is None:
        settings: ServiceSettings = app.state.settings
        url = sa.engine.make_url(settings.db_url) if "://" in settings.db_url else None
        if url is not None and url.get_backend_name() == "sqlite" and url.database and not url.query.get("uri"):
            folder = Path(url.database).parent
            if not folder.is_dir():
                raise ConfigError(f"The folder {folder} of the SQLite database {url.database} does not exist: "
                                  "create it, or give --db another file.")
        service = Service(settings, app.state.metrics)
        try:
            with service.store.engine.connect() as connection, connection.begin() as transaction:
                connection.execute(sa.delete(schema.audit_log).where(sa.false()))
                transaction.rollback()
        except sa.exc.DBAPIError as error:
            raise ConfigError(f"The database {safe_url(settings.db_url)} takes no writes ({error.orig}): make the "
                              "SQLite file and its folder writable by this user, or give --db another database."
                              ) from error
        app.state.service = service
    return app.state.service
