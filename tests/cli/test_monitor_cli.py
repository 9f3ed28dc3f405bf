"""`tailored monitor daily|training` as a user runs them (typer's runner on the group, which the lead registers as
`tailored monitor`): figures and alerts stored once per day however often it runs, bad options exit 2 storing
nothing."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tailored.cli.monitor import app
from tailored.monitoring.daily import DAY_SECONDS, day_of
from tailored.store import EventStore
from tailored.store.monitoring import alerts, daily_rows
from tests.monitoring.test_alerts import CHANGE_DAY, FIRST, RULES, simulate

RUNNER = CliRunner()


@pytest.fixture
def shop(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    simulate(store, hide=True)
    (tmp_path / "alerts.toml").write_text(RULES)
    yield store
    store.engine.dispose()


def test_daily_stores_each_day_once_and_its_alerts(shop, tmp_path) -> None:
    days = [day_of(FIRST + day * DAY_SECONDS) for day in range(CHANGE_DAY + 1)]
    options = ["daily", "--db", shop.url, "--alerts", str(tmp_path / "alerts.toml")]
    for _ in range(2):
        result = RUNNER.invoke(app, options + [arg for day in days for arg in ("--day", day)])
        assert result.exit_code == 0, result.output
    assert "stored 8 day(s)" in result.output and "1 alert(s) from 3 rule(s)" in result.output
    stored = daily_rows(shop)
    assert sorted(set(stored["day"])) == days and not stored.duplicated(["day", "metric", "kind", "key"]).any()
    assert [(each["day"], each["rule"]) for each in alerts(shop)] == [(days[-1], "category shown")]


@pytest.mark.parametrize(("options", "message"), [
    (["--day", "2026-02-30"], "--day '2026-02-30' is not a date"),
    (["--alerts", "missing.toml"], "Alert rules file missing.toml not found"),
    (["--window-hours", "0"], "--window-hours must be a positive number"),
])
def test_daily_refuses_bad_options_storing_nothing(shop, tmp_path, monkeypatch, options, message) -> None:
    monkeypatch.chdir(tmp_path)
    result = RUNNER.invoke(app, ["daily", "--db", shop.url, *options])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert daily_rows(shop).empty
