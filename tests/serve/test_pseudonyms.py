"""A pseudonymised store serves a model trained on its own export, and refuses one trained on ids in clear (every
user would silently get the cold-start answer)."""

from __future__ import annotations

import subprocess

import httpx

from tailored.data.dataset import Dataset
from tailored.pipeline import build_recommender
from tailored.registry.model_dir import save_model
from tailored.serve import ServiceSettings, create_app
from tailored.store import EventStore
from tailored.store.database import Event
from tests.serve.test_service import auth, serving, shop
from tests.test_cli import ENV, TAILORED, flat

KEY = "a-pseudonym-key"


def test_a_model_of_ids_in_clear_is_refused_with_a_pseudonym_key(tmp_path) -> None:
    frame, items = shop()
    save_model(build_recommender("item-knn").fit(Dataset.from_frame(frame, items=items)), tmp_path / "model")
    EventStore(f"sqlite:///{tmp_path / 'events.db'}", pseudonym_key=KEY).engine.dispose()
    served = subprocess.run([TAILORED, "serve", "--model-dir", "model", "--db", "sqlite:///events.db", "--port", "0"], cwd=tmp_path,
                            env={**ENV, "TAILORED_PSEUDONYM_KEY": KEY}, capture_output=True, text=True, timeout=120)
    assert served.returncode == 2 and "Traceback" not in served.stderr
    assert "was trained on user ids in clear (100% of its users are not pseudonyms), but TAILORED_PSEUDONYM_KEY is set" \
        in flat(served.stderr)


def test_a_model_trained_on_the_pseudonymised_export_personalises_by_clear_id(tmp_path) -> None:
    frame, items = shop()
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url, pseudonym_key=KEY)
    store.append_events([Event(f"e{row}", user, item, "view", timestamp=time)
                         for row, (user, item, time) in enumerate(frame[["user_id", "item_id", "timestamp"]].itertuples(index=False))])
    exported = next(store.export_events())[["user_id", "item_id", "value", "timestamp"]]
    save_model(build_recommender("item-knn").fit(Dataset.from_frame(exported, items=items)), tmp_path / "model")
    headers = auth(store.create_key(["recommend"]))
    with serving(create_app(ServiceSettings(tmp_path / "model", url, pseudonym_key=KEY))) as base:
        def listed(user: str) -> list[str]:
            answer = httpx.get(f"{base}/v1/users/{user}/recommendations", params={"k": 5}, headers=headers).json()
            return [item["item_id"] for item in answer["items"]]

        assert httpx.get(f"{base}/readyz").status_code == 200
        assert listed("u3") != listed("someone-new")  # the clear id finds the user's pseudonym in the model
    store.engine.dispose()
