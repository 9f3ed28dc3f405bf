"""`tailored experiments create|list|stop` as a user runs them: arms resolved in a real registry, one running
experiment per surface, every bad option refused with exit 2 and nothing created."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.experiments.design import Design, design_of
from tailored.experiments.status import arms_from_frame, experiment_status
from tailored.jobs.experiments import status_of
from tailored.pipeline.recommender import build_recommender
from tailored.registry.model_dir import save_model
from tailored.registry.versions import ModelRegistry
from tailored.store import EventStore
from tailored.store.database import Event, exposure_row
from tailored.store.experiments import create_experiment, experiment_totals, experiments
from tests.cli.helpers import cli, flat, ok


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A registry with shop v0001 (production) and v0002, and an empty store."""
    frame = pd.DataFrame({"user_id": [f"u{n % 7}" for n in range(40)], "item_id": [f"i{n % 11}" for n in range(40)]})
    save_model(build_recommender("popularity").fit(Dataset.from_frame(frame.drop_duplicates())), tmp_path / "model")
    registry = ModelRegistry(tmp_path / "registry")
    registry.register("shop", tmp_path / "model")
    registry.register("shop", tmp_path / "model")
    registry.promote("shop", "v0001")
    EventStore(f"sqlite:///{tmp_path / 'events.db'}").engine.dispose()
    return tmp_path


def created(shop: Path) -> list[dict]:
    return experiments(EventStore(f"sqlite:///{shop / 'events.db'}"))


def test_create_list_stop(shop: Path) -> None:
    db = f"sqlite:///{shop / 'events.db'}"
    result = ok(cli("experiments", "create", "--db", db, "--name", "ranker", "--arm", "control=shop@production",
                    "--arm", "treatment=shop@v0002", "--arm", "holdout=baseline", "--traffic", "45,45,10",
                    "--metric", "click_rate", "--guardrail", "p99_ms<=30", "--min-users", "500", cwd=shop))
    assert "started experiment 'ranker' on recommendations" in flat(result.stderr)  # messages go to stderr
    [row] = created(shop)
    assert row["status"] == "running" and row["design"]["min_users"] == 500
    assert [(arm["name"], arm["ref"], arm["share"]) for arm in row["design"]["arms"]] == [
        ("control", "shop@production", 45), ("treatment", "shop@v0002", 45), ("holdout", "baseline", 10)]
    again = cli("experiments", "create", "--db", db, "--name", "second", "--arm", "a=shop@v0001", "--arm",
                "b=shop@v0002", "--traffic", "50,50", "--metric", "conversion", cwd=shop)
    assert again.returncode == 2 and "ranker already runs on surface 'recommendations'" in flat(again.stderr)
    listed = flat(ok(cli("experiments", "list", "--db", db, cwd=shop)).stdout)
    assert "ranker" in listed and "running" in listed and "treatment=shop@v0002 45%" in listed
    excluded = ok(cli("experiments", "exclude", "--db", db, "--user", "u1", "--user", "u2", cwd=shop))
    assert "excluded 2 user(s)" in flat(excluded.stderr)
    assert "excluded 0 user(s) from experiments (1 already were)" in flat(
        ok(cli("experiments", "exclude", "--db", db, "--user", "u1", cwd=shop)).stderr)
    ok(cli("experiments", "stop", "--db", db, "--name", "ranker", "--reason", "enough", cwd=shop))
    assert created(shop)[0]["status"] == "stopped" and created(shop)[0]["stop_reason"] == "enough"
    ok(cli("experiments", "create", "--db", db, "--name", "second", "--arm", "a=shop@v0001", "--arm",
           "b=shop@v0002", "--traffic", "50,50", "--metric", "conversion", cwd=shop))


@pytest.mark.parametrize(("options", "message"), [
    (["--arm", "control=shop@production", "--arm", "treatment=shop@v0009", "--traffic", "50,50"],
     "--arm 'treatment=shop@v0009'"),
    (["--arm", "control=shop@production", "--arm", "treatment=shop@v0002", "--traffic", "60,50"],
     "the shares sum to 110, not 100"),
    (["--arm", "control=nope@production", "--arm", "treatment=shop@v0002", "--traffic", "50,50"],
     "No version of 'nope' is at 'production'"),
])
def test_bad_options_exit_2_and_create_nothing(shop: Path, options: list[str], message: str) -> None:
    result = cli("experiments", "create", "--db", f"sqlite:///{shop / 'events.db'}", "--name", "bad",
                 "--metric", "click_rate", *options, cwd=shop)
    assert result.returncode == 2 and message in flat(result.stderr)
    assert created(shop) == []


def test_a_missing_database_is_refused_not_created(shop: Path) -> None:
    result = cli("experiments", "list", "--db", f"sqlite:///{shop / 'typo.db'}", cwd=shop)
    assert result.returncode == 2 and not (shop / "typo.db").exists()


