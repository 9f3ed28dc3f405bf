"""The experiments table: one running experiment per surface even when processes race, stop frees the surface,
exclusions are keyed like the store's users and erased with them."""

from __future__ import annotations

import multiprocessing

import pytest

from tailored.errors import ConfigError, ConflictError
from tailored.store import EventStore
from tailored.store.experiments import (create_experiment, exclude_users, excluded_users, experiments,
                                        running_experiments, stop_experiment)

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
