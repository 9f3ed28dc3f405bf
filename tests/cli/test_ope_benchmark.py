"""`tailored benchmark ope --logging-policy`: the accuracy run evaluates the log of the logging policy it is given."""

from __future__ import annotations

import pytest

from tailored.benchmarks.ope import accuracy, accuracy_summary


def test_the_accuracy_run_evaluates_the_given_logging_policys_log() -> None:
    from tailored.simulation.run import simulate
    from tailored.simulation.world import world_of

    table = accuracy(seeds=1, impressions=300, logging="thompson", targets=("greedy", "thompson"),
                     estimators=("snips",), samples=50)
    logged = simulate(world_of("static", 0), ["thompson"], impressions=300, seed=0).runs[0]
    assert table["logging_rate"].iloc[0] == pytest.approx(float(logged.clicks.mean()))
    on_policy = table.set_index("target").loc["thompson"]
    assert on_policy["online"] == pytest.approx(float(logged.clicks.mean()))
    summary = accuracy_summary(table)
    assert list(summary["target"]) == ["greedy", "thompson"] and (summary["seeds"] == 1).all()
