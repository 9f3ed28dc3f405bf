"""A trained user's events count at once, without a retrain: `tailored serve` in its own process over real HTTP and a
real SQLite file -- a purchase leaves the next list, the user's scores are folded in from the training history plus
the event, repurchase cycles count from the event's time, and all of it survives a restart; a second process on the
same database follows within its poll; the fast lane (vector index) steps aside for a user with events since
training."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.pipeline.recommender import build_recommender
from tailored.query import parse_context
from tailored.registry.model_dir import load_model, save_model
from tailored.serve import ServiceSettings, create_app
from tailored.store import EventStore
from tests.serve.test_service import auth, counts, serving, shop
from tests.cli.helpers import ENV, TAILORED, cli, ok

CYCLES = {"c0": 30, "c1": 30, "c2": 30}
"""Every category comes back 30 days after its last purchase."""


@contextmanager
def served(folder: Path, *model: str, **env: str) -> Iterator[str]:
    """`tailored serve` of ``model`` (options; default ``--model-dir model``) on the SQLite file tailored.db of
    ``folder``, on a free port, with ``env`` added to its environment; its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([TAILORED, "serve", *(model or ("--model-dir", "model")), "--port", str(port)],
                              cwd=folder, env=ENV | env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base, deadline = f"http://127.0.0.1:{port}", time.time() + 60
    try:
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not become ready")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


def listed(answer: httpx.Response) -> list[tuple[str, float]]:
    assert answer.status_code == 200, answer.text
    return [(item["item_id"], item["score"]) for item in answer.json()["items"]]


def test_a_purchase_changes_the_next_list_at_once_and_after_a_restart(tmp_path) -> None:
    frame, items = shop()
    frame.to_csv(tmp_path / "train.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    ok(cli("train", "--interactions", "train.csv", "--items", "items.csv", "--algorithm", "ease",
           "--model-dir", "model", cwd=tmp_path))
    key = auth(ok(cli("keys", "create", "--scopes", "recommend,events:write", cwd=tmp_path)).stdout.strip())
    bought_before = set(frame.loc[frame["user_id"] == "u3", "item_id"])
    with served(tmp_path) as base:
        url = f"{base}/v1/users/u3/recommendations"
        before = listed(httpx.get(url, params={"k": 10}, headers=key))
        assert not {item for item, _ in before} & bought_before  # the default exclusion of training purchases
        first = before[0][0]
        rules = {"user_id": "u3", "k": 40, "rules": {"repurchase_days": CYCLES}}
        due = [item for item, _ in listed(httpx.post(f"{base}/v1/recommendations", json=rules, headers=key))
               if item in bought_before]
        assert len(due) >= 2  # bought in 2023: every cycle has elapsed, the rules stage gives them back
        now = time.time()
        events = [{"event_id": "p1", "user_id": "u3", "item_id": first, "type": "purchase", "timestamp": now},
                  {"event_id": "p2", "user_id": "u3", "item_id": due[0], "type": "purchase", "timestamp": now},
                  {"event_id": "p3", "user_id": "u3", "item_id": due[1], "type": "purchase",
                   "timestamp": now - 40 * 86_400}]
        stored = httpx.post(f"{base}/v1/events", json={"events": events}, headers=key)
        assert counts(stored) == {"accepted": 3, "duplicates": 0}
        after = listed(httpx.get(url, params={"k": 10}, headers=key))  # the cached list of `before` is gone
        again = [item for item, _ in listed(httpx.post(f"{base}/v1/recommendations", json=rules, headers=key))]
    assert first not in {item for item, _ in after}
    assert due[0] not in again and due[1] in again  # bought today: 30 days to wait; bought 40 days ago: due
    model = load_model(tmp_path / "model")
    purchases = pd.DataFrame([{"user_id": "u3", "item_id": event["item_id"], "timestamp": event["timestamp"]}
                              for event in events])
    context = parse_context(["recent=" + "|".join(purchases["item_id"])])
    folded = model.with_events(purchases).recommend(["u3"], 10, context=context)
    assert [item for item, _ in after] == folded["item_id"].tolist()  # the fold-in of training + events
    assert [score for _, score in after] == pytest.approx(folded["score"].tolist(), rel=1e-5)
    trained = dict(before)
    assert any(trained[item] != pytest.approx(score) for item, score in after if item in trained)  # scores moved
    with served(tmp_path) as base:  # a new process learns the events from the store
        assert listed(httpx.get(f"{base}/v1/users/u3/recommendations", params={"k": 10}, headers=key)) == after


def test_a_second_process_on_the_same_database_follows_the_events_of_the_first(tmp_path) -> None:
    frame, items = shop()
    save_model(build_recommender("ease").fit(Dataset.from_frame(frame, items=items)), tmp_path / "model")
    key = auth(EventStore(f"sqlite:///{tmp_path / 'tailored.db'}").create_key(["recommend", "events:write"]))
    with served(tmp_path) as first, served(tmp_path, TAILORED_EVENTS_POLL_SECONDS="0.2") as second:
        url = f"{second}/v1/users/u4/recommendations"
        top = listed(httpx.get(url, params={"k": 5}, headers=key))[0][0]  # now in the second process's cache
        event = {"event_id": "other1", "user_id": "u4", "item_id": top, "type": "purchase"}
        assert httpx.post(f"{first}/v1/events", json={"events": [event]}, headers=key).status_code == 200
        deadline, after = time.time() + 10, [top]
        while top in after and time.time() < deadline:
            time.sleep(0.1)
            after = [item for item, _ in listed(httpx.get(url, params={"k": 5}, headers=key))]
    assert top not in after


def test_the_fast_lane_steps_aside_for_a_user_with_events_since_training(tmp_path, monkeypatch) -> None:
    frame, items = shop()
    save_model(build_recommender("als", {"factors": 8}).fit(Dataset.from_frame(frame, items=items)), tmp_path / "model")
    monkeypatch.setattr("tailored.serve.service.ANN_MIN_ITEMS", 1)  # a vector index on 30 items: the fast lane runs
    url = f"sqlite:///{tmp_path / 'events.db'}"
    key = auth(EventStore(url).create_key(["recommend", "events:write"]))
    app = create_app(ServiceSettings(tmp_path / "model", url))
    with serving(app) as base:
        service = app.state.service
        assert service.quick_recommend("u5", 5) is not None  # u5 is answered from the vector index
        first = listed(httpx.get(f"{base}/v1/users/u5/recommendations", params={"k": 5}, headers=key))[0][0]
        event = {"event_id": "f1", "user_id": "u5", "item_id": first, "type": "purchase"}
        assert httpx.post(f"{base}/v1/events", json={"events": [event]}, headers=key).status_code == 200
        after = listed(httpx.get(f"{base}/v1/users/u5/recommendations", params={"k": 5}, headers=key))
        assert service.quick_recommend("u5", 5) is None and service.quick_recommend("u6", 5) is not None
        stored = service.store.latest_events("u5", 10).assign(user_id="u5")
        items, scores = service.model.with_events(stored).top_from_index(service.model.users_.position("u5"), 5)
    assert first not in {item for item, _ in after}
    assert after == list(zip(service.model.items_.ids(items).tolist(), scores.tolist()))  # the index, folded-in factors
