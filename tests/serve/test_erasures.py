"""Erasure reaches every process on one database: two `tailored serve` processes and `tailored erase-user` on one
SQLite file, over real HTTP; a restarted process knows the erasures from its first request."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import sqlalchemy as sa

from tailored.benchmarks.service import running_service
from tailored.data.dataset import Dataset
from tailored.pipeline.recommender import build_recommender
from tailored.registry.model_dir import save_model
from tailored.serve import ServiceSettings, create_app
from tailored.store import EventStore
from tests.serve.test_service import auth, counts, serving, shop
from tests.cli.helpers import cli, ok


def eventually(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    """Whether ``condition`` holds within ``seconds`` (erasures of other processes arrive at the next poll)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_an_erasure_reaches_every_process_on_the_database_and_survives_a_restart(tmp_path, monkeypatch) -> None:
    frame, items = shop()
    save_model(build_recommender("item-knn").fit(Dataset.from_frame(frame, items=items)), tmp_path / "model")
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url)
    headers = auth(store.create_key(["recommend", "events:write", "admin"]))
    monkeypatch.setenv("TAILORED_ERASURE_POLL_SECONDS", "0.2")

    def listed(base: str, user: str) -> list[str]:
        answer = httpx.get(f"{base}/v1/users/{user}/recommendations", params={"k": 5}, headers=headers)
        return [item["item_id"] for item in answer.raise_for_status().json()["items"]]

    with (running_service(tmp_path / "model", url) as (first, _),
          running_service(tmp_path / "model", url) as (second, _)):
        cold = listed(first, "someone-new")
        assert listed(second, "u3") != cold and listed(first, "u4") != cold  # personalised before the erasures
        assert httpx.delete(f"{first}/v1/users/u3", headers=headers).status_code == 204
        assert listed(first, "u3") == cold
        assert eventually(lambda: listed(second, "u3") == cold), "the second process kept personalising for u3"
        ok(cli("erase-user", "u4", "--db", url, cwd=tmp_path))
        assert eventually(lambda: listed(first, "u4") == cold and listed(second, "u4") == cold), \
            "a server kept personalising for a user erased with the CLI"
        refused = httpx.put(f"{second}/v1/users/u3", json={"segment": "gold"}, headers=headers)
        assert refused.status_code == 409 and "erased" in refused.json()["detail"]
        events = {"events": [{"event_id": "after", "user_id": "u4", "item_id": "i1", "type": "view"}]}
        answer = httpx.post(f"{second}/v1/events", json=events, headers=headers)
        assert counts(answer) == {"accepted": 0, "duplicates": 1}
    with running_service(tmp_path / "model", url) as (restarted, _):
        assert listed(restarted, "u3") == cold == listed(restarted, "u4")
    with store.engine.connect() as connection:  # the impressions served to them after the erasures were not stored
        for table in ("events", "users", "exposures"):
            rows = connection.execute(sa.text(f"select count(*) from {table} where user_id in ('u3', 'u4')")).scalar()
            assert rows == 0, f"{rows} row(s) of erased users in {table}"
    store.engine.dispose()


def test_a_user_id_with_a_slash_is_erased_and_described_over_http(tmp_path) -> None:
    frame, items = shop()
    save_model(build_recommender("popularity").fit(Dataset.from_frame(frame, items=items)), tmp_path / "model")
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url)
    headers = auth(store.create_key(["events:write", "admin"]))
    with serving(create_app(ServiceSettings(tmp_path / "model", url))) as base:
        events = [{"event_id": f"e-{user}", "user_id": user, "item_id": "i1", "type": "view"}
                  for user in ("team/alice", "a/b/c")]
        assert httpx.post(f"{base}/v1/events", json={"events": events}, headers=headers).json()["accepted"] == 2
        described = httpx.put(f"{base}/v1/users/team/bob", json={"segment": "gold"}, headers=headers)
        assert described.status_code == 200  # the model warns: no users table
        assert described.json()["user_id"] == "team/bob"
        assert httpx.delete(f"{base}/v1/users/team/alice", headers=headers).status_code == 204
        assert httpx.delete(f"{base}/v1/users/a%2Fb%2Fc", headers=headers).status_code == 204  # encoded, the same id
    assert store.is_erased("team/alice") and store.is_erased("a/b/c") and store.count_events() == 0
    assert store.user_attributes("team/bob") == {"segment": "gold"}
    store.engine.dispose()


def test_erasures_over_http_racing_posted_events_leave_nothing_behind(tmp_path) -> None:
    import random
    import threading

    from tests.store.test_races import VICTIMS, stored_users

    frame, items = shop()
    save_model(build_recommender("popularity").fit(Dataset.from_frame(frame, items=items)), tmp_path / "model")
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url)
    headers, rng = auth(store.create_key(["events:write", "admin"])), random.Random(0)
    with serving(create_app(ServiceSettings(tmp_path / "model", url))) as base:
        def post() -> None:
            with httpx.Client(base_url=base, headers=headers) as client:
                for batch in range(150):
                    events = [{"event_id": f"{user}-{batch}", "user_id": user, "item_id": "i1", "type": "view"}
                              for user in [*VICTIMS, "bystander"]]
                    client.post("/v1/events", json={"events": events}).raise_for_status()

        poster = threading.Thread(target=post)
        poster.start()
        assert eventually(lambda: store.count_events() > 0)
        for user in VICTIMS:  # one trial per victim, each erased while events keep arriving
            assert httpx.delete(f"{base}/v1/users/{user}", headers=headers).status_code == 204
            time.sleep(rng.uniform(0, 0.02))
        poster.join()
    assert stored_users(store) == {"bystander"}
    store.engine.dispose()
