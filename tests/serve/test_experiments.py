"""Experiments in the service, over real HTTP between real processes on one SQLite file: every user is served by
the arm the design assigns (the same in two processes and after a restart, with no per-user storage), the answer and
the exposure log name it, each arm's list comes from its own registry model (the holdout: the non-personalised list),
an excluded user is in none, and stopping the experiment reaches the running services within their poll."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tailored.experiments.design import Design
from tailored.store import EventStore, schema
from tailored.store.experiments import exclude_users, experiments
from tests.cli.helpers import cli, ok
from tests.serve.test_live_history import served as live_served
from tests.serve.test_service import auth, shop

USERS = [f"u{index}" for index in range(30)]


def served(folder: Path) -> AbstractContextManager[str]:
    """`tailored serve --registry registry --model shop@production` on ``folder``'s tailored.db, polling the
    experiments every 0.2 s; its base URL."""
    return live_served(folder, "--registry", "registry", "--model", "shop@production",
                       TAILORED_EXPERIMENT_POLL_SECONDS="0.2")


@pytest.fixture(scope="module")
def shop_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """shop v0001 (ease, production) and v0002 (popularity), a key, and an experiment control / treatment / holdout."""
    folder = tmp_path_factory.mktemp("experiments")
    frame, items = shop()
    frame.to_csv(folder / "train.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)
    for version, algorithm in (("ease", "ease"), ("popularity", "popularity")):
        ok(cli("train", "--interactions", "train.csv", "--items", "items.csv", "--algorithm", algorithm,
               "--model-dir", version, cwd=folder))
        ok(cli("models", "register", "--registry", "registry", "--name", "shop", "--model-dir", version, cwd=folder))
    ok(cli("models", "promote", "--registry", "registry", "shop", "v0001", cwd=folder))
    (folder / "key").write_text(ok(cli("keys", "create", "--scopes", "recommend,events:write,admin",
                                       cwd=folder)).stdout.strip())
    ok(cli("experiments", "create", "--registry", "registry", "--name", "ranker", "--arm", "control=shop@production",
           "--arm", "treatment=shop@v0002", "--arm", "holdout=baseline", "--traffic", "40,40,20", "--metric",
           "click_rate", cwd=folder))
    return folder


def lists(base: str, key: str, users: list[str], plain: bool = True) -> dict[str, dict]:
    answers = {}
    for user in users:
        answer = httpx.get(f"{base}/v1/users/{user}/recommendations", params=None if plain else {"device": "web"},
                           headers=auth(key))
        assert answer.status_code == 200, answer.text
        answers[user] = answer.json()
    return answers


def test_each_user_gets_the_designed_arm_in_two_processes_and_after_a_restart(shop_registry: Path) -> None:
    folder, key = shop_registry, (shop_registry / "key").read_text()
    store = EventStore("sqlite:///" + str(folder / "tailored.db"))
    design = Design.from_json(experiments(store, "ranker")[0]["design"])
    expected = {user: design.assignment().arm_of(user) for user in USERS}
    assert set(expected.values()) == {"control", "treatment", "holdout"}
    with served(folder) as first, served(folder) as second:
        for base, plain in ((first, True), (second, True), (first, False)):  # the fast lane and the full path
            answers = lists(base, key, USERS, plain)
            assert {user: answer["experiment"] for user, answer in answers.items()} == {
                user: {"name": "ranker", "arm": arm} for user, arm in expected.items()}
            for user, answer in answers.items():
                assert answer["model_version"] == "shop@v0002" if expected[user] == "treatment" else \
                    answer["model_version"].startswith("ease@")
            holdout = [tuple(item["item_id"] for item in answers[user]["items"]) for user in USERS
                       if expected[user] == "holdout"]
            assert len(set(holdout)) == 1  # non-personalised: one list for every holdout user
    with served(folder) as restarted:
        assert {user: answer["experiment"]["arm"] for user, answer in lists(restarted, key, USERS).items()} == expected
    engine = sa.create_engine("sqlite:///" + str(folder / "tailored.db"))
    with engine.connect() as connection:
        logged = connection.execute(sa.select(schema.exposures.c.user_id, schema.exposures.c.experiment,
                                              schema.exposures.c.arm, schema.exposures.c.latency_ms,
                                              schema.exposures.c.context)).all()
    assert len(logged) >= 4 * len(USERS)
    assert all(row.experiment == "ranker" and row.arm == expected[row.user_id] and row.latency_ms > 0
               for row in logged)
    assert all(row.context.get("fallback") is True for row in logged if row.arm == "holdout")


def test_an_excluded_user_is_in_no_experiment_and_a_stop_reaches_the_service(shop_registry: Path) -> None:
    folder, key = shop_registry, (shop_registry / "key").read_text()
    exclude_users(EventStore("sqlite:///" + str(folder / "tailored.db")), ["u1"])
    with served(folder) as base:
        answers = lists(base, key, USERS)
        assert "experiment" not in answers["u1"] and all("experiment" in answers[user] for user in USERS[2:])
        ok(cli("experiments", "stop", "--name", "ranker", cwd=folder))
        deadline = time.time() + 10
        while "experiment" in lists(base, key, ["u2"])["u2"] and time.time() < deadline:
            time.sleep(0.2)
        assert all("experiment" not in answer for answer in lists(base, key, USERS).values())


def test_experiments_create_finds_the_registry_the_service_serves_from(shop_registry: Path) -> None:
    """Run elsewhere without --registry, `tailored experiments create` resolves the arms in the registry that a
    `tailored serve --registry` on the same database recorded; an unknown version is still refused (exit 2)."""
    folder = shop_registry
    with served(folder):
        pass  # the service records its registry when it starts
    elsewhere, db = folder / "elsewhere", "sqlite:///" + str(folder / "tailored.db")
    elsewhere.mkdir(exist_ok=True)
    stopped = cli("experiments", "stop", "--db", db, "--name", "ranker", cwd=elsewhere)
    assert stopped.returncode in (0, 2)  # stopped here, or already by the test before
    bad = cli("experiments", "create", "--db", db, "--name", "bad", "--arm", "control=shop@production", "--arm",
              "treatment=shop@v0009", "--traffic", "50,50", "--metric", "click_rate", cwd=elsewhere)
    assert bad.returncode == 2 and "v0009" in bad.stderr
    ok(cli("experiments", "create", "--db", db, "--name", "again", "--arm", "control=shop@production", "--arm",
           "treatment=shop@v0002", "--traffic", "50,50", "--metric", "click_rate", cwd=elsewhere))
