"""`tailored models ...`: the model registry (versions and stages)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tailored.cli.common import console, handle_errors, print_table, stdout
from tailored.cli.options import ModelDir
from tailored.errors import ConfigError

app = typer.Typer(help="The model registry: versions and stages.", no_args_is_help=True)
RegistryDir = Annotated[Path, typer.Option("--registry", help="Model registry folder.")]


@app.command("register")
@handle_errors
def models_register(registry: RegistryDir, name: Annotated[str, typer.Option("--name")], model_dir: ModelDir) -> None:
    """Add a trained model directory as the next version of NAME."""
    from tailored.registry.versions import ModelRegistry

    stdout.print(ModelRegistry(registry).register(name, model_dir))


@app.command("list")
@handle_errors
def models_list(registry: RegistryDir) -> None:
    """Every version: the stages pointing at it, algorithm, creation time (UTC) and key metric (the one a job selected
    it by, else the first recorded; with its 95% interval)."""
    import pandas as pd

    from tailored.registry.versions import ModelRegistry

    rows = [{"name": row["name"], "version": row["version"], "stage": row["stages"], "algorithm": row["algorithm"],
             "created": str(row["created"]).replace("T", " ").replace("+00:00", " UTC"),
             "key metric": key_metric(row["metrics"], row["selected_by"])}
            for row in ModelRegistry(registry).describe()]
    columns = ["name", "version", "stage", "algorithm", "created", "key metric"]
    print_table(pd.DataFrame(rows, columns=columns), title=f"models in {registry}")


def key_metric(metrics: dict[str, dict[str, float | None]] | None, selected_by: str | None) -> str:
    """``ndcg@10 0.4527 [0.4398, 0.4661]``: the metric a model was selected by (else its first) with its interval, from
    a manifest's ``metrics`` (metric -> value, ci_low, ci_high; None where undefined); "" when none were recorded."""
    if not metrics:
        return ""
    name = selected_by if selected_by in metrics else next(iter(metrics))
    figure = metrics[name]
    text = f"{name} " + ("n/a" if figure.get("value") is None else f"{figure['value']:.4f}")
    if figure.get("ci_low") is not None and figure.get("ci_high") is not None:
        text += f" [{figure['ci_low']:.4f}, {figure['ci_high']:.4f}]"
    return text


Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the registry's audit trail).")]


@app.command("promote")
@handle_errors
def models_promote(registry: RegistryDir, name: Annotated[str, typer.Argument()],
                   version: Annotated[str, typer.Argument()],
                   stage: Annotated[str, typer.Option("--stage")] = "production", reason: Reason = "") -> None:
    """Point NAME@STAGE at VERSION (a serving `--model NAME@STAGE` follows within seconds); recorded in the
    registry's audit trail with who and why (`tailored models history`)."""
    from tailored.registry.versions import ModelRegistry

    ModelRegistry(registry).promote(name, version, stage, reason=reason)
    console.print(f"[green]{name}@{stage}[/] -> {version}")


@app.command("rollback")
@handle_errors
def models_rollback(registry: RegistryDir, name: Annotated[str, typer.Argument()],
                    stage: Annotated[str, typer.Option("--stage")] = "production", reason: Reason = "") -> None:
    """Point NAME@STAGE back at its previous version (recorded as promote records)."""
    from tailored.registry.versions import ModelRegistry

    version = ModelRegistry(registry).rollback(name, stage, reason=reason)
    console.print(f"[green]{name}@{stage}[/] -> {version}")


@app.command("history")
@handle_errors
def models_history(registry: RegistryDir, name: Annotated[str, typer.Argument()]) -> None:
    """Every promotion and rollback of NAME, oldest first: when (UTC), what, from which version, by whom, why."""
    import pandas as pd

    from tailored.registry.versions import ModelRegistry

    found = ModelRegistry(registry)
    if name not in found.names():
        raise ConfigError(f"No model {name!r} in {registry}; models: {', '.join(found.names()) or 'none'}.")
    columns = ["at", "action", "stage", "previous", "version", "by", "reason"]
    rows = pd.DataFrame(found.changes(name), columns=columns)
    rows["at"] = pd.to_datetime(rows["at"], unit="s", utc=True).dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    print_table(rows.fillna(""), title=f"promotions and rollbacks of {name}")
