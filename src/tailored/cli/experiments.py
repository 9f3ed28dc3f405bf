"""`tailored experiments create|list|stop`: A/B experiments that the service runs on its lists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tailored.cli.common import console, handle_errors, print_table
from tailored.cli.options import DatabaseUrl, Output
from tailored.errors import ConfigError

app = typer.Typer(help="A/B experiments on the served lists.", no_args_is_help=True)
Name = Annotated[str, typer.Option("--name", help="The experiment's name.")]
Registry = Annotated[Path | None, typer.Option(
    "--registry", help="Model registry folder the arms' NAME@VERSION / NAME@STAGE refer to; default: "
                       "TAILORED_REGISTRY, else the one a `tailored serve --registry` on this database serves from, "
                       "else ./registry.")]


@app.command("create")
@handle_errors
def create(
    name: Name,
    arm: Annotated[list[str], typer.Option(
        "--arm", help="NAME=MODEL_REF (repeatable; the first is the control): MODEL_REF is NAME@VERSION or "
                      "NAME@STAGE from the registry, or baseline (non-personalised lists).")],
    traffic: Annotated[str, typer.Option("--traffic", help="Whole percentages per arm in --arm order, e.g. 45,45,10.")],
    metric: Annotated[str, typer.Option(
        "--metric", help="Primary metric: click_rate, conversion, revenue_per_user or average_basket.")],
    db: DatabaseUrl = "sqlite:///tailored.db",
    guardrail: Annotated[list[str] | None, typer.Option(
        "--guardrail", help="METRIC<=BOUND or METRIC>=BOUND (repeatable), e.g. p99_ms<=30.")] = None,
    min_users: Annotated[int, typer.Option("--min-users", help="Users per arm before any decision.")] = 1000,
    surface: Annotated[str, typer.Option(
        "--surface", help="Where it runs: one running experiment per surface.")] = "recommendations",
    registry: Registry = None,
) -> None:
    """Create and start an experiment: users are split by a keyed hash of their id (sticky, no per-user storage)."""
    from tailored.cli.store import open_store
    from tailored.experiments.design import design_of
    from tailored.registry.versions import ModelRegistry
    from tailored.store.experiments import create_experiment, remembered_registry

    store = open_store(db, create=False)
    folder = registry or Path(os.environ.get("TAILORED_REGISTRY") or remembered_registry(store) or "registry")
    design = design_of(name, arm, traffic, metric, guardrail or [], min_users, surface,
                       resolve=ModelRegistry(folder).resolve)
    create_experiment(store, name, surface, design.to_json())
    arms = ", ".join(f"{each.name}={each.ref} ({each.share}%)" for each in design.arms)
    console.print(f"[green]started[/] experiment {name!r} on {surface}: {arms}; metric {metric}")


@app.command("list")
@handle_errors
def list_experiments(db: DatabaseUrl = "sqlite:///tailored.db") -> None:
    """Every experiment: surface, status, arms and shares, metric, created and stopped times (UTC)."""
    import pandas as pd

    from tailored.cli.store import open_store
    from tailored.experiments.design import Design
    from tailored.store.experiments import experiments

    rows = []
    for row in experiments(open_store(db, create=False)):
        design = Design.from_json(row["design"])
        rows.append({"name": row["name"], "surface": row["surface"], "status": row["status"],
                     "arms": ", ".join(f"{arm.name}={arm.ref} {arm.share}%" for arm in design.arms),
                     "metric": design.metric, "created": _utc(row["created_at"]), "stopped": _utc(row["stopped_at"]),
                     "reason": row["stop_reason"] or ""})
    columns = ["name", "surface", "status", "arms", "metric", "created", "stopped", "reason"]
    print_table(pd.DataFrame(rows, columns=columns), title="experiments")


@app.command("status")
@handle_errors
def status(name: Name, output: Output, db: DatabaseUrl = "sqlite:///tailored.db",
           window_hours: Annotated[float, typer.Option(
               "--window-hours", help="How long after a list an event is attributed to it (hours).")] = 24.0,
           ) -> None:
    """Per arm: users, exposures, click rate, conversion, revenue per user, average basket (with 95% intervals) and
    p99 latency; each treatment's lift over the control (interval, always-valid p-value); the sample-ratio check;
    the guardrails; and the decision (ship / roll back / keep running: N more users needed). Written as JSON."""
    import json

    from tailored.cli.store import open_store
    from tailored.data.io import write_text
    from tailored.jobs.experiments import status_of

    if output.suffix != ".json":
        raise ConfigError(f"--output {output}: the status is JSON; name a .json file.")
    if not 0 < window_hours < float("inf"):
        raise ConfigError(f"--window-hours must be a positive number of hours, got {window_hours}.")
    report = status_of(open_store(db, create=False), name, window_hours * 3600)
    write_text(json.dumps(report, indent=2), output)
    console.print(f"[green]wrote[/] {output}: {report['decision']}")


@app.command("exclude")
@handle_errors
def exclude(user: Annotated[list[str], typer.Option("--user", help="User id (repeatable).")],
            db: DatabaseUrl = "sqlite:///tailored.db") -> None:
    """Exclude users from every experiment, now and later (they get the service's own model); stored
    pseudonymised when TAILORED_PSEUDONYM_KEY is set, removed by the user's erasure."""
    from tailored.cli.store import open_store
    from tailored.store.experiments import exclude_users

    added = exclude_users(open_store(db, create=False), user)
    console.print(f"[green]excluded[/] {added:,} user(s) from experiments ({len(set(user)) - added:,} already were)")


@app.command("stop")
@handle_errors
def stop(name: Name, db: DatabaseUrl = "sqlite:///tailored.db",
         reason: Annotated[str, typer.Option("--reason", help="Why (kept with the experiment).")] = "stopped by hand",
         ) -> None:
    """Stop a running experiment: its users get the service's own model again."""
    from tailored.cli.store import open_store
    from tailored.store.experiments import stop_experiment

    stop_experiment(open_store(db, create=False), name, reason)
    console.print(f"[green]stopped[/] experiment {name!r}")


def _utc(at: float | None) -> str:
    import datetime

    if at is None:
        return ""
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
