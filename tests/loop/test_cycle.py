"""Cycles on a small drifting world: first model, canary, promote on a win, roll back on a loss, the offline gate,
the quality stop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailored.data.columns import ITEM_ID, TIMESTAMP
from tailored.experiments.design import Design
from tailored.loop.config import LoopConfig
from tailored.loop.cycle import Loop, timeout_action
from tailored.registry.model_dir import read_manifest
from tailored.simulation.world import START
from tailored.store.database import Event, EventStore, exposure_row
from tailored.store.experiments import experiments
from tailored.store.monitoring import alerts, trainings
from tests.loop.conftest import store_clicks, with_gate


def started(config: LoopConfig, world_clicks: pd.DataFrame) -> Loop:
    """A loop whose first cycle promoted v0001 on the days before the last three, then saw those three days."""
    store = EventStore(config.data.db)
    cut = START - 3 * 86_400
    store_clicks(store, world_clicks[world_clicks[TIMESTAMP] <= cut], "a")
    loop = Loop(config)
    first = loop.run_cycle()
    assert [step["step"] for step in first["steps"]][-2:] == ["register", "promote"]
    assert loop.registry.current("shop", "production") == "v0001"
    store_clicks(store, world_clicks[world_clicks[TIMESTAMP] > cut], "b")
    return loop


def test_a_candidate_is_registered_and_canaried_at_the_configured_share(config, world_clicks) -> None:
    loop = started(config, world_clicks)
    report = loop.run_cycle()
    steps = [step["step"] for step in report["steps"]]
    assert steps == ["read", "quality", "drift", "train", "evaluate", "register", "canary"]
    assert report["phase"] == "canary" and loop.registry.versions("shop") == ["v0001", "v0002"]
    design = Design.from_json(experiments(loop.store, "shop-v0002")[0]["design"])
    assert [(arm.name, arm.ref, arm.share) for arm in design.arms] == [
        ("control", "shop@production", 50), ("treatment", "shop@v0002", 50)]
    sample = loop.state()["work"]["folder"] + "/sample.csv"
    frozen = pd.read_csv(sample)
    assert frozen[TIMESTAMP].min() > loop.state()["clock"] - 86_400  # the last day only, never trained on
    window = pd.read_csv(loop.state()["work"]["folder"] + "/window.csv")
    assert window[TIMESTAMP].max() <= frozen[TIMESTAMP].min()
    actions = [row["action"] for row in loop.audit_trail()]
    assert actions[-4:] == ["loop:train", "loop:evaluate", "loop:register", "loop:canary"]
    folder = Path(loop.state()["work"]["folder"])
    registered = read_manifest(loop.registry.root / "shop" / "v0002")  # [test] refit: the last window_days
    refit = pd.read_csv(folder / "refit.csv")
    assert refit[TIMESTAMP].min() > loop.state()["clock"] - config.data.window_days * 86_400
    assert refit[TIMESTAMP].max() == frozen[TIMESTAMP].max() and set(frozen[TIMESTAMP]) <= set(refit[TIMESTAMP])
    assert registered["n_interactions"] == len(refit) != read_manifest(folder / "candidate")["n_interactions"]
    waiting = loop.run_cycle()  # nothing served yet: the canary keeps running, no second candidate
    assert [step["step"] for step in waiting["steps"]] == ["decide"] and waiting["phase"] == "canary"
    assert waiting["steps"][0]["decision"].startswith("keep running")


def serve(loop: Loop, winner: str, lists: int = 3, rates: tuple[float, float] = (0.8, 0.4), users: int = 300,
          seed: int = 5) -> None:
    """Lists of the running canary to ``users`` users, the ``winner`` arm's users clicking each with the first of
    ``rates``, the other arm's with the second."""
    name = loop.state()["work"]["experiment"]
    design = Design.from_json(experiments(loop.store, name)[0]["design"])
    ids = np.array([f"u{index:06d}" for index in range(users)], dtype=object)
    arms = design.assignment().assign(ids)
    rng = np.random.default_rng(seed)
    now = START + 100.0  # just after the world's data: the loop's clock moves on by minutes
    exposures, events = [], []
    for user, arm in zip(ids, arms, strict=True):
        for number in range(lists):
            exposure = exposure_row(user, "v", ["i000001", "i000002"], experiment=name, arm=str(arm)) | {
                "created_at": now}
            exposures.append(exposure)
            clicks = rng.random() < (rates[0] if arm == winner else rates[1])
            if clicks:
                events.append(Event(f"{name}-{user}-{number}", user, "i000001", "click", 1.0, now + 1 + number,
                                    exposure["exposure_id"]))
    loop.store.log_exposures(exposures)
    loop.store.append_events(events)


