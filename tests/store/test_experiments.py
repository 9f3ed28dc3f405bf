"""The experiments table: one running experiment per surface even when processes race, stop frees the surface,
exclusions are keyed like the store's users and erased with them."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from tailored.errors import ConfigError, ConflictError
from tailored.store import EventStore
from tailored.store.database import Event, exposure_row
from tailored.store.experiments import (create_experiment, exclude_users, excluded_users, experiment_totals,
                                        experiments, running_experiments, stop_experiment)

DESIGN = {"arms": [{"name": "control", "ref": "shop@production", "share": 50}], "metric": "click_rate"}


def test_an_experiment_is_stored_listed_and_stopped(store) -> None:
    opened = store()
    row = create_experiment(opened, "first", "recommendations", DESIGN)
    assert row["status"] == "running" and experiments(opened) == [{**row, "created_at": row["created_at"]}]
    assert [each["name"] for each in running_experiments(opened)] == ["first"]
    stopped = stop_experiment(opened, "first", "rolled back: guardrail p99_ms<=30")
    assert stopped["status"] == "stopped" and stopped["running_on"] is None
    assert stopped["stopped_at"] >= row["created_at"]
    assert stopped["stop_reason"] == "rolled back: guardrail p99_ms<=30" and running_experiments(opened) == []
    with pytest.raises(ConfigError, match="already stopped"):
        stop_experiment(opened, "first", "again")
    with pytest.raises(ConfigError, match="No experiment named 'nope' \\(experiments: first\\)"):
        stop_experiment(opened, "nope", "x")


def test_one_running_experiment_per_surface_and_unique_names(store) -> None:
    opened = store()
    create_experiment(opened, "first", "recommendations", DESIGN)
    with pytest.raises(ConflictError, match="first already runs on surface 'recommendations'"):
        create_experiment(opened, "second", "recommendations", DESIGN)
    create_experiment(opened, "other-surface", "similar", DESIGN)
    with pytest.raises(ConflictError, match="named 'first' exists"):
        create_experiment(opened, "first", "emails", DESIGN)
    stop_experiment(opened, "first", "done")
    create_experiment(opened, "second", "recommendations", DESIGN)  # the surface is free again
    assert [row["name"] for row in running_experiments(opened)] == ["other-surface", "second"]
    assert len(experiments(opened)) == 3


def _create_when_told(url: str, name: str, barrier, results) -> None:
    barrier.wait()
    try:
        create_experiment(EventStore(url), name, "recommendations", DESIGN)
        results.put((name, "created"))
    except ConflictError:
        results.put((name, "conflict"))


def test_processes_creating_on_one_surface_at_once_leave_exactly_one_running(store, database_url) -> None:
    store()  # the database, migrated, before the race
    context = multiprocessing.get_context("fork")
    for trial in range(5):
        barrier, results = context.Barrier(4), context.Queue()
        processes = [context.Process(target=_create_when_told, args=(database_url, f"t{trial}-{index}", barrier,
                                                                      results)) for index in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        outcomes = sorted(results.get(timeout=5)[1] for _ in processes)
        assert outcomes == ["conflict", "conflict", "conflict", "created"]
        running = running_experiments(store())
        assert len(running) == 1
        stop_experiment(store(), running[0]["name"], "next trial")


def test_exclusions_are_keyed_like_users_and_erased_with_them(store) -> None:
    opened = store(pseudonym_key="k" * 32)
    assert exclude_users(opened, ["alice", "bob"]) == 2 and exclude_users(opened, ["alice"]) == 0
    assert excluded_users(opened) == {opened.user_key("alice"), opened.user_key("bob")}
    assert "alice" not in excluded_users(opened)  # pseudonymised: never in clear
    assert opened.erase_user("alice")["experiment_exclusions"] == 1
    assert excluded_users(opened) == {opened.user_key("bob")}


def test_experiment_totals_count_each_users_lists_and_attributed_rewards_per_arm(store) -> None:
    opened = store()
    create_experiment(opened, "ranker", "recommendations", DESIGN)
    now = time.time()
    rows = [exposure_row("alice", "m1", ["i1", "i2"], experiment="ranker", arm="control", latency_ms=3.0),
            exposure_row("alice", "m1", ["i3"], experiment="ranker", arm="control"),
            exposure_row("bob", "m2", ["i1", "i4"], experiment="ranker", arm="treatment"),
            exposure_row("carol", "m1", ["i1"]),  # in no experiment
            exposure_row("dave", "m1", ["i1"], experiment="older", arm="control")]
    opened.log_exposures(rows)
    opened.append_events([Event("e1", "alice", "i2", "click", None, now + 1, rows[0]["exposure_id"]),
                          Event("e2", "alice", "i3", "purchase", 20.0, now + 2),  # by window: the second list
                          Event("e3", "bob", "i4", "click", None, now + 3),
                          Event("e4", "bob", "i4", "purchase", 7.5, now + 4),
                          Event("e5", "carol", "i1", "click", None, now + 5),
                          Event("e6", "bob", "i9", "click", None, now + 6)])  # never shown: not credited
    totals = experiment_totals(opened, "ranker").sort_values("user_id").reset_index(drop=True)
    # a slot's first credited click, cart or purchase is its click (alice's purchase of i3 clicked it too)
    assert totals.to_dict("records") == [
        {"user_id": "alice", "arm": "control", "lists": 2, "clicks": 2, "purchases": 1, "revenue": 20.0},
        {"user_id": "bob", "arm": "treatment", "lists": 1, "clicks": 1, "purchases": 1, "revenue": 7.5}]
    opened.erase_user("bob")
    assert experiment_totals(opened, "ranker")["user_id"].tolist() == ["alice"]
    with pytest.raises(ConfigError, match="No experiment named 'nope'"):
        experiment_totals(opened, "nope")
    create_experiment(opened, "empty", "emails", DESIGN)
    assert experiment_totals(opened, "empty").empty
