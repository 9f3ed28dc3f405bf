"""Daily production figures against values computed by hand on a small store; stored days are replaced, not doubled;
the snapshot reads them back as plain JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tailored.errors import ConfigError
from tailored.monitoring.daily import daily_figures, day_start, default_days, parse_day
from tailored.monitoring.drift import population_stability_index
from tailored.monitoring.snapshot import snapshot
from tailored.store.database import Event
from tailored.store.monitoring import daily_rows, write_daily
from tests.monitoring.conftest import shown

DAY = "2026-01-10"
S = day_start(DAY)


@pytest.fixture
def world(any_events):
    """Day D: 4 lists (8 positions) to u1 (segment a), u2 (b), u3 (none); the day before: 3 lists; see the figures."""
    events = any_events
    for item, category in (("i1", "books"), ("i2", "books"), ("i3", "toys"), ("i4", "toys"), ("i5", "food")):
        events.put_item(item, {"category": category})
    events.put_user("u1", {"segment": "a"})
    events.put_user("u2", {"segment": "b"})
    shown(events, "b1", "u1", ["i1", "i2"], S - 1000)
    shown(events, "b2", "u2", ["i1", "i5"], S - 2000)
    shown(events, "b3", "u1", ["i1", "i2"], S - 900)
    shown(events, "e1", "u1", ["i1", "i2", "i3"], S + 100, latency_ms=10.0)
    shown(events, "e2", "u1", ["i1", "i4"], S + 200, latency_ms=20.0, context={"fallback": True})
    shown(events, "e3", "u2", ["i2", "i3"], S + 300, latency_ms=30.0, propensities=[0.5, 0.25], policy="eps")
    shown(events, "e4", "u3", ["i6"], S + 400)
    views = [Event(f"v{n}", "u1", "i1", "view", timestamp=S - 500 + n) for n in range(4)]
    events.append_events(views + [
        Event("v9", "u1", "i2", "view", timestamp=S - 200),
        Event("c1", "u1", "i1", "click", timestamp=S + 150, exposure_id="e1"),
        Event("p1", "u1", "i1", "purchase", value=30.0, timestamp=S + 160, exposure_id="e1"),
        Event("c2", "u2", "i3", "click", timestamp=S + 350),
        Event("p2", "u2", "i9", "purchase", value=70.0, timestamp=S + 500),
    ])
    return events


def test_a_days_figures_equal_the_hand_computed_ones(world) -> None:
    rows = daily_figures(world, [DAY])
    overall = rows[rows["kind"] == ""].set_index("metric")["value"]
    expected = {"impressions": 8, "lists": 4, "users": 3, "click_rate": 2 / 4, "conversion": 1 / 3, "revenue": 30.0,
                "average_basket": 30.0, "sales_share": 30 / 100, "coverage": 4 / 5,
                "exposure_gini": 14 / 48,  # counts 0,1,1,2,2,2 over the catalogue and i6
                "long_tail_share": 6 / 8,  # head: i1 (4 of the 5 baseline events)
                "new_item_share": 4 / 8,  # i3, i4, i6 first shown on D
                "fallback_rate": 1 / 4, "latency_p50_ms": 20.0, "latency_p99_ms": 29.8}
    for name, value in expected.items():
        assert overall[name] == pytest.approx(value), name
    # baseline: u1 2 lists, u2 1 list; D: u1 2, u2 1, u3 1 (log2 buckets 1, 2-3, ...)
    assert overall["psi_users"] == pytest.approx(population_stability_index([1, 1, 0, 0, 0, 0], [2, 1, 0, 0, 0, 0]))
    # baseline impressions i1 3, i2 2, i5 1 -> deciles 0, 5, 8; D: i1 2, i2 2, new items 4
    expected_items, actual_items = np.zeros(11), np.zeros(11)
    expected_items[[0, 5, 8]], actual_items[[0, 5, 10]] = [3, 2, 1], [2, 2, 4]
    assert overall["psi_items"] == pytest.approx(population_stability_index(expected_items, actual_items))
    assert np.isnan(overall["psi_scores"])  # no list kept its scores (logged as before revision 0007)
    groups = rows[rows["kind"] != ""].set_index(["kind", "key", "metric"])["value"]
    assert groups["segment"].to_dict() == pytest.approx({
        ("a", "exposure_share"): 5 / 8, ("b", "exposure_share"): 2 / 8, ("(none)", "exposure_share"): 1 / 8,
        ("a", "click_rate"): 1 / 2, ("b", "click_rate"): 1.0, ("(none)", "click_rate"): 0.0})
    category = groups["category"]
    assert category[("books", "exposure_share")] == 0.5 and category[("toys", "exposure_share")] == 3 / 8
    assert category[("books", "click_rate")] == pytest.approx(1 / 3)  # 1 click, 3 lists showing books
    assert category[("toys", "click_rate")] == pytest.approx(1 / 3)
    assert category[("food", "exposure_share")] == 0.0 and np.isnan(category[("food", "click_rate")])  # not shown


def test_a_day_without_lists_has_counts_zero_and_no_rates(world) -> None:
    overall = daily_figures(world, ["2026-01-20"]).query("kind == ''").set_index("metric")["value"]
    assert overall["impressions"] == 0 and overall["lists"] == 0
    assert overall[["click_rate", "conversion", "average_basket", "latency_p50_ms", "psi_users"]].isna().all()


def test_recomputing_a_day_replaces_its_rows_and_the_snapshot_is_plain_json(world) -> None:
    days = ["2026-01-09", DAY]
    rows = daily_figures(world, days)
    assert write_daily(world, days, rows) == len(rows)
    assert write_daily(world, days, rows) == len(rows)
    assert len(daily_rows(world)) == len(rows)
    got = snapshot(world)
    json.dumps(got, allow_nan=False)
    assert [each["day"] for each in got["daily"]] == days
    today = got["daily"][1]
    assert today["impressions"] == 8 and isinstance(today["impressions"], int) and today["click_rate"] == 0.5
    assert got["daily"][0]["lists"] == 3 and got["daily"][0]["psi_users"] is None  # nothing before the 9th
    food = [each for each in got["groups"] if each["day"] == DAY and each["key"] == "food"]
    assert food == [{"day": DAY, "kind": "category", "key": "food", "exposure_share": 0.0, "click_rate": None}]
    assert snapshot(world, since=S)["daily"] == [today]


def test_an_erased_users_lists_leave_the_recomputed_day(world) -> None:
    world.erase_user("u2")
    overall = daily_figures(world, [DAY]).query("kind == ''").set_index("metric")["value"]
    assert overall["lists"] == 3 and overall["users"] == 2 and overall["click_rate"] == pytest.approx(1 / 3)


def test_a_malformed_day_is_refused_naming_the_option() -> None:
    with pytest.raises(ConfigError, match="--day '2026-13-01' is not a date"):
        parse_day("2026-13-01")


def test_the_job_computes_yesterday_and_the_day_before_by_default() -> None:
    assert default_days(day_start("2026-03-01") + 60) == ["2026-02-27", "2026-02-28"]  # UTC, across a month end
