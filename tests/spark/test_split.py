"""Spark splits equal the local splitters row for row: MovieLens 100K for P1 (per user, seed 42) and P2 (leave last
out), a small frame with ties in time for every other method."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from tailored.data.dataset import Dataset
from tailored.data.movielens import load_movielens
from tailored.errors import ConfigError, DataError
from tailored.spark import split as spark_split
from tailored.split import SPLITTERS, split_by_name
from tailored.split.base import random_keys as local_random_keys

KEY = ["user_id", "item_id", "timestamp", "value"]


def rows(frame: pd.DataFrame) -> list[tuple]:
    table = frame[KEY].astype({"user_id": str, "item_id": str, "timestamp": np.int64, "value": np.float64})
    return sorted(table.itertuples(index=False, name=None))


def collect_parts(train, test) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both parts in one job (Spark reuses the shared shuffles of one plan)."""
    both = train.withColumn("_part", F.lit(0)).unionByName(test.withColumn("_part", F.lit(1))).toPandas()
    return both[both["_part"] == 0], both[both["_part"] == 1]


def assert_same_split(spark, frame: pd.DataFrame, method: str, df=None, **params) -> pd.DataFrame:
    """Spark's split of ``df`` (default: ``frame`` in Spark) and the local split of ``frame`` hold the same rows;
    returns Spark's test part."""
    local = split_by_name(Dataset.from_frame(frame), method, **params)
    df = spark.createDataFrame(frame) if df is None else df
    train, test = collect_parts(*spark_split.split_by_name(df, method, **params))
    assert rows(test) == rows(local.test.to_frame())
    assert rows(train) == rows(local.train.to_frame())
    assert len(train) > 0 and len(test) > 0
    return test


@pytest.fixture(scope="module")
def ties() -> pd.DataFrame:
    """60 rows, 9 users (ids 1..12 so that text order differs from number order), 14 items, timestamps drawn from 8
    values (many ties in time inside a user and across users), a user with one row."""
    rng = np.random.default_rng(3)
    pairs = pd.DataFrame({"user_id": rng.choice([1, 2, 3, 5, 7, 8, 10, 11, 12], 80),
                          "item_id": rng.integers(1, 15, 80)}).drop_duplicates().head(59)
    frame = pd.concat([pairs, pd.DataFrame({"user_id": [99], "item_id": [4]})], ignore_index=True)
    return pd.DataFrame({"user_id": frame["user_id"].astype(str), "item_id": frame["item_id"].astype(str),
                         "value": rng.integers(1, 6, len(frame)).astype(np.float64),
                         "timestamp": 1_000 + 10 * rng.integers(0, 8, len(frame))}).sample(frac=1, random_state=1)


@pytest.fixture(scope="module")
def ratings(ml100k_dir) -> pd.DataFrame:
    return load_movielens(ml100k_dir).ratings


@pytest.fixture(scope="module")
def ratings_df(spark, ratings):
    frame = spark.createDataFrame(ratings).cache()
    yield frame
    frame.unpersist()


def test_p1_per_user_on_movielens_equals_the_local_split_and_the_shared_file(spark, ratings, ratings_df,
                                                                              ml100k_splits_dir):
    test = assert_same_split(spark, ratings, "per_user", df=ratings_df, test_fraction=0.2, seed=42)
    assert len(test) == 20_000
    shared = pd.read_csv(ml100k_splits_dir / "P1.test.csv", dtype={"user_id": str, "item_id": str})
    keys = ["user_id", "item_id", "timestamp"]
    assert set(test[keys].itertuples(index=False, name=None)) == set(shared[keys].itertuples(index=False, name=None))


def test_p2_leave_last_out_on_movielens_equals_the_local_split(spark, ratings, ratings_df):
    assert len(assert_same_split(spark, ratings, "leave_last_out", df=ratings_df)) == 943


@pytest.mark.parametrize(("method", "params"), [
    ("random", {"test_fraction": 0.3, "seed": 7}),
    ("per_user", {"test_fraction": 0.4, "seed": 5}),
    ("leave_last_out", {"n": 2}),
    ("leave_one_out_random", {"seed": 11}),
    ("temporal", {"test_fraction": 0.25}),
    ("temporal", {"cutoff": 1_030, "horizon_days": 0.0002}),
    ("cold_users", {"fraction": 0.3, "seed": 2}),
    ("cold_items", {"fraction": 0.2, "seed": 9}),
])
def test_every_method_equals_the_local_splitter_on_ties(spark, ties, method, params):
    assert_same_split(spark, ties, method, **params)


def test_keys_are_the_local_draws_at_canonical_positions(spark, ties):
    keyed = spark_split.random_keys(spark.createDataFrame(ties), seed=123).toPandas()
    local = local_random_keys(Dataset.from_frame(ties), 123)
    expected = pd.Series(local, index=pd.MultiIndex.from_frame(ties[["user_id", "item_id", "timestamp"]]))
    got = pd.Series(keyed["_key"].to_numpy(), index=pd.MultiIndex.from_frame(keyed[["user_id", "item_id",
                                                                                      "timestamp"]]))
    assert sorted(keyed["_position"]) == list(range(len(ties)))
    np.testing.assert_array_equal(got.loc[expected.index].to_numpy(), expected.to_numpy())


def test_draws_skip_ahead_exactly_for_runs_and_scattered_positions():
    stream = np.random.default_rng(42).random(3_000_000)
    scattered = np.random.default_rng(0).permutation(np.unique(np.random.default_rng(1).integers(0, 3_000_000, 5_000)))
    for positions in (np.array([1_000_003, 1_000_000, 1_000_001]), np.arange(2_000_000, 2_010_000), scattered):
        np.testing.assert_array_equal(spark_split.uniform_draws(42, positions), stream[positions])


def test_order_statistic_is_exact_beyond_what_it_collects(spark, monkeypatch):
    monkeypatch.setattr(spark_split, "_COLLECTED", 50)
    values = np.random.default_rng(0).integers(0, 10**9, 2_000)
    df = spark.createDataFrame(pd.DataFrame({"t": values}))
    for k in (0, 777, 1_999):
        assert spark_split.kth_smallest(df, "t", k) == np.sort(values)[k]


def test_signatures_match_the_local_splitters():
    for name, local in SPLITTERS.items():
        ours = inspect.signature(spark_split.SPARK_SPLITTERS[name]).parameters
        theirs = inspect.signature(local).parameters
        assert [(p.name, p.default) for p in list(ours.values())[1:]] == [
            (p.name, p.default) for p in list(theirs.values())[1:]]


def test_bad_methods_parameters_and_missing_times_are_named(spark, ties):
    df = spark.createDataFrame(ties)
    with pytest.raises(ConfigError, match="Unknown split method 'weekly'"):
        spark_split.split_by_name(df, "weekly")
    with pytest.raises(ConfigError, match=r"got unexpected \['n'\]"):
        spark_split.split_by_name(df, "random", n=3)
    with pytest.raises(ConfigError, match="test_fraction=1.5"):
        spark_split.split_by_name(df, "per_user", test_fraction=1.5)
    with pytest.raises(DataError, match="needs a 'timestamp' column"):
        spark_split.split_by_name(df.drop("timestamp"), "leave_last_out")
