"""The HTTP driver against a real `tailored serve` (uvicorn in a thread, a real SQLite store): the world's traffic
asked over HTTP, its clicks and purchases posted with their exposure ids and credited to them, arriving items PUT."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.errors import ConfigError
from tailored.registry.model_dir import save_model
from tailored.serve import ServiceSettings, create_app
from tailored.simulation.http import HttpDriver
from tailored.simulation.run import simulate, trained_model
from tailored.simulation.world import World, WorldSpec
from tailored.store import EventStore
from tests.serve.test_service import serving

IMPRESSIONS = 200


@pytest.mark.slow
def test_a_run_over_http_is_logged_and_credited_by_the_service(tmp_path) -> None:
    world = World(WorldSpec(scenario="new-items", users=150, items=150, categories=10))
    save_model(trained_model(world), tmp_path / "model")
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url)
    key = store.create_key(["recommend", "events:write", "admin"])
    settings = ServiceSettings(tmp_path / "model", url, policy="uniform", max_queue_ms=10_000)  # a loaded test machine
    with serving(create_app(settings)) as base:
        run = simulate(world, ["uniform"], HttpDriver(base, key, threads=4, block=50), IMPRESSIONS,
                       keep_log=True).runs[0]
        with pytest.raises(ConfigError, match="serves 'uniform', not 'greedy'"):
            simulate(world, ["greedy"], HttpDriver(base, key), 100)
    assert run.policy == "uniform" and run.clicks.sum() > 10 and run.new_shown[IMPRESSIONS // 2 :].sum() > 0
    assert run.log["propensity"].between(0, 1, inclusive="right").all()
    stored = pd.concat(list(store.feedback_log()), ignore_index=True)
    ours = stored[stored["exposure_id"].isin(set(run.log["exposure_id"]))]
    assert ours["exposure_id"].nunique() == IMPRESSIONS
    merged = ours.merge(run.log, on=["exposure_id", "position"], suffixes=("_stored", ""))
    assert len(merged) == len(run.log)
    np.testing.assert_array_equal(merged["item_id_stored"], merged["item_id"])
    np.testing.assert_array_equal(merged["click_stored"], merged["click"])  # every click credited to its list
    np.testing.assert_allclose(merged["revenue_stored"], merged["revenue"])
    assert set(world.item_ids[world.new]) <= store.item_ids()