def fill_experiment(db: str, name: str, click_rates: dict[str, float], latency: dict[str, float],
                    users: int = 3000, lists: int = 3, seed: int = 0) -> dict[str, dict[str, float]]:
    """Serve ``lists`` lists to each of ``users`` users in their arm of experiment ``name`` (as the design assigns
    them), clicked with each arm's probability; returns each arm's true users, lists and clicks."""
    store = EventStore(db)
    design = Design.from_json(experiments(store, name)[0]["design"])
    rng = np.random.default_rng(seed)
    user_ids = np.array([f"user-{index}" for index in range(users)])
    arms = design.assignment().assign(user_ids)
    rows, events, truth = [], [], {arm.name: {"users": 0, "lists": 0, "clicks": 0} for arm in design.arms}
    for user, arm in zip(user_ids, arms, strict=True):
        truth[arm]["users"] += 1
        for _ in range(lists):
            row = exposure_row(user, "m", ["i1", "i2"], experiment=name, arm=arm,
                               latency_ms=float(rng.uniform(0, latency[arm])))
            rows.append(row)
            truth[arm]["lists"] += 1
            if rng.random() < click_rates[arm]:
                truth[arm]["clicks"] += 1
                events.append(Event(f"e{len(events)}", user, "i1", "click", None, row["created_at"] + 1,
                                    row["exposure_id"]))
    store.log_exposures(rows)
    store.append_events(events)
    store.engine.dispose()
    return truth


def test_status_reports_each_arms_true_figures_and_ships_a_clear_winner(shop: Path) -> None:
    db = f"sqlite:///{shop / 'events.db'}"
    ok(cli("experiments", "create", "--db", db, "--name", "ranker", "--arm", "control=shop@production", "--arm",
           "treatment=shop@v0002", "--traffic", "50,50", "--metric", "click_rate", "--guardrail", "p99_ms<=30",
           "--min-users", "500", cwd=shop))
    truth = fill_experiment(db, "ranker", {"control": 0.10, "treatment": 0.16}, {"control": 20, "treatment": 25},
                           users=6000)
    ok(cli("experiments", "status", "--db", db, "--name", "ranker", "--output", shop / "status.json", cwd=shop))
    report = json.loads((shop / "status.json").read_text())
    for arm, figures in truth.items():
        assert report["arms"][arm]["users"] == figures["users"] and report["arms"][arm]["exposures"] == figures["lists"]
        rate = report["arms"][arm]["click_rate"]
        assert rate["value"] == pytest.approx(figures["clicks"] / figures["lists"])
        assert rate["ci"][0] < rate["value"] < rate["ci"][1]
        assert 0 < report["arms"][arm]["p99_ms"] <= 25
    lift = report["lift"]["treatment"]["click_rate"]
    true_lift = (truth["treatment"]["clicks"] / truth["treatment"]["lists"]) / (
        truth["control"]["clicks"] / truth["control"]["lists"]) - 1
    assert lift["value"] == pytest.approx(true_lift) and lift["ci"][0] > 0 and lift["p_value"] < 0.05
    assert report["decision"] == "ship" and report["srm_p_value"] > 0.001
    assert report["guardrails"] == [{"guardrail": "p99_ms<=30", "breached_by": []}]


def test_a_slow_treatment_is_rolled_back_by_its_latency_guardrail(shop: Path) -> None:
    db = f"sqlite:///{shop / 'events.db'}"
    ok(cli("experiments", "create", "--db", db, "--name", "slow", "--arm", "control=shop@production", "--arm",
           "treatment=shop@v0002", "--traffic", "50,50", "--metric", "click_rate", "--guardrail", "p99_ms<=30",
           cwd=shop))
    fill_experiment(db, "slow", {"control": 0.10, "treatment": 0.16}, {"control": 20, "treatment": 60}, users=400)
    report = status_of(EventStore(db), "slow")
    assert report["arms"]["treatment"]["p99_ms"] > 30
    assert report["decision"] == "roll back: p99_ms<=30 breached by treatment"


def test_cuped_narrows_the_revenue_interval_with_the_spend_before_the_experiment(tmp_path: Path) -> None:
    """Users who spent before the experiment spend during it: the status's CUPED (covariate: the store's purchase
    value in the 28 days before the first list) gives a revenue-per-user lift interval narrower than without."""
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    design = design_of("spend", ["control=shop@v0001", "treatment=shop@v0002"], "50,50", "revenue_per_user")
    create_experiment(store, "spend", "recommendations", design.to_json())
    rng = np.random.default_rng(1)
    users = np.array([f"user-{index}" for index in range(1_500)])
    arms, wealth = design.assignment().assign(users), rng.lognormal(3.0, 0.8, len(users))
    now = time.time()
    rows = [exposure_row(user, "m", ["i1"], experiment="spend", arm=arm) for user, arm in zip(users, arms, strict=True)]
    store.log_exposures(rows)
    before = [Event(f"pre-{user}", user, "i9", "purchase", float(value), now - 10 * 86_400)
              for user, value in zip(users, wealth * rng.lognormal(0.0, 0.3, len(users)), strict=True)]
    during = [Event(f"in-{user}", user, "i1", "purchase", float(value), row["created_at"] + 5, row["exposure_id"])
              for user, value, row in zip(users, wealth * rng.lognormal(0.0, 0.3, len(users)), rows, strict=True)]
    store.append_events(before + during)
    report = status_of(store, "spend")
    plain = experiment_status("spend", arms_from_frame(experiment_totals(store, "spend")),
                              {"control": 0.5, "treatment": 0.5}, metric="revenue_per_user")
    assert report["cuped"]["applied"] is True and plain["arms"]["control"]["users"] == (arms == "control").sum()

    def width(status: dict) -> float:
        low, high = status["lift"]["treatment"]["revenue_per_user"]["ci"]
        return high - low

    assert width(report) < 0.8 * width(plain)
