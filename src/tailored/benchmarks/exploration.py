"""`tailored benchmark exploration`: does exploring pay where it should, and cost little where it should not?

Each policy runs through the same traffic of a simulated world (`tailored.simulation`: same users, same random
draws, the engine's own candidates from a model trained on the world's history) and is read over the second half
of the run (after warm-up), beside the first policy (``greedy`` by default):

- ``new-items``: a fifth of the catalogue arrives after training, known only by its attributes, and is on average
  more appealing than the old items. Target: the best exploring policy earns >= 1.10x greedy's clicks.
- ``static``: no new items, stable tastes. Target: every exploring policy loses <= 3 % of greedy's clicks.

Regret per list is the oracle's expected clicks (the best available items by hidden truth, best first) minus the
policy's. Vary ``seed``, ``users`` and ``items`` to check that a policy is not tuned to one world.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from tailored.simulation.run import IMPRESSIONS, K, EngineDriver, Progress, simulate
from tailored.simulation.world import World, WorldSpec

POLICIES = ("greedy", "thompson")
SCENARIOS = ("new-items", "static")
TARGETS = {"new-items": ("best exploring >= 1.10x greedy", 1.10), "static": ("each exploring >= 0.97x greedy", 0.97)}
"""Per scenario: the target as words and the click ratio (second half, vs the baseline) it needs."""
Row = dict[str, Any]


def exploration_benchmark(policies: Sequence[str] = POLICIES, scenarios: Sequence[str] = SCENARIOS,
                          impressions: int = IMPRESSIONS, seed: int = 0, users: int | None = None,
                          items: int | None = None, k: int = K, on_row: Callable[[Row], None] | None = None,
                          progress: Progress | None = None) -> pd.DataFrame:
    """One row per (scenario, policy): second-half click rate, its ratio to the first policy's, regret per list,
    purchases and revenue ratios, the share of new items shown and the whole run's click rate; ``target_met`` says
    whether the scenario's target (`TARGETS`) holds for the row (None for the baseline)."""
    rows: list[Row] = []
    sizes = {name: value for name, value in (("users", users), ("items", items)) if value is not None}
    for scenario in scenarios:
        world = World(WorldSpec(scenario=scenario, seed=seed, **sizes))
        report = simulate(world, list(policies), EngineDriver(), impressions, k, seed, progress=progress).to_dict()
        scenario_rows = [_row(scenario, entry, index == 0, report["impressions"])
                         for index, entry in enumerate(report["policies"])]
        _judge(scenario, scenario_rows)
        for row in scenario_rows:
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return pd.DataFrame(rows)


def _row(scenario: str, entry: dict[str, Any], baseline: bool, impressions: int) -> Row:
    half, ratios = entry["second_half"], entry["vs_baseline"]
    return {"scenario": scenario, "policy": entry["policy"], "impressions": impressions,
            "click_rate": half["click_rate"], "click_ratio": ratios["click_rate"],
            "regret_per_list": half["regret_per_list"], "oracle_click_rate": half["oracle_click_rate"],
            "purchase_ratio": ratios["purchases"], "revenue_ratio": ratios["revenue"],
            "new_item_share": half["new_item_share"], "whole_click_rate": entry["whole"]["click_rate"],
            "baseline": baseline, "seconds": entry["seconds"]}


def _judge(scenario: str, rows: list[Row]) -> None:
    """Sets each row's ``target`` and ``target_met``: in new-items the best exploring policy's row says whether it
    reaches the ratio (the other rows None); in static each exploring policy's row says whether it does."""
    words, ratio = TARGETS.get(scenario, ("", None))
    exploring = [row for row in rows if not row["baseline"]]
    best = max(exploring, key=lambda row: row["click_ratio"] or 0.0, default=None)
    for row in rows:
        row["target"] = words
        judged = ratio is not None and not row["baseline"] and (scenario != "new-items" or row is best)
        row["target_met"] = bool((row["click_ratio"] or 0.0) >= ratio) if judged else None  # type: ignore[operator]


def describe(row: Row) -> str:
    """One line per row, as the benchmark prints them while it runs."""
    verdict = "" if row["target_met"] is None else ("  target met" if row["target_met"] else "  target MISSED")
    return (f"{row['scenario']:<9} {row['policy']:<40} click rate {row['click_rate']:.4f} "
            f"(x{row['click_ratio']:.3f})  regret/list {row['regret_per_list']:.4f}  new items "
            f"{row['new_item_share']:.3f}  ({row['seconds']:.0f} s){verdict}")