def test_a_winning_canary_is_promoted_and_a_losing_one_rolled_back(config, world_clicks, tmp_path) -> None:
    loop = started(replace(config, canary=replace(config.canary, max_cycles=1)), world_clicks)
    loop.run_cycle()
    serve(loop, winner="treatment")
    report = loop.run_cycle()
    assert report["steps"][0]["decision"] == "ship" and report["steps"][1]["step"] == "promote"
    assert loop.registry.current("shop", "production") == "v0002"
    assert experiments(loop.store, "shop-v0002")[0]["status"] == "stopped"
    assert report["phase"] == "canary", report["steps"][2:]  # the same cycle went on: a new candidate, canaried
    serve(loop, winner="control")
    lost = loop.run_cycle()
    assert lost["steps"][0]["decision"].startswith("roll back") and lost["steps"][1]["step"] == "roll back"
    assert loop.registry.current("shop", "production") == "v0002"  # the champion kept serving
    trail = [(change["action"], change["version"], change["by"]) for change in loop.registry.changes("shop")]
    assert trail == [("promote", "v0001", "tailored loop"), ("promote", "v0002", "tailored loop")]
    assert "canary shop-v0002: ship" in loop.registry.changes("shop")[1]["reason"]
    stopped = experiments(loop.store, "shop-v0003")[0]
    assert stopped["status"] == "stopped" and stopped["stop_reason"].startswith("loop: roll back")


@pytest.mark.parametrize(("rule", "lift", "low", "high", "action"), [
    ("promote", -0.03, -0.14, 0.08, "promote"),  # a near tie the canary cannot resolve: the fresher model
    ("promote", -0.05, -0.06, -0.04, "stop"),  # shown worse
    ("promote", -0.12, -0.30, 0.06, "stop"),  # an observed loss beyond the margin
    ("non-inferior", -0.03, -0.14, 0.08, "stop"),  # loss not bounded within the margin
    ("non-inferior", -0.05, -0.06, -0.04, "promote"),  # worse, but by less than the margin
    ("stop", 0.10, 0.05, 0.15, "stop"), ("promote", None, None, None, "stop")])
def test_the_timeout_rules(rule: str, lift: float | None, low: float | None, high: float | None, action: str) -> None:
    assert timeout_action(rule, lift, low, high, margin=0.1) == action


@pytest.mark.parametrize(("rule", "action"), [("promote", "roll back"), ("non-inferior", "promote")])
def test_a_canary_5_percent_worse_at_the_timeout(config, world_clicks, rule: str, action: str) -> None:
    """Still "keep running" at its last cycle (min_users not reached), a candidate 5 % worse (click rates 0.57 vs
    0.60, 60,000 lists: the interval about +-1.3 %) is shown worse: "promote" stops it, "non-inferior" promotes it
    (its loss is bounded within the 10 % margin)."""
    canary = replace(config.canary, max_cycles=1, min_users=100_000, on_timeout=rule)
    loop = started(replace(config, canary=canary), world_clicks)
    loop.run_cycle()
    serve(loop, winner="control", rates=(0.60, 0.57), users=6_000, lists=10)
    report = loop.run_cycle()
    decided = report["steps"][0]
    assert decided["decision"].startswith("keep running") and decided["lift_high"] < 0 <= decided["lift_low"] + 0.1
    assert report["steps"][1]["step"] == action
    assert loop.registry.current("shop", "production") == ("v0002" if action == "promote" else "v0001")


