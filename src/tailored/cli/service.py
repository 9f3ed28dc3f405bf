"""`tailored serve` and `tailored openapi`: the HTTP service and its API reference."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tailored.cli.common import console, handle_errors, say
from tailored.cli.options import DatabaseUrl
from tailored.errors import ConfigError

app = typer.Typer()


@app.command()
@handle_errors
def serve(
    model_dir: Annotated[Path | None, typer.Option(
        "--model-dir", help="Model directory written by `tailored train`.")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="NAME@STAGE from --registry, followed when promoted or rolled back.")] = None,
    registry: Annotated[Path | None, typer.Option(
        "--registry", help="Model registry folder (with --model).")] = None,
    db: DatabaseUrl = "sqlite:///tailored.db",
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    access_log: Annotated[bool, typer.Option(
        "--access-log/--no-access-log", help="One line per request on stderr: method, route template (no ids), status,"
                                             " ms.")] = True,
    policy: Annotated[str | None, typer.Option(
        "--policy", help="The slate policy: greedy (the model's order, the default), epsilon-greedy:epsilon=0.1, "
                         "softmax:temperature=0.5, uniform, thompson (explores, new items included), "
                         "linucb:alpha=1.0. It learns online from the attributed clicks. [env TAILORED_POLICY]",
        show_default=False)] = None,
    new_item_slots: Annotated[int | None, typer.Option(
        "--new-item-slots", help="Slots of each list reserved for items added after training (overrides the "
                                 "policy's own). [env TAILORED_NEW_ITEM_SLOTS]", show_default=False)] = None,
    policy_seed: Annotated[int | None, typer.Option(
        "--policy-seed", help="Seed of the policy's draws (each list's come from the seed and its exposure_id). "
                              "[default: 0]", show_default=False)] = None,
    attribution_window_hours: Annotated[float | None, typer.Option(
        "--attribution-window-hours", help="How long after a list a click, cart or purchase is credited to it. "
                                           "[default: 24]", show_default=False)] = None,
) -> None:
    """Serve recommendations, events, users and items over HTTP (settings also from TAILORED_* variables). Prints
    "listening on http://HOST:PORT" on stderr once it accepts connections. Each request is one user: native thread
    pools get 1 thread unless TAILORED_NUM_THREADS says otherwise (waking idle threads for a single query costs more
    than it saves)."""
    os.environ.setdefault("TAILORED_NUM_THREADS", "1")
    try:
        import uvicorn
        from threadpoolctl import threadpool_limits

        from tailored.config import num_threads
        from tailored.serve import ServiceSettings, create_app
        from tailored.serve.app import open_service
        from tailored.serve.limits import access
    except ImportError as error:
        raise ConfigError(f'The service needs the serve extra: pip install ".[serve]" in the tailored checkout '
                          f"({error}).") from error

    if (model is None) == (model_dir is None) or (model is not None and registry is None):
        raise ConfigError("Give --model-dir DIR, or --model NAME@STAGE with --registry DIR.")
    settings = ServiceSettings.from_env(model_dir, db_url=db, model=model, registry=registry, policy=policy,
                                        new_item_slots=new_item_slots, policy_seed=policy_seed,
                                        attribution_window_hours=attribution_window_hours)
    from tailored.serve.policy import configured, window_seconds

    configured(settings.policy, settings.new_item_slots)  # a bad spec is refused (exit 2) before anything opens
    window_seconds(settings.attribution_window_hours)
    if model_dir is not None:
        from tailored.registry.model_dir import read_manifest

        read_manifest(model_dir)  # a missing or damaged model is refused before the database is opened (or created)

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname()[1] if self.servers else port
                say(f"listening on http://{host}:{bound}")

    if access_log:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False
    with threadpool_limits(num_threads()):
        application = create_app(settings)
        open_service(application)  # a bad model or database: a clear error (exit 2) before the server starts
        server = Server(uvicorn.Config(application, host=host, port=port, log_level="warning", access_log=False,
                                       h11_max_incomplete_event_size=settings.max_header_bytes))
        with contextlib.suppress(KeyboardInterrupt):  # SIGINT or SIGTERM, re-raised once the server has shut down
            server.run()


@app.command("openapi")
@handle_errors
def openapi(output: Annotated[Path, typer.Option(
    "--output", help="JSON file for the service's OpenAPI document.")]) -> None:
    """Write the service's OpenAPI document (the API reference: every route, parameter, body and answer)."""
    from tailored.data.io import write_text
    from tailored.serve import ServiceSettings, create_app

    document = create_app(ServiceSettings(model_dir=Path("model"))).openapi()
    write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", output)
    console.print(f"[green]wrote[/] the OpenAPI document ({len(document['paths'])} paths) to {output}")
