"""Spark batch scoring: the same lists as the local engine on the same factors (MovieLens 100K P1 ALS, and tied
scores), lazy over the users (nothing about them reaches the driver), and the lists written to a database table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError, DataError
from tailored.models.als import ALSScorer
from tailored.models.base import top_k
from tailored.pipeline.recommender import Recommender
from tailored.spark.io import write_frame
from tailored.spark.scoring import exact_top_k, recommend_all, write_table

FACTOR_SCHEMA = "{} string, factors array<float>"


def _frames(spark: Any, user_ids: np.ndarray, user_factors: np.ndarray, item_ids: np.ndarray,
            item_factors: np.ndarray) -> tuple[Any, Any]:
    users = pd.DataFrame({"user_id": user_ids, "factors": list(user_factors)})
    items = pd.DataFrame({"item_id": item_ids, "factors": list(item_factors)})
    return (spark.createDataFrame(users, FACTOR_SCHEMA.format("user_id")),
            spark.createDataFrame(items, FACTOR_SCHEMA.format("item_id")))


def test_movielens_lists_equal_the_local_engine(spark: Any, ml100k_splits_dir: Path) -> None:
    train = pd.read_csv(ml100k_splits_dir / "P1.train.csv", dtype={"user_id": str, "item_id": str})
    model = Recommender(ALSScorer(factors=16, epochs=4, seed=0)).fit(Dataset.from_frame(train))
    user_ids = model.users_.external_ids.astype(str)
    local = model.recommend(user_ids, 10, warn=False)[["user_id", "item_id", "rank", "score"]]
    users, items = _frames(spark, user_ids, model.scorer.user_factors_, model.items_.external_ids.astype(str),
                           model.scorer.item_factors_)
    seen = spark.createDataFrame(train[["user_id", "item_id"]])
    lists = recommend_all(users, items, seen, k=10, block_users=300).toPandas()
    key = ["user_id", "rank"]
    lists = lists.sort_values(key, ignore_index=True)
    local = local.sort_values(key, ignore_index=True).astype({"rank": lists["rank"].dtype})
    pd.testing.assert_frame_equal(lists, local, check_exact=True)


def test_ties_short_lists_and_blocks(spark: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    user_factors = rng.integers(0, 2, size=(7, 2)).astype(np.float32)  # scores 0, 1 or 2: ties everywhere
    item_factors = rng.integers(0, 2, size=(9, 2)).astype(np.float32)
    user_ids = np.array([f"u{n}" for n in range(7)])
    item_ids = np.array([f"i{n}" for n in (5, 3, 8, 0, 1, 7, 2, 6, 4)])  # not in id order: sorted on the driver
    seen = pd.DataFrame({"user_id": ["u0"] * 7 + ["u1", "u1", "u9"],
                         "item_id": ["i0", "i1", "i2", "i3", "i4", "i5", "i6", "i0", "nowhere", "i1"]})
    users, items = _frames(spark, user_ids, user_factors, item_ids, item_factors)
    lists = recommend_all(users, items, spark.createDataFrame(seen), k=4, block_users=3).toPandas()

    order = np.argsort(item_ids)
    scores = user_factors @ item_factors[order].T
    for user, history in seen.groupby("user_id")["item_id"]:
        if user in user_ids:
            columns = np.searchsorted(item_ids[order], history[history.isin(item_ids)])
            scores[np.flatnonzero(user_ids == user)[0], columns] = -np.inf
    best, values = top_k(scores, 4)
    rows, ranks = np.nonzero(best >= 0)
    expected = pd.DataFrame({"user_id": user_ids[rows], "item_id": item_ids[order][best[rows, ranks]],
                             "rank": ranks + 1, "score": values[rows, ranks].astype(np.float64)})
    key = ["user_id", "rank"]
    pd.testing.assert_frame_equal(lists.sort_values(key, ignore_index=True),
                                  expected.astype({"rank": "int32"}).sort_values(key, ignore_index=True))
    assert lists.groupby("user_id").size().to_dict() == {f"u{n}": 2 if n == 0 else 4 for n in range(7)}
    written = write_frame(recommend_all(users, items, spark.createDataFrame(seen), k=4, block_users=3),
                          tmp_path / "lists.parquet")  # the files of a campaign, written whole or not at all
    pd.testing.assert_frame_equal(pd.read_parquet(written).sort_values(key, ignore_index=True),
                                  lists.sort_values(key, ignore_index=True))
    no_seen = recommend_all(users, items, None, k=9).toPandas()
    assert len(no_seen) == 7 * 9


@pytest.mark.parametrize("k", [1, 3, 10, 12])
def test_exact_top_k_is_the_local_top_k(k: int) -> None:
    rng = np.random.default_rng(k)
    scores = np.vstack([rng.random((50, 12)), rng.integers(0, 3, (50, 12))]).astype(np.float32)  # ties below
    scores[rng.random(scores.shape) < 0.3] = -np.inf  # seen items: some rows keep fewer than k + 1
    scores[7] = -np.inf
    for got, expected in zip(exact_top_k(scores, k), top_k(scores, k), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_users_are_never_read_on_the_driver(spark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from pyspark.sql import functions as F

    items = spark.createDataFrame(pd.DataFrame({"item_id": ["a", "b"], "factors": [[1.0], [2.0]]}),
                                  FACTOR_SCHEMA.format("item_id"))
    poisoned = spark.range(1000).select(  # any evaluation of a user's row fails
        F.col("id").cast("string").alias("user_id"),
        F.raise_error(F.lit("a user's factors were evaluated")).cast("array<float>").alias("factors"))
    lists = recommend_all(poisoned, items, None, k=1)  # no job runs over the users
    lists.explain()
    plan = capsys.readouterr().out
    assert "MapInArrow" in plan and "Range (0, 1000" in plan
    with pytest.raises(Exception, match="a user's factors were evaluated"):
        lists.collect()


def test_bad_input_is_named(spark: Any) -> None:
    items = spark.createDataFrame(pd.DataFrame({"item_id": ["a", "a"], "factors": [[1.0], [2.0]]}),
                                  FACTOR_SCHEMA.format("item_id"))
    users = spark.createDataFrame(pd.DataFrame({"user_id": ["u"], "factors": [[1.0, 2.0]]}),
                                  FACTOR_SCHEMA.format("user_id"))
    with pytest.raises(DataError, match=r"repeats item ids, e.g. \['a'\]"):
        recommend_all(users, items, None)
    with pytest.raises(DataError, match=r"users frame lacks column\(s\) \['factors'\]"):
        recommend_all(users.select("user_id"), items, None)
    with pytest.raises(ConfigError, match="k and block_users must be 1 or more"):
        recommend_all(users, items, None, k=0)
    with pytest.raises(Exception, match="User 'u' has 2 factors .* but the items have 1"):
        recommend_all(users, items.limit(1), None).collect()


def test_write_table_replaces_appends_and_fails_whole(spark: Any, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    frame = pd.DataFrame({"user_id": [f"u{n // 3}" for n in range(30)], "item_id": [f"i{n % 7}" for n in range(30)],
                          "rank": [n % 3 + 1 for n in range(30)], "score": np.linspace(1, 0, 30)})
    lists = spark.createDataFrame(frame).repartition(3)
    assert write_table(lists, url, "campaign") == 30
    engine = sa.create_engine(url)

    def stored() -> pd.DataFrame:
        return pd.read_sql_table("campaign", engine).sort_values(["user_id", "rank"], ignore_index=True)

    pd.testing.assert_frame_equal(stored(), frame.sort_values(["user_id", "rank"], ignore_index=True))
    assert write_table(lists, url, "campaign") == 30 and len(stored()) == 30  # replace: not doubled
    assert write_table(lists.limit(4), url, "campaign", mode="append") == 4 and len(stored()) == 34
    broken = lists.withColumn("score", F.when(F.col("rank") == 3, F.raise_error(F.lit("boom"))).otherwise(
        F.col("score")).cast("double"))
    with pytest.raises(Exception, match="boom"):
        write_table(broken, url, "campaign")
    assert len(stored()) == 34 and sa.inspect(engine).get_table_names() == ["campaign"]  # as it was, no staging
    with pytest.raises(DataError, match=r"lacks column\(s\) \['rank'"):
        write_table(lists.drop("rank"), url, "campaign")


def test_calendar_rules_and_max_share_stages_equal_the_local_engine(spark: Any) -> None:
    import datetime as dt

    from tailored.query import Context
    from tailored.rank.calendar import CalendarAdjuster
    from tailored.rank.rules import BusinessRules, MaxShare

    rng = np.random.default_rng(3)
    item_ids = np.array([f"i{n:02d}" for n in range(15)])
    pairs = pd.DataFrame({"user_id": np.repeat([f"u{n}" for n in range(40)], 4),
                          "item_id": np.concatenate([item_ids, rng.choice(item_ids, 160 - 15)])}).drop_duplicates()
    attributes = pd.DataFrame({"item_id": item_ids, "category": ["food", "toys", "books"] * 5,
                               "brand": ["a", "a", "b", "c", "c"] * 3, "price": np.arange(15.0)})
    advent = {"name": "Advent", "start": "12-01", "end": "12-24", "factor": 3.0, "items": [], "categories": ["books"],
              "tags": []}
    stages = [CalendarAdjuster([advent], builtin=False),
              BusinessRules(exclude_categories=["Toys"], max_price=12.0, pinned=["i06"], promoted={"i03": 4.0}),
              MaxShare(column="brand", max_share=0.4)]
    model = Recommender(ALSScorer(factors=4, epochs=3, seed=0), stages=stages).fit(
        Dataset.from_frame(pairs, items=attributes))
    context = Context(moment=dt.datetime(2026, 12, 20, tzinfo=dt.UTC))
    user_ids = model.users_.external_ids.astype(str)
    local = model.recommend(user_ids, 5, context=context, warn=False)[["user_id", "item_id", "rank", "score"]]
    undated = model.recommend(user_ids, 5, warn=False)  # no date: no calendar event, other lists
    assert not undated["item_id"].reset_index(drop=True).equals(local["item_id"].reset_index(drop=True))
    users, items = _frames(spark, user_ids, model.scorer.user_factors_, model.items_.external_ids.astype(str),
                           model.scorer.item_factors_)
    lists = recommend_all(users, items, spark.createDataFrame(pairs), k=5, block_users=16, stages=model.stages,
                          item_attributes=attributes, context=context).toPandas()
    key = ["user_id", "rank"]
    pd.testing.assert_frame_equal(lists.sort_values(key, ignore_index=True),
                                  local.sort_values(key, ignore_index=True).astype({"rank": "int32"}))
    firsts = lists.groupby("user_id")["item_id"].first()
    unseen = ~firsts.index.isin(pairs.loc[pairs["item_id"] == "i06", "user_id"])
    assert firsts[unseen].eq("i06").all() and unseen.sum() > 30  # pinned for everyone who has not bought it
    assert not lists["item_id"].isin(item_ids[1::3]).any() and not lists["item_id"].isin(["i13", "i14"]).any()


def test_write_table_on_postgresql(spark: Any, postgres_url: str) -> None:
    from pyspark.sql import functions as F

    frame = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"], "rank": [1, 2, 1],
                          "score": [0.5, 0.25, 0.125]})
    lists = spark.createDataFrame(frame).repartition(2)
    assert write_table(lists, postgres_url, "campaign") == 3
    broken = lists.withColumn("score", F.when(F.col("user_id") == "u2", F.raise_error(F.lit("boom"))).otherwise(
        F.col("score")).cast("double"))
    with pytest.raises(Exception, match="boom"):
        write_table(broken, postgres_url, "campaign")
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    stored = pd.read_sql_table("campaign", engine).sort_values(["user_id", "rank"], ignore_index=True)
    assert sa.inspect(engine).get_table_names() == ["campaign"]
    engine.dispose()
    pd.testing.assert_frame_equal(stored, frame)


def test_blocks_are_sized_from_the_catalogue_within_the_memory_budget() -> None:
    from tailored.spark.scoring import BLOCK_BYTES, BYTES_PER_PAIR, MAX_BLOCK_USERS, block_size

    assert block_size(1_000) == MAX_BLOCK_USERS
    for items in (20_000, 200_000, 1_000_000):
        users = block_size(items)
        assert users * items * BYTES_PER_PAIR <= BLOCK_BYTES < (users + 1) * items * BYTES_PER_PAIR
    assert block_size(10**12) == 1
