"""A pseudonymised store serves a model trained on its own export, and refuses one trained on ids in clear (every
user would silently get the cold-start answer)."""

from __future__ import annotations

import subprocess

import httpx

from tailored.data.dataset import Dataset
from tailored.pipeline.recommender import build_recommender
from tailored.registry.model_dir import save_model
from tailored.serve import ServiceSettings, create_app
from tailored.store import EventStore
from tailored.store.database import Event
from tests.serve.test_service import auth, serving, shop
from tests.cli.helpers import ENV, POOL, TAILORED, flat

KEY = "a-pseudonym-key"


def serve(folder, key: str | None) -> subprocess.CompletedProcess[str]:
    """`tailored serve` on ``folder``'s model and database, with TAILORED_PSEUDONYM_KEY set to ``key``."""
    env = {name: value for name, value in ENV.items() if name != "TAILORED_PSEUDONYM_KEY"}
    env |= {} if key is None else {"TAILORED_PSEUDONYM_KEY": key}
    return subprocess.run([TAILORED, "serve", "--model-dir", "model", "--db", "sqlite:///events.db", "--port", "0"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_a_model_of_ids_in_clear_or_a_missing_key_is_refused_by_serve(tmp_path) -> None:
    frame, items = shop()
    save_model(build_recommender("item-knn").fit(Dataset.from_frame(frame, items=items)), tmp_path / "model")
    EventStore(f"sqlite:///{tmp_path / 'events.db'}", pseudonym_key=KEY).engine.dispose()
    keyless = POOL.submit(serve, tmp_path, None)
    served = serve(tmp_path, KEY)
    assert served.returncode == 2 and "Traceback" not in served.stderr
    assert ("was trained on user ids in clear (100% of its users are not pseudonyms), but TAILORED_PSEUDONYM_KEY is "
            "set") in flat(served.stderr)
    assert keyless.result().returncode == 2
    assert "stores pseudonymised user ids: set TAILORED_PSEUDONYM_KEY" in flat(keyless.result().stderr)


def test_a_model_trained_on_the_pseudonymised_export_personalises_by_clear_id(tmp_path) -> None:
    frame, items = shop()
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url, pseudonym_key=KEY)
    store.append_events([Event(f"e{row}", user, item, "view", timestamp=time)
                         for row, (user, item, time)
                         in enumerate(frame[["user_id", "item_id", "timestamp"]].itertuples(index=False))])
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
