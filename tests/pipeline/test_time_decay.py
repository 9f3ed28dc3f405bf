"""Preference dynamics at training time: time-decay weighting and a history window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.data.transforms import decayed
from tailored.pipeline.recommender import build_recommender

DAY = 86_400


def drifting_taste() -> pd.DataFrame:
    """Everyone bought 'old' three times a year ago and 'new' once this month."""
    old = [(f"u{u}", "old", 0) for u in range(30)] * 3
    new = [(f"u{u}", "new", 365 * DAY) for u in range(30)]
    return pd.DataFrame(old + new, columns=["user_id", "item_id", "timestamp"])


def test_decay_halves_a_value_per_half_life() -> None:
    frame = pd.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"], "value": [2.0, 2.0],
                          "timestamp": [0, 30 * DAY]})
    values = decayed(Dataset.from_frame(frame), 30.0).values
    np.testing.assert_allclose(values, [1.0, 2.0])
    assert decayed(Dataset.from_frame(frame), None).values.tolist() == [2.0, 2.0]
    with pytest.raises(ConfigError, match="half_life_days must be positive"):
        decayed(Dataset.from_frame(frame), 0.0)


def test_the_scorer_trains_on_decayed_values() -> None:
    dataset = Dataset.from_frame(drifting_taste())
    recent = build_recommender("ease", {"decay_half_life_days": "30", "weighting": "log1p"}).fit(dataset)
    assert recent.decay_half_life_days == 30.0
    old, new = dataset.items.index(np.array(["old", "new"]))
    trained = recent.scorer.user_items_.toarray()
    # old: 3 interactions a year (12.2 half-lives) ago, log1p(3 * 0.5 ** 12.17); new: log1p(1)
    np.testing.assert_allclose(trained[:, old], np.log1p(3 * 0.5 ** (365 / 30)), rtol=1e-5)
    np.testing.assert_allclose(trained[:, new], np.log(2.0), rtol=1e-5)


def test_train_window_and_retrain_keep_the_settings(tmp_path) -> None:
    import json

    from tests.cli.helpers import cli, ok

    drifting_taste().to_csv(tmp_path / "history.csv", index=False)
    ok(cli("train", "--interactions", "history.csv", "--algorithm", "popularity", "--window-days", "30",
           "--param", "decay_half_life_days=10", "--stage", "seasonal:strength=2", "--model-dir", "model",
           cwd=tmp_path))
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["recommender"]["decay_half_life_days"] == 10.0
    assert manifest["stages"][0]["params"]["strength"] == 2.0
    assert manifest["n_interactions"] == 30  # only the last 30 days
    ok(cli("retrain", "--interactions", "history.csv", "--model-dir", "model", "--output-dir", "again", cwd=tmp_path))
    again = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert again["recommender"]["decay_half_life_days"] == 10.0 and again["stages"][0]["params"]["strength"] == 2.0
