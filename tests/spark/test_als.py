"""`train_als`: the Recommender's weighting reproduced on Spark, and MLlib solving the documented problem: each user's
factors are the exact ALS solve with the local confidence ``alpha * w`` (floored at 1) and ``regParam * n_u``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.activity import DAY
from tailored.data.dataset import Dataset
from tailored.data.transforms import apply_weighting, decayed, resolve_weighting
from tailored.errors import ConfigError, DataError
from tailored.spark.als import mllib_params, train_als, weighted_interactions


def counts(seed: int = 0, rows: int = 300, heavy: bool = True) -> pd.DataFrame:
    """Play counts of 25 users x 15 items (repeated pairs; one pair played 500 times when ``heavy``), 60 days."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 25, rows)],
                          "item_id": [f"i{i}" for i in rng.integers(0, 15, rows)],
                          "value": rng.integers(1, 4, rows).astype(float),
                          "timestamp": (1_600_000_000 + rng.integers(0, 60 * DAY, rows)).astype(np.int64)})
    if heavy:
        frame.loc[0, "value"] = 500.0
    return frame


def local_weights(frame: pd.DataFrame, weighting: str, alpha: float, half_life: float | None) -> pd.Series:
    dataset = Dataset.from_frame(frame)
    concrete, _ = resolve_weighting(weighting, dataset, explicit=False)
    coo = apply_weighting(decayed(dataset, half_life), concrete, alpha).matrix().tocoo()
    index = pd.MultiIndex.from_arrays([dataset.users.ids(coo.row), dataset.items.ids(coo.col)])
    return pd.Series(coo.data.astype(np.float64), index).sort_index()


@pytest.mark.parametrize(("weighting", "heavy", "half_life", "expected"), [
    ("auto", True, None, "log1p"), ("confidence", True, 20.0, "confidence"), ("raw", True, 7.0, "raw"),
])
def test_weighting_is_the_recommenders(spark, weighting, heavy, half_life, expected) -> None:
    frame = counts(heavy=heavy)
    weighted, concrete = weighted_interactions(spark.createDataFrame(frame), weighting, 0.7, half_life)
    assert concrete == expected
    mine = weighted.toPandas().set_index(["user_id", "item_id"])["value"].sort_index()
    theirs = local_weights(frame, weighting, 0.7, half_life)
    assert mine.index.equals(theirs.index)
    np.testing.assert_allclose(mine.to_numpy(), theirs.to_numpy(), rtol=2e-6)  # the local matrix is float32


def test_user_factors_solve_the_mapped_problem(spark) -> None:
    """After the last epoch MLlib's user factors are the exact solve given its item factors: with the local
    confidence ``c = alpha * w`` (1 where that is 1 or less) and the ridge ``regParam * n_u`` of ALS-WR."""
    frame, alpha = counts(seed=1), 1.2
    model = train_als(spark.createDataFrame(frame), factors=3, reg=2.0, alpha=alpha, epochs=2, seed=5,
                      weighting="log1p", block_count=1)
    assert model.params["weighting"] == "log1p" and model.params["mllib"]["alpha"] == 1.0
    weights = local_weights(frame, "log1p", 1.0, None)
    pairs, users = len(weights), weights.index.get_level_values(0).nunique()
    items = weights.index.get_level_values(1).nunique()
    assert model.params["mllib"]["regParam"] == pytest.approx(2.0 * (users + items) / (2 * pairs))
    x = model.users.toPandas().set_index("user_id")["factors"]
    y = model.items.toPandas().set_index("item_id")["factors"]
    item_factors = np.stack(y.to_numpy()).astype(np.float64)
    gram = item_factors.T @ item_factors
    floored = 0
    for user, row in weights.groupby(level=0):
        history = item_factors[y.index.get_indexer(row.index.get_level_values(1))]
        confidence = np.maximum(alpha * row.to_numpy(), 1.0)
        floored += int((alpha * row.to_numpy() < 1.0).sum())
        system = gram + (history.T * (confidence - 1.0)) @ history
        system += model.params["mllib"]["regParam"] * len(row) * np.eye(3)
        np.testing.assert_allclose(x[user], np.linalg.solve(system, history.T @ confidence), rtol=2e-3, atol=2e-4)
    assert floored > 0  # the floor was exercised: log1p(1) * 1.2 < 1


def test_parameters_and_errors(spark) -> None:
    params = mllib_params(factors=8, reg=10.0, alpha=4.0, epochs=3, seed=2, users=100, items=300, pairs=4000)
    assert params == {"rank": 8, "maxIter": 3, "seed": 2, "alpha": 1.0, "implicitPrefs": True, "regParam": 0.5,
                      "nonnegative": False}
    with pytest.raises(DataError, match="at least one"):
        mllib_params(8, 1.0, 1.0, 1, 0, 0, 0, 0)
    df = spark.createDataFrame(counts(rows=20))
    with pytest.raises(ConfigError, match="factors >= 1"):
        train_als(df, factors=0)
    with pytest.raises(ConfigError, match="weighting='tfidf'"):
        weighted_interactions(df, "tfidf")
    with pytest.raises(DataError, match="lacks column 'user_id'"):
        weighted_interactions(df.drop("user_id"))