def test_the_offline_gate_stops_a_candidate_trained_on_a_corrupted_window(config, world_clicks) -> None:
    loop = started(with_gate(config, -0.2), world_clicks)

    def corrupt(window: pd.DataFrame) -> pd.DataFrame:
        catalogue = pd.unique(window[ITEM_ID])  # every click's item replaced by any item: taste and popularity lost
        return window.assign(**{ITEM_ID: np.random.default_rng(0).choice(catalogue, len(window))})

    report = Loop(loop.config, window_hook=corrupt).run_cycle()
    evaluation = next(step for step in report["steps"] if step["step"] == "evaluate")
    assert not evaluation["passed"] and evaluation["gain"] < -0.2
    assert report["phase"] == "idle" and loop.registry.versions("shop") == ["v0001"]
    fair = Loop(loop.config).run_cycle()  # the same data uncorrupted passes
    assert next(step for step in fair["steps"] if step["step"] == "evaluate")["passed"]


def test_a_failed_quality_check_stops_the_cycle_with_an_alert(config, world_clicks) -> None:
    loop = started(config, world_clicks)
    last = world_clicks[world_clicks[TIMESTAMP] > START - 3 * 86_400].head(200)
    store_clicks(loop.store, last, "again")  # the same clicks under new ids: repeated rows
    report = loop.run_cycle()
    assert report["phase"] == "idle" and "max_rejected_share" in report["alert"]
    assert loop.registry.versions("shop") == ["v0001"]
    assert [row["action"] for row in loop.audit_trail()][-2:] == ["loop:alert", "loop:quality"]
    stored = alerts(loop.store)  # the monitoring's alerts: the dashboard shows it
    assert [(alert["rule"], alert["severity"]) for alert in stored] == [("loop quality", "critical")]
    assert "max_rejected_share" in stored[0]["message"]


def test_each_training_is_recorded_and_the_alert_rules_run(config, world_clicks, tmp_path) -> None:
    rules = tmp_path / "alerts.toml"
    rules.write_text('[[rule]]\nname = "no lists"\nmetric = "impressions"\nop = ">="\nvalue = 1\n')
    loop = started(replace(config, loop=replace(config.loop, alert_rules=str(rules))), world_clicks)
    report = loop.run_cycle()
    monitor = next(step for step in report["steps"] if step["step"] == "monitor")
    assert len(monitor["days"]) == 2 and len(monitor["alerts"]) == 2  # nothing shown on either day
    assert {alert["rule"] for alert in alerts(loop.store)} == {"no lists"}
    records = trainings(loop.store, model="shop")
    assert len(records) == 2  # the first model's cycle and this one
    train = next(step for step in report["steps"] if step["step"] == "train")
    assert records[-1]["fingerprint"] == train["fingerprint"]


def test_no_events_no_cycle(config) -> None:
    report = Loop(config).run_cycle()
    assert report["steps"] == [{"step": "read", "events": 0}] and report["phase"] == "idle"
    assert not (loop_folder := config.registry_folder / "shop" / "loop-state.json").exists(), loop_folder


def test_a_cycle_checked_before_refits_existed_registers_the_evaluated_candidate(config, world_clicks) -> None:
    """A cycle whose folder has no refit window (checked by an engine without ``[test] refit``, resumed by this one)
    registers the candidate it evaluated, as that engine would have."""
    loop = started(config, world_clicks)
    state, report = loop.state(), {"steps": []}
    assert loop._check(state, report)
    folder = Path(state["work"]["folder"])
    (folder / "refit.csv").unlink()
    loop._train(state, report)
    loop._evaluate(state, report)
    assert state["phase"] == "evaluated"
    finished = loop.run_cycle()
    registered = next(step for step in finished["steps"] if step["step"] == "register")
    assert registered["refitted"] is False and finished["phase"] == "canary"
    assert read_manifest(loop.registry.root / "shop" / registered["version"])["data_fingerprint"] == read_manifest(
        folder / "candidate")["data_fingerprint"]
