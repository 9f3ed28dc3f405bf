"""`tailored ...`: the command-line face. Parses, validates and formats; the work happens in `jobs`. One module per
group of commands; `common` holds what they share (consoles, exit codes, progress)."""

from __future__ import annotations

from typing import Annotated

import typer

from tailored.cli import (benchmark, data, experiments, lists, logs, loop, model, monitor, ope, registry, service,
                          simulate, spark, store)
from tailored.cli.common import stdout

app = typer.Typer(help="tailored: a recommendation engine. Data -> quality -> split -> train -> evaluate -> recommend.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(data.app)
app.add_typer(model.app)
app.add_typer(lists.app)
app.add_typer(service.app)
app.add_typer(store.app)
app.add_typer(ope.app)
app.add_typer(simulate.app)
app.add_typer(data.datasets_app, name="datasets")
app.add_typer(store.keys_app, name="keys")
app.add_typer(store.events_app, name="events")
app.add_typer(registry.app, name="models")
app.add_typer(logs.app, name="logs")
app.add_typer(experiments.app, name="experiments")
app.add_typer(monitor.app, name="monitor")
app.command("loop")(loop.loop)
app.add_typer(benchmark.app, name="benchmark")
app.add_typer(spark.app, name="spark")


def _print_version(requested: bool) -> None:
    if requested:
        from tailored import __version__

        stdout.print(f"tailored {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    pass
