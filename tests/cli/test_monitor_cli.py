"""`tailored monitor daily|training` as a user runs them (typer's runner on the group, which the lead registers as
`tailored monitor`): figures and alerts stored once per day however often it runs, bad options exit 2 storing
nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tailored.cli.monitor import app
from tailored.data.dataset import Dataset
from tailored.monitoring.daily import DAY_SECONDS, day_of
from tailored.pipeline.recommender import build_recommender
from tailored.registry.model_dir import save_model
from tailored.store import EventStore
from tailored.store.monitoring import alerts, daily_rows, trainings
from tests.monitoring.test_alerts import CHANGE_DAY, FIRST, RULES, simulate
from tests.monitoring.test_training import PAIRS

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
    (["--alerts", "missing.toml"], "Alert rules file missing.toml does not exist"),
    (["--window-hours", "0"], "--window-hours must be a positive number"),
])
def test_daily_refuses_bad_options_storing_nothing(shop, tmp_path, monkeypatch, options, message) -> None:
    monkeypatch.chdir(tmp_path)
    result = RUNNER.invoke(app, ["daily", "--db", shop.url, *options])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert daily_rows(shop).empty


def test_training_records_each_training_with_its_difference(shop, tmp_path) -> None:
    frame = pd.DataFrame([(user, item) for user, items in PAIRS.items() for item in items],
                         columns=["user_id", "item_id"])
    save_model(build_recommender("popularity").fit(Dataset.from_frame(frame)), tmp_path / "shop-model")
    (tmp_path / "test.csv").write_text("user_id,item_id\nu2,i1\nu3,i2\n")
    options = ["training", "--db", shop.url, "--model-dir", str(tmp_path / "shop-model"), "--test",
               str(tmp_path / "test.csv"), "--metric", "mrr@10", "--bootstrap", "50"]
    for _ in range(2):
        result = RUNNER.invoke(app, options)
        assert result.exit_code == 0, result.output
    assert "recorded training of 'shop-model'" in result.output and "0.7500" in result.output
    records = trainings(shop, model="shop-model")
    assert len(records) == 2 and records[1]["diff"]["mrr@10"] == 0.0
    bias = records[0]["bias"]  # the store's attributes: u0-u3 in segment a, i0-i2 in categories c0-c2
    assert bias["segments"] == {"a": 1.0} and bias["categories"] == pytest.approx({"c0": 4 / 7, "c1": 2 / 7,
                                                                                  "c2": 1 / 7})


@pytest.mark.parametrize(("options", "message"), [
    (["--test", "missing.csv"], "--test missing.csv: no such file"),
    (["--metric", "ndgc@10"], "ndgc@10"),
    (["--model-dir", "nowhere"], "nowhere is not a tailored model directory"),
])
def test_training_refuses_bad_options_storing_nothing(shop, tmp_path, monkeypatch, options, message) -> None:
    monkeypatch.chdir(tmp_path)
    frame = pd.DataFrame({"user_id": ["u0", "u1"], "item_id": ["i0", "i1"]})
    save_model(build_recommender("popularity").fit(Dataset.from_frame(frame)), tmp_path / "model")
    result = RUNNER.invoke(app, ["training", "--db", shop.url, "--model-dir", "model", *options])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert trainings(shop) == []


def test_the_group_alone_with_output_runs_the_report_command(shop, tmp_path, monkeypatch) -> None:
    """`tailored monitor --db URL --since D --output report.html` (the contract) is `tailored monitor report ...`."""
    called = {}

    def report(db: str = "", since: str | None = None, output: Path = Path("report.html")) -> None:
        called.update(db=db, since=since, output=output)

    others = [each for each in app.registered_commands if each.name != "report"]
    monkeypatch.setattr(app, "registered_commands", others)
    result = RUNNER.invoke(app, ["--db", shop.url, "--output", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "no `monitor report` command" in " ".join(result.output.split())
    app.command("report")(report)
    result = RUNNER.invoke(app, ["--db", shop.url, "--since", "2026-03-02", "--output", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert called == {"db": shop.url, "since": "2026-03-02", "output": tmp_path / "r.html"}
    assert RUNNER.invoke(app, ["--output", "r.html", "daily", "--db", shop.url]).exit_code == 2
