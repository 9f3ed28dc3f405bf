"""The service with a slate policy (``--policy``), over real HTTP and a real SQLite database: every list carries its
propensities and the policy, reproducible from its exposure id; posted events are attributed (by exposure id, by
window, none, duplicate) and learnt before the answer; the state survives a restart and kill -9 (rebuilt from the
store), forgets an erased user, and a bad spec is refused with exit 2 naming the field."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from tailored.benchmarks.service import running_service
from tailored.pipeline.slates import candidates_of
from tailored.policies import Candidates, Feedback, parse_policy
from tailored.query import Query
from tailored.serve import ServiceSettings, create_app
from tailored.serve.policy import FOLD_LISTS, ServedPolicy
from tailored.serve.service import Service
from tailored.store import EventStore
from tests.cli.helpers import cli
from tests.serve.test_service import auth, serving

STOCHASTIC = ["epsilon-greedy:epsilon=0.1", "softmax:temperature=0.5", "uniform", "thompson"]


@pytest.fixture
def database(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A SQLite URL and a key with every scope."""
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url)
    key = store.create_key(["recommend", "events:write", "admin"])
    store.engine.dispose()
    return url, auth(key)


@contextmanager
def policy_service(model_dir: Path, url: str, policy: str, **settings: object) -> Iterator[tuple[str, Service]]:
    """The service with ``policy`` in this process (uvicorn in a thread): its base URL and its `Service`."""
    app = create_app(ServiceSettings(model_dir, url, policy=policy, **settings))  # type: ignore[arg-type]
    with serving(app) as base:
        yield base, app.state.service


