"""Alert rules: parsed with errors naming the file, rule and field; evaluated on stored daily figures, a simulated
world where one segment's click rate collapses, or one category stops being shown, raises the matching alert on that
very day, and a stable world raises none."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.errors import ConfigError
from tailored.monitoring.alerts import Rule, evaluate, evaluate_day, load_rules
from tailored.monitoring.daily import DAY_SECONDS, daily_figures, day_of, day_start
from tailored.store.database import Event, exposure_row
from tailored.store.monitoring import add_alert, alerts, write_daily

RULES = """
[[rule]]
name = "segment click rate"
metric = "click_rate"
kind = "segment"
change = -0.5
severity = "critical"

[[rule]]
name = "category shown"
metric = "exposure_share"
kind = "category"
change = -0.5
baseline_days = 5

[[rule]]
name = "click rate floor"
metric = "click_rate"
op = ">="
value = 0.1
"""
FIRST = day_start("2026-03-01")
DAYS = 10
CHANGE_DAY = 7


def simulate(store, collapse: bool = False, hide: bool = False, seed: int = 0) -> None:
    """10 days of 200 lists of 5 items (categories c0-c2) to 60 users (segments a, b); the top item is clicked
    with probability 0.4 -- 0.02 for segment b from day 7 when ``collapse``; category c2 unshown from day 7 when
    ``hide``."""
    rng = np.random.default_rng(seed)
    for user in range(60):
        store.put_user(f"u{user}", {"segment": "a" if user < 30 else "b"})
    for item in range(30):
        store.put_item(f"i{item}", {"category": f"c{item % 3}"})
    rows, clicks = [], []
    for day in range(DAYS):
        pool = np.array([item for item in range(30) if not (hide and day >= CHANGE_DAY and item % 3 == 2)])
        users = rng.integers(0, 60, 200)
        times = FIRST + day * DAY_SECONDS + rng.uniform(0, 80_000, 200)
        chance = np.where(collapse & (day >= CHANGE_DAY) & (users >= 30), 0.02, 0.4)
        clicked = rng.random(200) < chance
        for number in range(200):
            items = [f"i{item}" for item in rng.choice(pool, 5, replace=False)]
            exposure = f"d{day}n{number}"
            rows.append(exposure_row(f"u{users[number]}", "m1", items, exposure_id=exposure)
                        | {"created_at": times[number]})
            if clicked[number]:
                clicks.append(Event(f"c{exposure}", f"u{users[number]}", items[0], "click",
                                    timestamp=times[number] + 10, exposure_id=exposure))
    store.log_exposures(rows)
    store.append_events(clicks)


def daily_cycles(store, tmp_path) -> pd.DataFrame:
    """Each day: its figures stored, then the rules evaluated (as the daily job does); the alerts raised."""
    (tmp_path / "alerts.toml").write_text(RULES)
    rules = load_rules(tmp_path / "alerts.toml")
    for day in range(DAYS):
        name = day_of(FIRST + day * DAY_SECONDS)
        write_daily(store, [name], daily_figures(store, [name]))
        evaluate_day(store, rules, name)
    return pd.DataFrame(alerts(store), columns=["at", "day", "rule", "severity", "message", "value"])


def test_a_stable_world_raises_no_alert(events, tmp_path) -> None:
    simulate(events)
    assert daily_cycles(events, tmp_path).empty


def test_a_segments_collapsing_click_rate_raises_its_alert_that_day(events, tmp_path) -> None:
    simulate(events, collapse=True)
    raised = daily_cycles(events, tmp_path)
    # from that day on (the trailing mean still holds the days before), for segment b only
    assert raised["day"].min() == day_of(FIRST + CHANGE_DAY * DAY_SECONDS) and set(raised["rule"]) == {
        "segment click rate"}
    assert raised["message"].str.contains("segment 'b'").all() and (raised["severity"] == "critical").all()
    assert (raised["value"] < 0.1).all()


def test_a_category_no_longer_shown_raises_its_alert_that_day(events, tmp_path) -> None:
    simulate(events, hide=True)
    raised = daily_cycles(events, tmp_path)
    assert raised["day"].tolist() == [day_of(FIRST + day * DAY_SECONDS) for day in range(CHANGE_DAY, DAYS)]
    assert set(raised["rule"]) == {"category shown"} and raised["message"].str.contains("category 'c2'").all()
    assert (raised["value"] == 0.0).all()


def test_re_evaluating_a_day_raises_its_alerts_once_and_keeps_other_alerts(events, tmp_path) -> None:
    simulate(events, hide=True)
    daily_cycles(events, tmp_path)
    add_alert(events, day_of(FIRST + CHANGE_DAY * DAY_SECONDS), "loop: quality", "critical", "rows rejected")
    evaluate_day(events, load_rules(tmp_path / "alerts.toml"), day_of(FIRST + CHANGE_DAY * DAY_SECONDS))
    day = day_of(FIRST + CHANGE_DAY * DAY_SECONDS)
    assert sorted(each["rule"] for each in alerts(events) if each["day"] == day) == ["category shown", "loop: quality"]



def test_thresholds_and_changes_on_hand_made_figures() -> None:
    rows = pd.DataFrame({"day": ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-03"],
                         "metric": ["latency_p99_ms"] * 4, "kind": "", "key": "",
                         "value": [10.0, 20.0, 31.0, np.nan]}).iloc[:3]
    ceiling = Rule("p99", "latency_p99_ms", op="<=", value=30.0)
    rise = Rule("p99 rise", "latency_p99_ms", change=1.0, baseline_days=2)  # mean 15 -> 31: +107 %
    steep = Rule("p99 steep", "latency_p99_ms", change=1.2, baseline_days=2)
    raised = evaluate(rows, [ceiling, rise, steep], "2026-01-03")
    assert [each["rule"] for each in raised] == ["p99", "p99 rise"]
    assert raised[0]["message"] == "p99: latency_p99_ms must be <= 30, got 31"
    assert "15 -> 31" in raised[1]["message"] and raised[1]["value"] == 31.0
    assert evaluate(rows, [ceiling], "2026-01-02") == []  # 20 <= 30


@pytest.mark.parametrize(("text", "message"), [
    ("[[rule]]\nmetric = 'click_rate'\nop = '>='\nvalue = 1", r"rule 1: field 'name'"),
    ("[[rule]]\nname = 'x'\nmetric = 'clicks'\nop = '>='\nvalue = 1", r"rule 1 \(x\): field 'metric' must be one of"),
    ("[[rule]]\nname = 'x'\nmetric = 'click_rate'\nop = '>'\nvalue = 1", r"rule 1 \(x\): field 'op'"),
    ("[[rule]]\nname = 'x'\nmetric = 'click_rate'\nop = '>='\nvalue = 'high'", r"\(x\): field 'value' must be a fin"),
    ("[[rule]]\nname = 'x'\nmetric = 'click_rate'\nop = '>='\nvalue = 1\nchange = -0.2", "either 'op' and 'value'"),
    ("[[rule]]\nname = 'x'\nmetric = 'click_rate'\nchange = -0.2\nbaseline_days = 0", r"field 'baseline_days'"),
    ("[[rule]]\nname = 'x'\nmetric = 'click_rate'\nchange = 0", r"field 'change'"),
    ("[[rule]]\nname = 'x'\nmetric = 'coverage'\nkind = 'segment'\nchange = -0.2", r"for kind 'segment'"),
    ("[[rule]]\nname = 'x'\nmetric = 'click_rate'\nkind = 'country'\nchange = -0.2", r"field 'kind'"),
    ("[[rule]]\nname = 'x'\nmetric = 'click_rate'\nkey = 'a'\nchange = -0.2", r"field 'key'"),
    ("[[rule]]\nname = 'x'\nmetric = 'click_rate'\nchange = -0.2\nlevel = 1", r"unknown field\(s\) \['level'\]"),
    ("[[rule]]\nname = 'x'\nmetric = 'click_rate'\nchange = -0.2\n[[rule]]\nname = 'x'\nmetric = 'revenue'\n"
     "change = -0.2", "rule name 'x' is used twice"),
    ("[[rule]\n", "is not valid TOML"),
])
def test_malformed_rules_are_refused_naming_the_file_rule_and_field(tmp_path, text, message) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        load_rules(path)
    assert str(path) in str(error.value)
