"""`tailored simulate`: policies in a simulated world with hidden ground truth, in process or over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tailored.cli.common import console, handle_errors, print_table, progress_bar, say

app = typer.Typer()


@app.command("simulate")
@handle_errors
def simulate(
    scenario: Annotated[str, typer.Option(
        "--scenario", help="static (stable tastes, no new items) | new-items (a fifth of the catalogue arrives after "
                           "training, known by its attributes) | drift (tastes rotate).")] = "new-items",
    policy: Annotated[list[str] | None, typer.Option(
        "--policy", help="Policy SPEC (repeatable; the first is the baseline), e.g. greedy, thompson, "
                         "softmax:temperature=0.5. With --serve: the policy each service serves (checked).")] = None,
    serve: Annotated[list[str] | None, typer.Option(
        "--serve", help="URL of a running `tailored serve` (repeatable: one run per service, its own --policy) "
                        "whose model was trained on the world's history (--write-world).")] = None,
    key: Annotated[str | None, typer.Option(
        "--key", help="API key for --serve (scopes recommend, events:write, admin).")] = None,
    impressions: Annotated[int, typer.Option("--impressions", min=2, help="Lists shown per policy.")] = 200_000,
    k: Annotated[int, typer.Option("--k", min=1, help="Items per list.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the world and of its traffic.")] = 0,
    users: Annotated[int | None, typer.Option("--users", min=1, help="Users in the world (default 2,000).")] = None,
    items: Annotated[int | None, typer.Option("--items", min=2, help="Items in the world (default 1,000).")] = None,
    write_world: Annotated[Path | None, typer.Option(
        "--write-world", help="Write the world's history (interactions.csv) and trained items (items.csv) to this "
                              "folder, to train the model a service serves; alone, only that.")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Write the report here (.json).")] = None,
) -> None:
    """Run policies through the same simulated traffic (same users, same random draws) and report per policy the
    clicks, purchases, revenue and regret against the oracle, over the whole run and its second half, beside the
    first policy."""
    from tailored.errors import ConfigError
    from tailored.jobs.simulate import run_simulation, world_from, write_report
    from tailored.jobs.simulate import write_world as write_history

    if output is not None and output.suffix.lower() != ".json":
        raise ConfigError(f"--output {output} must be a .json file.")
    world = world_from(scenario, seed, users, items)
    if write_world is not None:
        interactions_path, items_path = write_history(world, write_world)
        say(f"wrote {interactions_path} and {items_path}: train the served model with `tailored model train "
            f"--interactions {interactions_path} --items {items_path} --algorithm als --model-dir DIR`")
        if not policy and not serve:
            return
    runs = len(serve) if serve else len(policy or [])
    with progress_bar(f"simulating {scenario}", "lists") as bar:
        task = bar.add_task("simulate", total=impressions * max(runs, 1))
        report = run_simulation(world, policy or [], serve or [], key, impressions, k, seed,
                                progress=lambda done: bar.update(task, advance=done))
    data = report.to_dict() if output is None else write_report(report, output)
    _print_report(data)
    if output is not None:
        console.print(f"[green]wrote[/] {output}")


def _print_report(data: dict) -> None:
    import pandas as pd

    rows = [{"policy": entry["policy"], "click rate": entry["second_half"]["click_rate"],
             "x baseline": entry["vs_baseline"]["click_rate"], "regret/list": entry["second_half"]["regret_per_list"],
             "purchases": entry["second_half"]["purchases"], "revenue": entry["second_half"]["revenue"],
             "new items": entry["second_half"]["new_item_share"], "whole click rate": entry["whole"]["click_rate"]}
            for entry in data["policies"]]
    print_table(pd.DataFrame(rows), title=f"{data['scenario']}: second half of {data['impressions']:,} lists "
                                          f"(oracle {data['policies'][0]['second_half']['oracle_click_rate']:.4f} "
                                          "clicks/list)")
