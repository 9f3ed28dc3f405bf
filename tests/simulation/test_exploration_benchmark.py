"""`tailored benchmark exploration`'s table: one row per (scenario, policy), ratios against the first policy, the
targets judged on the second half."""

from __future__ import annotations

import pytest

from tailored.benchmarks.exploration import describe, exploration_benchmark


def test_rows_ratios_and_targets() -> None:
    printed: list[str] = []
    table = exploration_benchmark(["greedy", "uniform"], impressions=400, users=200,
                                  items=150, on_row=lambda row: printed.append(describe(row)))
    assert list(table["scenario"]) == ["new-items"] * 2 + ["static"] * 2 and len(printed) == 4
    assert (table.loc[table["baseline"], "click_ratio"] == 1.0).all()
    static = table[table["scenario"] == "static"].set_index("policy")
    assert static.loc["uniform", "click_ratio"] == pytest.approx(static.loc["uniform", "click_rate"]
                                                                 / static.loc["greedy", "click_rate"])
    # uniform is far below greedy: the static target (>= 0.97x) is missed, and said so
    assert static.loc["uniform", "target_met"] is False and "target MISSED" in printed[3]
    new_items = table[table["scenario"] == "new-items"]
    assert new_items["target_met"].tolist() == [None, False]  # the best exploring policy is judged there
    assert (table["regret_per_list"] > 0).all() and (table["click_rate"] < table["oracle_click_rate"]).all()
