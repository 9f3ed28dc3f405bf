"""`tailored simulate`: policies run in a simulated world (in process, or against running services), the report as
JSON, and the world's history written out for training the model a service serves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tailored.data.io import write_table, write_text
from tailored.errors import ConfigError
from tailored.simulation.run import IMPRESSIONS, K, Driver, EngineDriver, Progress, SimulationReport, simulate
from tailored.simulation.world import World, WorldSpec

INTERACTIONS_FILE = "interactions.csv"
ITEMS_FILE = "items.csv"


def world_from(scenario: str, seed: int = 0, users: int | None = None, items: int | None = None) -> World:
    """The world of a scenario and seed, with its default size unless ``users`` / ``items`` are given."""
    sizes = {name: value for name, value in (("users", users), ("items", items)) if value is not None}
    return World(WorldSpec(scenario=scenario, seed=seed, **sizes))


def run_simulation(world: World, policies: Sequence[str], serve: Sequence[str] = (), key: str | None = None,
                   impressions: int = IMPRESSIONS, k: int = K, seed: int = 0, progress: Progress | None = None
                   ) -> SimulationReport:
    """Each policy in process, or each service of ``serve`` (its policy checked against ``policies`` when given,
    pair by pair) through the same traffic."""
    if not serve:
        return simulate(world, list(policies), EngineDriver(), impressions, k, seed, progress=progress)
    if key is None:
        raise ConfigError("--serve needs --key: an API key with the scopes recommend, events:write and admin "
                          "(`tailored keys create`).")
    if policies and len(policies) != len(serve):
        raise ConfigError(f"{len(serve)} --serve URL(s) but {len(policies)} --policy: give one --policy per service "
                          "(the policy it serves, in the same order), or none.")
    from tailored.simulation.http import HttpDriver

    specs = list(policies) or [""] * len(serve)
    drivers: list[Driver] = [HttpDriver(url, key) for url in serve]
    reports = [simulate(world, [spec], driver, impressions, k, seed, progress=progress)
               for spec, driver in zip(specs, drivers, strict=True)]
    return SimulationReport(world.spec, impressions, k, seed, "http", [report.runs[0] for report in reports])


def write_report(report: SimulationReport, output: Path) -> dict[str, Any]:
    """The report as JSON at ``output``, written atomically (an interrupted run leaves no partial file)."""
    data = report.to_dict()
    write_text(json.dumps(data, indent=2) + "\n", output)
    return data


def write_world(world: World, folder: Path) -> tuple[Path, Path]:
    """The world's history clicks (``user_id, item_id, timestamp``) and the trained items' attributes (``item_id,
    category, price``) in ``folder``, to train the model a service serves: ``tailored model train --interactions
    FOLDER/interactions.csv --items FOLDER/items.csv --algorithm als --model-dir DIR``."""
    return (write_table(world.training_clicks(), folder / INTERACTIONS_FILE),
            write_table(world.item_table(world.trained_items()), folder / ITEMS_FILE))
