"""`tailored monitor daily|training`: the daily production figures and alerts, and one record per training, stored
in the database for the dashboard and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tailored.cli.common import console, handle_errors, print_table
from tailored.cli.options import DatabaseUrl, ModelDir
from tailored.errors import ConfigError

app = typer.Typer(help="Monitoring: daily production figures, alerts and training records.", no_args_is_help=True)
WindowHours = Annotated[float, typer.Option(
    "--window-hours", help="How long after a list an event is attributed to it (hours).")]


@app.callback(invoke_without_command=True)
@handle_errors
def monitor(
    ctx: typer.Context,
    db: DatabaseUrl = "sqlite:///tailored.db",
    since: Annotated[str | None, typer.Option("--since", help="First day of the report, YYYY-MM-DD.")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", help="Write the dashboard's pages as one static HTML file (as `tailored monitor report`).")] = None,
) -> None:
    """Monitoring: daily production figures, alerts and training records (stored for the dashboard).
    `tailored monitor --db URL [--since DATE] --output report.html` writes the report."""
    if ctx.invoked_subcommand is not None:
        if output is not None or since is not None:
            raise ConfigError(f"--output and --since go alone or after `report`, not before "
                              f"`{ctx.invoked_subcommand}`.")
        return
    if output is None:
        console.print(ctx.get_help())
        return
    report = ctx.command.get_command(ctx, "report")  # type: ignore[attr-defined]  # the group's callback
    if report is None:
        raise ConfigError("This tailored has no `monitor report` command: the report cannot be written.")
    arguments = ["--db", db, "--output", str(output)] + (["--since", since] if since is not None else [])
    with report.make_context("report", arguments, parent=ctx) as context:
        report.invoke(context)


@app.command("daily")
@handle_errors
def daily(
    db: DatabaseUrl = "sqlite:///tailored.db",
    day: Annotated[list[str] | None, typer.Option(
        "--day", help="Day to compute, YYYY-MM-DD (UTC; repeatable). Default: yesterday and the day before.")] = None,
    alerts_file: Annotated[Path | None, typer.Option(
        "--alerts", help="Alert rules (TOML [[rule]] tables) evaluated on each day computed.")] = None,
    window_hours: WindowHours = 24.0,
) -> None:
    """Compute each day's figures from the exposures and attributed events and store them (recomputing a day
    replaces its figures); evaluate the alert rules on them and store the alerts raised."""
    import time

    import pandas as pd

    from tailored.cli.store import open_store
    from tailored.monitoring.alerts import evaluate_day, load_rules
    from tailored.monitoring.daily import METRICS, OVERALL, default_days, parse_day, store_days

    if not 0 < window_hours < float("inf"):
        raise ConfigError(f"--window-hours must be a positive number of hours, got {window_hours}.")
    days = sorted({parse_day(each) for each in day}) if day else default_days(time.time())
    rules = load_rules(alerts_file) if alerts_file is not None else []
    store = open_store(db, create=False)
    rows = store_days(store, days, window_hours * 3600)
    raised = [alert for each in days for alert in evaluate_day(store, rules, each)] if rules else []
    overall = rows[rows["kind"] == OVERALL].pivot(index="metric", columns="day", values="value").reindex(METRICS)
    print_table(overall.rename_axis(None, axis=1).reset_index(), title="daily figures (stored)")
    if raised:
        print_table(pd.DataFrame(raised)[["day", "rule", "severity", "message"]], title="alerts")
    console.print(f"[green]stored[/] {len(days)} day(s): {', '.join(days)}; {len(raised)} alert(s)"
                  + (f" from {len(rules)} rule(s)" if rules else ""))


@app.command("report")
@handle_errors
def report(
    output: Annotated[Path, typer.Option("--output", help="The report: one self-contained .html file.")],
    db: DatabaseUrl = "sqlite:///tailored.db",
    since: Annotated[str | None, typer.Option(
        "--since", help="First day shown, YYYY-MM-DD (UTC). Default: every stored day.")] = None,
    registry: Annotated[Path | None, typer.Option(
        "--registry", help="Model registry folder, for the models page's versions and promotions.")] = None,
) -> None:
    """Write the dashboard's pages (overview, models, experiments, bias, quality and drift, alerts) to one static
    HTML file: no script, no font, nothing fetched from elsewhere."""
    from tailored.cli.store import open_store
    from tailored.dashboard.numbers import Sources, since_timestamp
    from tailored.dashboard.report import write_report
    from tailored.registry.versions import ModelRegistry

    if registry is not None and not registry.is_dir():
        raise ConfigError(f"--registry {registry} is not a folder: give the registry's folder (tailored models ...).")
    start = since_timestamp(since, "--since")
    pages = write_report(Sources(open_store(db, create=False), ModelRegistry(registry) if registry else None, start),
                         output)
    console.print(f"[green]wrote[/] {output}: {len(pages['overview']['days'])} day(s), "
                  f"{len(pages['experiments']['experiments'])} experiment(s), {len(pages['alerts']['alerts'])} "
                  "alert(s)")


@app.command("training")
@handle_errors
def training(
    model_dir: ModelDir,
    db: DatabaseUrl = "sqlite:///tailored.db",
    test: Annotated[Path | None, typer.Option(
        "--test", help="Frozen test interactions file (user_id, item_id): evaluated with 95% intervals, per segment.")
    ] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="The model's name in the records (default: the model directory's name).")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Metric NAME@K (repeatable).")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples of the intervals.")] = 1000,
) -> None:
    """Record one training: the data fingerprint, the quality report of the model directory, bias in the training
    data (per user segment and item category of the store), the evaluation on --test and the difference with the
    previous record of the same model."""
    from tailored.cli.store import open_store
    from tailored.eval.evaluator import DEFAULT_METRICS, parse_metrics
    from tailored.monitoring.training import record_training

    if test is not None and not test.is_file():
        raise ConfigError(f"--test {test}: no such file; give the frozen test interactions file.")
    parse_metrics(metric or list(DEFAULT_METRICS))  # an unknown metric is refused before any work
    name = model or Path(model_dir).resolve().name
    record = record_training(open_store(db, create=False), name, model_dir, test, metric or list(DEFAULT_METRICS),
                             bootstrap)
    bias = record["bias"]
    console.print(f"[green]recorded[/] training of {name!r}: data {record['fingerprint']}, {bias['pairs']:,} pairs, "
                  f"popularity Gini {bias['popularity_gini']:.3f}")
    if record["evaluation"]:
        import pandas as pd

        rows = [{"metric": metric_name, "value": figure["value"], "ci": _interval(figure["ci"]),
                 "change": record["diff"].get(metric_name, float("nan"))}
                for metric_name, figure in record["evaluation"].items()]
        print_table(pd.DataFrame(rows), title=f"evaluation on {test}")


def _interval(bounds: list[float | None]) -> str:
    return "" if None in bounds else f"[{bounds[0]:.4f}, {bounds[1]:.4f}]"