def recommend(base: str, headers: dict[str, str], user: str, k: int = 5) -> dict:
    answer = httpx.get(f"{base}/v1/users/{user}/recommendations", params={"k": k}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def post(base: str, headers: dict[str, str], *events: dict) -> dict:
    answer = httpx.post(f"{base}/v1/events", json={"events": list(events)}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def logged(store: EventStore, exposure_id: str) -> dict | None:
    """The stored exposure row (items, propensities, policy, context), None while not yet written."""
    with store.engine.connect() as connection:
        row = connection.execute(sa.text("select items, propensities, policy, context from exposures "
                                         "where exposure_id = :e"), {"e": exposure_id}).first()
    if row is None:
        return None
    return {name: json.loads(value) if isinstance(value, str) and name != "policy" else value
            for name, value in zip(("items", "propensities", "policy", "context"), row)}


def eventually_logged(store: EventStore, exposure_id: str) -> dict:
    deadline = time.time() + 10
    while (row := logged(store, exposure_id)) is None and time.time() < deadline:
        time.sleep(0.05)
    assert row is not None, "the exposure was never written"
    return row


def test_greedy_is_todays_list_with_propensity_one(model_dir, database) -> None:
    url, headers = database
    with policy_service(model_dir, url, "greedy") as (base, service):
        body = recommend(base, headers, "u1")
        expected = service.model.recommend_one(Query("u1"), 5)
        row = eventually_logged(service.store, body["exposure_id"])
    assert body["policy"] == "greedy" and [item["item_id"] for item in body["items"]] == expected.item_ids.tolist()
    assert [item["propensity"] for item in body["items"]] == [1.0] * 5
    assert row == {"items": expected.item_ids.tolist(), "propensities": [1.0] * 5, "policy": "greedy", "context": {}}


@pytest.mark.parametrize("spec", STOCHASTIC)
def test_each_policy_answers_exact_propensities_reproducible_from_the_exposure_id(model_dir, database, spec) -> None:
    url, headers = database
    with policy_service(model_dir, url, spec) as (base, service):
        answers = [recommend(base, headers, "u1", k=5) for _ in range(12)]
        for body in answers:
            assert body["policy"] == spec and len(body["items"]) == 5
            chances = np.array([item["propensity"] for item in body["items"]])
            assert ((chances > 0) & (chances <= 1)).all()
            row = eventually_logged(service.store, body["exposure_id"])
            assert row["items"] == [item["item_id"] for item in body["items"]] and row["policy"] == spec
            assert np.allclose(row["propensities"], chances, rtol=0, atol=1e-12)
        lists = {tuple(item["item_id"] for item in body["items"]) for body in answers}
        assert len(lists) > 1, f"{spec} showed one list 12 times: it does not explore"
        # the propensities are the policy's exact marginals over the model's candidates, in the state it chose in
        time.sleep(0.3)  # the impressions of the lists above are logged; no request runs now
        service.policy.state()  # and learnt (they wait for a group of lists, `FOLD_LISTS`, or the next look)
        candidates = candidates_of(service.model, Query("u1"), 5)
        table = service.policy.policy.marginals(candidates, 5)
        drawn = service.recommend(Query("u1"), 5, False, exposure_id="ab" * 16)
        again = service.recommend(Query("u1"), 5, False, exposure_id="ab" * 16)
    assert drawn == again  # the same exposure id, the same state: the same list
    index = {item: position for position, item in enumerate(candidates.item_ids.tolist())}
    expected = [table[index[row["item_id"]], rank] for rank, row in enumerate(drawn)]
    assert np.allclose([row["propensity"] for row in drawn], expected, rtol=0, atol=1e-9)


def test_the_fast_lane_serves_a_cheap_policy_from_the_vector_index(als_dir, database, monkeypatch) -> None:
    monkeypatch.setattr("tailored.serve.service.ANN_MIN_ITEMS", 1)  # a vector index on 30 items: the fast lane runs
    url, headers = database
    with policy_service(als_dir, url, "epsilon-greedy:epsilon=0.5") as (base, service):
        assert service.quick_recommend("u5", 5, "cd" * 16) == service.quick_recommend("u5", 5, "cd" * 16)
        answers = [recommend(base, headers, "u5") for _ in range(20)]
        rows = [eventually_logged(service.store, body["exposure_id"]) for body in answers]
    assert all(row["propensities"] == [item["propensity"] for item in body["items"]]
               for row, body in zip(rows, answers))
    assert len({tuple(row["items"]) for row in rows}) > 1 and {body["policy"] for body in answers} == {
        "epsilon-greedy:epsilon=0.5"}


@pytest.fixture
def als_dir(tmp_path: Path) -> Path:
    """An ALS model of the `shop` data (the scorer has vectors: linucb's features, a vector index)."""
    from tailored.data.dataset import Dataset
    from tailored.pipeline.recommender import build_recommender
    from tailored.registry.model_dir import save_model
    from tests.serve.test_service import shop

    frame, items = shop()
    save_model(build_recommender("als", {"factors": 8}).fit(Dataset.from_frame(frame, items=items)), tmp_path / "als")
    return tmp_path / "als"


def test_linucb_learns_from_the_users_vectors_and_restarts_with_the_same_state(als_dir, database) -> None:
    url, headers = database
    with policy_service(als_dir, url, "linucb:alpha=1.0") as (base, service):
        first = recommend(base, headers, "u3")
        answers = traffic(base, headers, rounds=30)
        later = recommend(base, headers, "u3")
        time.sleep(0.5)
        live, state = service.policy.state(), service.policy.policy.state()
    assert first["policy"] == "linucb:alpha=1.0" and {item["propensity"] for item in first["items"]} == {1.0}
    assert [item["item_id"] for item in later["items"]] != [item["item_id"] for item in first["items"]]
    assert all(each["by"] == "exposure_id" for answer in answers for each in answer["attribution"])
    assert live["rewards"] == 15 and any(np.abs(matrix).sum() > 0 for matrix in state.values()
                                         if isinstance(matrix, np.ndarray) and matrix.dtype.kind == "f")
    with policy_service(als_dir, url, "linucb:alpha=1.0") as (_, restarted):
        again, state_again = restarted.policy.state(), restarted.policy.policy.state()
    assert again["fingerprint"] == live["fingerprint"] and set(state) == set(state_again)
    for name, value in state.items():
        assert np.array_equal(value, state_again[name]) if np.asarray(value).dtype.kind != "f" else np.allclose(
            value, state_again[name], rtol=1e-12, atol=1e-12), name


def test_events_are_attributed_and_the_answer_says_how(model_dir, database) -> None:
    url, headers = database
    with policy_service(model_dir, url, "thompson", attribution_window_hours=0.01) as (base, service):
        first = recommend(base, headers, "u2")
        shown = [item["item_id"] for item in first["items"]]
        latest = recommend(base, headers, "u2")
        other = [item["item_id"] for item in latest["items"]]
        unseen = next(item for item in (f"i{n}" for n in range(30)) if item not in shown + other)
        click = {"user_id": "u2", "type": "click"}
        answer = post(base, headers,
                      {**click, "event_id": "a", "item_id": shown[2], "exposure_id": first["exposure_id"]},
                      {**click, "event_id": "b", "item_id": other[0]},
                      {**click, "event_id": "c", "item_id": other[1], "exposure_id": "f" * 32},
                      {**click, "event_id": "d", "item_id": unseen},
                      {**click, "event_id": "e", "item_id": shown[2], "exposure_id": first["exposure_id"]},
                      {**click, "event_id": "f", "item_id": other[2], "exposure_id": latest["exposure_id"],
                       "timestamp": time.time() + 100},  # 100 s after the list: past the 36 s window
                      {"event_id": "g", "user_id": "u2", "item_id": shown[0], "type": "view"})
        learnt = service.policy.state()
        resent = post(base, headers, {**click, "event_id": "a", "item_id": shown[2],
                                      "exposure_id": first["exposure_id"]})
        after_resend = service.policy.state()
    assert answer["accepted"] == 7 and answer["duplicates"] == 0
    assert [(each["event_id"], each["exposure_id"], each["by"]) for each in answer["attribution"]] == [
        ("a", first["exposure_id"], "exposure_id"), ("b", latest["exposure_id"], "window"),
        ("c", latest["exposure_id"], "window"), ("d", None, "none"), ("e", first["exposure_id"], "duplicate"),
        ("f", None, "none"), ("g", None, "none")]
    assert learnt["rewards"] == 3 and learnt["impressions"] == 10  # the credited clicks, the two lists' slots
    assert resent["duplicates"] == 1 and resent["attribution"] == [
        {"event_id": "a", "exposure_id": first["exposure_id"], "by": "exposure_id"}]
    assert after_resend == learnt  # a resent event is not learnt twice


def test_clicks_on_a_new_item_raise_it_online_for_thompson(model_dir, database) -> None:
    url, headers = database
    with policy_service(model_dir, url, "thompson") as (base, service):
        assert httpx.put(f"{base}/v1/items/i-new", json={"category": "c1"}, headers=headers).status_code == 204
        users = [f"u{n}" for n in range(10)]

        def chance_on_top() -> float:
            """The policy's probability of showing i-new first, averaged over the users."""
            chances = []
            for user in users:
                candidates = candidates_of(service.model, Query(user), 5)
                assert candidates.new[candidates.item_ids == "i-new"].all()
                table = service.policy.policy.marginals(candidates, 5)
                chances.append(table[candidates.item_ids == "i-new", 0].sum())
            return float(np.mean(chances))

        before, clicks = chance_on_top(), 0
        for round_ in range(40):
            body = recommend(base, headers, users[round_ % len(users)])
            shown = [item["item_id"] for item in body["items"]]
            if "i-new" in shown:
                clicks += 1
                post(base, headers, {"event_id": f"n{round_}", "user_id": users[round_ % len(users)],
                                     "item_id": "i-new", "type": "click", "exposure_id": body["exposure_id"]})
        after = chance_on_top()
    assert clicks >= 5, "the new item was hardly shown: thompson does not explore it"
    assert after > 2 * before and after > 0.3, (before, after)


def test_a_restart_rebuilds_the_live_state_from_the_store(model_dir, database) -> None:
    url, headers = database
    with policy_service(model_dir, url, "thompson") as (base, service):
        traffic(base, headers, rounds=30)
        time.sleep(0.5)  # the last impressions are written (the writer's interval is 0.2 s)
        live, counts = service.policy.state(), service.policy.policy.state()
    with policy_service(model_dir, url, "thompson") as (base, restarted):
        again, counts_again = restarted.policy.state(), restarted.policy.policy.state()
        assert httpx.get(f"{base}/v1/policy", headers=headers).json() == live
    assert live["impressions"] == 150 and live["rewards"] > 0 and again == live
    assert all(np.array_equal(counts[name], counts_again[name]) for name in counts)


def test_an_erasure_takes_the_users_feedback_out_of_the_state(model_dir, database) -> None:
    url, headers = database
    with policy_service(model_dir, url, "thompson") as (base, service):
        traffic(base, headers, rounds=20)
        time.sleep(0.5)
        before = service.policy.state()
        assert httpx.delete(f"{base}/v1/users/u1", headers=headers).status_code == 204
        after = service.policy.state()
        rebuilt = ServedPolicy("thompson")
        rebuilt.rebuild(service.store.feedback_log())
    assert after == rebuilt.state() and after["impressions"] == before["impressions"] - 2 * 5  # u1 saw 2 lists
    assert after["fingerprint"] != before["fingerprint"]


def traffic(base: str, headers: dict[str, str], rounds: int, prefix: str = "t") -> list[dict]:
    """``rounds`` lists of 5 for u0..u9, a click on the second item of every other one (the last one of a shorter
    list: a user's clicked items leave their lists); the POST answers."""
    answers = []
    for round_ in range(rounds):
        user = f"u{round_ % 10}"
        body = recommend(base, headers, user)
        if round_ % 2 == 0 and body["items"]:
            answers.append(post(base, headers, {"event_id": f"{prefix}{round_}", "user_id": user, "type": "click",
                                                "item_id": body["items"][:2][-1]["item_id"],
                                                "exposure_id": body["exposure_id"]}))
    return answers


def test_kill_9_loses_no_acknowledged_event_nor_its_attribution(model_dir, database, monkeypatch) -> None:
    url, headers = database
    monkeypatch.setenv("TAILORED_POLICY", "thompson")
    acknowledged: list[dict] = []
    with running_service(model_dir, url) as (base, server):
        stop = threading.Event()

        def clicking() -> None:
            round_ = 0
            while not stop.is_set():
                try:
                    answer = traffic(base, headers, 2, prefix=f"k{round_}-")
                except (httpx.TransportError, AssertionError):
                    return
                acknowledged.extend(answer)
                round_ += 1

        worker = threading.Thread(target=clicking)
        worker.start()
        time.sleep(3)
        server.kill()  # SIGKILL while lists and clicks are in flight
        stop.set()
        worker.join(timeout=30)
    assert len(acknowledged) > 5
    store = EventStore(url)
    answers = [each for answer in acknowledged for each in answer["attribution"]]
    stored = store.attribute([each["event_id"] for each in answers])
    assert stored["event_id"].tolist() == [each["event_id"] for each in answers]
    assert stored["exposure_id"].tolist() == [each["exposure_id"] for each in answers]
    assert stored["by"].tolist() == [each["by"] for each in answers] == ["exposure_id"] * len(answers)
    with running_service(model_dir, url) as (base, _):
        restarted = httpx.get(f"{base}/v1/policy", headers=headers).json()
    rebuilt = ServedPolicy("thompson")
    rebuilt.rebuild(store.feedback_log())
    assert restarted == rebuilt.state() and restarted["rewards"] >= len(answers)


def test_a_quiet_kill_9_restarts_with_the_state_it_had(model_dir, database, monkeypatch) -> None:
    url, headers = database
    monkeypatch.setenv("TAILORED_POLICY", "thompson")
    with running_service(model_dir, url) as (base, server):
        traffic(base, headers, rounds=10)
        time.sleep(0.5)
        live = httpx.get(f"{base}/v1/policy", headers=headers).json()
        server.kill()
        server.wait()
    with running_service(model_dir, url) as (base, _):
        assert httpx.get(f"{base}/v1/policy", headers=headers).json() == live


def test_serve_logs_export_then_ope_end_to_end(model_dir, database, tmp_path) -> None:
    url, headers = database
    with policy_service(model_dir, url, "epsilon-greedy:epsilon=0.2") as (base, _):
        traffic(base, headers, rounds=40)
    exported = cli("logs", "export", "--db", url, "--output", "log.csv", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    import pandas as pd

    log = pd.read_csv(tmp_path / "log.csv")
    assert len(log) == 200 and int(log["click"].sum()) == 20
    assert set(log["policy"]) == {"epsilon-greedy:epsilon=0.2"} and log["propensity"].between(0, 1).all()
    if "ope" not in cli("--help", cwd=tmp_path).stdout:
        pytest.skip("`tailored ope` is not there yet")
    ope = cli("ope", "--log", "log.csv", "--model-dir", str(model_dir), "--policy", "greedy", "--output", "ope.json",
              cwd=tmp_path)
    assert ope.returncode == 0, ope.stderr
    result = json.loads((tmp_path / "ope.json").read_text())
    assert result["policy"] == "greedy" and result["n"] == 40


@pytest.mark.parametrize(("args", "message"), [
    (["--policy", "bogus"], "bogus"),
    (["--policy", "softmax:temperature=0"], "temperature"),
    (["--policy", "epsilon-greedy:epsilon=1.5"], "epsilon"),
    (["--policy", "thompson:prior=3"], "prior"),
    (["--policy", "greedy", "--new-item-slots", "2"], "new-item-slots"),
    (["--attribution-window-hours", "0"], "attribution-window-hours"),
])
def test_a_bad_policy_is_refused_with_exit_2_naming_the_field(model_dir, tmp_path, args, message) -> None:
    refused = cli("serve", "--model-dir", str(model_dir), "--db", f"sqlite:///{tmp_path / 'x.db'}", *args,
                  cwd=tmp_path)
    text = " ".join(refused.stderr.split()) + " ".join(refused.stdout.split())
    assert refused.returncode == 2 and message in text and "Traceback" not in text, text
    assert not (tmp_path / "x.db").exists()  # refused before the database is opened


def test_the_policy_comes_from_the_environment(model_dir, monkeypatch) -> None:
    monkeypatch.setenv("TAILORED_POLICY", "thompson")
    monkeypatch.setenv("TAILORED_NEW_ITEM_SLOTS", "2")
    settings = ServiceSettings.from_env(model_dir)
    served = ServedPolicy(settings.policy, settings.new_item_slots)
    assert parse_policy(served.spec).new_item_slots == 2 and not served.greedy  # type: ignore[attr-defined]


def test_impressions_learnt_in_groups_give_the_state_learnt_one_list_at_a_time(monkeypatch) -> None:
    """The served lists' impressions wait for a group (`FOLD_LISTS`), learnt by the next choice; rewards are learnt
    at once with everything waiting; the state (counts and tally) equals the one of a policy that learnt each list
    on its own."""
    monkeypatch.setattr("tailored.serve.policy.FOLD_SECONDS", 60.0)  # by count only, however slow the machine
    grouped, rng = ServedPolicy("thompson"), np.random.default_rng(0)
    single = parse_policy("thompson")
    items = np.array([f"i{n}" for n in range(40)], dtype=object)
    for _ in range(10):
        shown = items[rng.choice(40, 10, replace=False)]
        grouped.learn(shown, np.arange(1, 11))
        single.learn(Feedback(shown, np.arange(1, 11)))
    assert len(grouped.waiting) == 10 and grouped.tally.impressions == 0  # fewer than FOLD_LISTS lists: waiting
    grouped.learn(items[:3], np.array([1, 2, 3]), np.ones(3), wait=True)  # a POST's rewards: everything learnt now
    single.learn(Feedback(items[:3], np.array([1, 2, 3]), np.ones(3)))
    assert not grouped.waiting and grouped.tally.impressions == 100 and grouped.tally.rewards == 3
    for name, value in single.state().items():
        np.testing.assert_array_equal(grouped.policy.state()[name], value)
    for _ in range(FOLD_LISTS - 1):
        grouped.learn(items[:10], np.arange(1, 11))
    pool = Candidates(items, np.linspace(1, 0, 40), np.zeros(40, bool))
    grouped.choose(pool, 10, "ab" * 16)  # not due yet: the choice leaves them waiting
    assert len(grouped.waiting) == FOLD_LISTS - 1
    grouped.learn(items[:10], np.arange(1, 11))
    grouped.choose(pool, 10, "cd" * 16)  # a full group: learnt by the next choice, before it chooses
    assert not grouped.waiting and grouped.tally.impressions == 100 + 10 * FOLD_LISTS
