"""Drift report: the same behaviour is stable, a new taste is significant drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.monitoring.drift import drift_report, population_stability_index, recent_window
from tailored.errors import DataError
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender


def month(seed: int, popular: range, start: int) -> pd.DataFrame:
    """300 users, 3,000 interactions, 80% of them on the ``popular`` items."""
    rng = np.random.default_rng(seed)
    items = np.where(rng.random(3000) < 0.8, rng.choice(list(popular), 3000), rng.integers(0, 100, 3000))
    return pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 300, 3000)], "item_id": [f"i{i}" for i in items],
                         "timestamp": start + rng.integers(0, 30 * 86_400, 3000)})


def test_psi_is_zero_for_equal_distributions_and_grows_with_the_shift() -> None:
    assert population_stability_index([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-9)
    assert population_stability_index([10, 20, 30], [30, 20, 10]) > 0.25


def test_same_behaviour_is_stable_and_a_new_taste_is_significant() -> None:
    train = month(0, range(0, 10), 0)
    model = Recommender(create_scorer("popularity")).fit(Dataset.from_frame(train))
    same = drift_report(model, month(1, range(0, 10), 30 * 86_400))
    assert same.verdict == "stable" and same.item_popularity_psi < 0.1, same
    shifted = drift_report(model, month(2, range(50, 60), 30 * 86_400))
    assert shifted.item_popularity_psi > 0.25 and shifted.verdict.startswith("significant"), shifted
    both = pd.concat([train, month(3, range(50, 60), 30 * 86_400)])
    assert len(recent_window(both, 30)) < len(both)
    with pytest.raises(DataError, match="No interactions"):
        drift_report(model, both.iloc[:0])



def test_a_small_window_of_the_same_behaviour_stays_stable_thanks_to_the_noise_floor() -> None:
    model = Recommender(create_scorer("popularity")).fit(Dataset.from_frame(month(0, range(0, 10), 0)))
    window = month(4, range(0, 10), 30 * 86_400).iloc[:300]
    small = drift_report(model, window)
    assert small.item_popularity_psi > 0.25 and small.noise_floor > 0.25  # sampling noise alone
    assert small.verdict == "stable", small


def test_drift_and_retrain_from_the_command_line(tmp_path) -> None:
    import json

    from tests.cli.helpers import cli, ok

    old, new = month(0, range(0, 10), 0), month(5, range(50, 60), 30 * 86_400)
    old.to_csv(tmp_path / "old.csv", index=False)
    pd.concat([old, new]).to_csv(tmp_path / "all.csv", index=False)
    ok(cli("train", "--interactions", "old.csv", "--algorithm", "item-knn", "--param", "weighting=log1p",
           "--model-dir", "model", cwd=tmp_path))
    result = ok(cli("drift", "--interactions", "all.csv", "--model-dir", "model", "--window-days", "30", cwd=tmp_path))
    assert "significant drift" in result.stdout
    ok(cli("retrain", "--interactions", "all.csv", "--model-dir", "model", "--window-days", "30",
           "--output-dir", "fresh", cwd=tmp_path))
    manifest = json.loads((tmp_path / "fresh" / "manifest.json").read_text())
    assert (manifest["algorithm"], manifest["recommender"]["weighting"]) == ("item-knn", "log1p")
    assert manifest["window_days"] == 30 and manifest["n_interactions"] < len(old) + len(new)
    result = ok(cli("drift", "--interactions", "all.csv", "--model-dir", "fresh", "--window-days", "30", cwd=tmp_path))
    assert "stable" in result.stdout


def test_user_activity_segments_and_their_psi() -> None:
    rng = np.random.default_rng(7)
    heavy = [(f"h{u}", f"i{i}") for u in range(20) for i in rng.choice(100, 40, replace=False)]
    light = [(f"l{u}", f"i{i}") for u in range(80) for i in rng.choice(100, 5, replace=False)]
    train = pd.DataFrame(heavy + light, columns=["user_id", "item_id"])
    model = Recommender(create_scorer("popularity")).fit(Dataset.from_frame(train))
    same = drift_report(model, train.sample(600, random_state=0))
    assert same.user_activity_psi < same.activity_noise_floor + 0.1 and same.verdict == "stable", same
    newcomers = pd.DataFrame({"user_id": [f"n{u}" for u in range(300)],
                              "item_id": train["item_id"].sample(300, random_state=1).to_numpy()})
    arrived = drift_report(model, newcomers)
    assert arrived.user_activity_psi > 0.25 and arrived.new_user_share == 1.0, arrived
    assert arrived.verdict.startswith("significant")  # same items, new people: the user side sees it
    assert arrived.item_popularity_psi - arrived.noise_floor < 0.25
