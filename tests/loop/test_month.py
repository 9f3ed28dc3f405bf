"""The simulated month at small scale: the loop cycles every day, a corrupted candidate never serves beyond its
canary, and the figures are those of the runs."""

from __future__ import annotations

import pytest

from tailored.benchmarks.loop import MonthSpec, loop_month

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("gate", "fate"), [(-0.3, "caught offline"), (-1.0, "stopped by the canary")])
def test_a_small_month(gate: float, fate: str) -> None:
    spec = MonthSpec(users=400, items=300, days=5, lists_per_day=1500, corrupt_day=1, canary_share=20,
                     canary_min_users=30, canary_max_cycles=1, gate_min_gain=gate)
    result = loop_month(spec, say=lambda line: None)
    loop = result["loop"]
    assert len(loop["cycles"]) == spec.days and loop["audit_rows"] >= 3 * spec.days
    assert loop["corrupted_candidate"]["caught"].startswith(fate)
    assert loop["corrupted_candidate"]["max_daily_share"] <= 0.3  # its canary's users only (20 % of them)
    assert sum(loop["version_shares"].values()) == pytest.approx(1.0)
    for arm in ("never", "daily", "loop"):
        assert 0 < result[arm]["click_rate"] < spec.k and len(result[arm]["daily_click_rate"]) == spec.days
    assert result["never"]["daily_click_rate"][0] == result["daily"]["daily_click_rate"][0]  # same first model
    assert result["loop_vs_daily"] == pytest.approx(result["loop"]["click_rate"] / result["daily"]["click_rate"] - 1)
