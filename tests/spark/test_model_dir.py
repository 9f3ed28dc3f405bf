"""`write_model_dir`: a Spark-trained ALS model as the normal model directory, read by `load_model` and `tailored
recommend` unchanged; its lists are the factors scored by hand with the training items left out, and its state is
what a local Recommender fitted on the same interactions holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tailored.data.activity import DAY
from tailored.data.dataset import Dataset
from tailored.errors import DataError
from tailored.models.base import top_k
from tailored.pipeline.recommender import build_recommender
from tailored.pipeline.trending import trending_items as local_trending
from tailored.registry.model_dir import load_model
from tailored.spark.als import train_als
from tailored.spark.model_dir import write_model_dir
from tailored.spark.neighbours import train_item_knn
from tailored.spark.popularity import train_popularity, trending_items


def interactions(seed: int = 3, rows: int = 400, timestamps: bool = True) -> pd.DataFrame:
    """Users u00..u39 x items i00..i29 with skewed popularity, some repeated pairs, 90 days of timestamps."""
    rng = np.random.default_rng(seed)
    items = rng.zipf(1.6, rows) % 30
    frame = pd.DataFrame({"user_id": [f"u{u:02d}" for u in rng.integers(0, 40, rows)],
                          "item_id": [f"i{i:02d}" for i in items], "value": 1.0})
    if timestamps:
        frame["timestamp"] = (1_700_000_000 + rng.integers(0, 90 * DAY, rows)).astype(np.int64)
    return frame


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    frame = interactions()
    df = spark.createDataFrame(frame)
    factors = train_als(df, factors=4, reg=0.5, alpha=2.0, epochs=2, seed=1, block_count=1)
    directory = write_model_dir(factors, df, tmp_path_factory.mktemp("spark") / "model", chunk_rows=7)
    users = factors.users.toPandas().set_index("user_id")
    items = factors.items.toPandas().set_index("item_id")
    return frame, factors, directory, users, items


def test_load_model_lists_are_the_factors_scored_with_seen_items_left_out(trained) -> None:
    frame, factors, directory, users, items = trained
    model = load_model(directory)
    assert model.scorer.algorithm == "als" and model.weighting_ == "binary"
    assert not list(directory.parent.glob(".model.*"))  # nothing staged is left beside it
    user_ids = np.array(["u03", "u17", "u25", "u39"])
    lists = model.recommend(user_ids, n=5)
    x = np.stack(users.loc[user_ids, "factors"].to_numpy()).astype(np.float32)
    y = np.stack(items["factors"].to_numpy()).astype(np.float32)
    scores = x @ y.T
    seen = frame.groupby("user_id")["item_id"].agg(set)
    for row, user in enumerate(user_ids):
        scores[row, items.index.isin(list(seen[user]))] = -np.inf
    best, values = top_k(scores, 5)
    for row, user in enumerate(user_ids):
        mine = lists[lists["user_id"] == user].sort_values("rank")
        assert mine["item_id"].tolist() == items.index.to_numpy()[best[row]].tolist()
        np.testing.assert_allclose(mine["score"].to_numpy(), values[row], rtol=1e-5)
        assert not set(mine["item_id"]) & seen[user]


def test_state_is_what_a_local_recommender_fitted_on_the_same_data_holds(trained) -> None:
    frame, _, directory, _, _ = trained
    spark_model = load_model(directory)
    local = build_recommender("als", {"factors": 4, "epochs": 1}).fit(Dataset.from_frame(frame))
    users = local.users_.index(spark_model.users_.external_ids, missing="raise")
    items = local.items_.index(spark_model.items_.external_ids, missing="raise")
    assert len(users) == len(local.users_) and len(items) == len(local.items_)
    for name in ("seen_", "last_seen_"):
        mine, theirs = getattr(spark_model, name), getattr(local, name)[users][:, items]
        assert (mine != theirs).nnz == 0, name
    np.testing.assert_array_equal(spark_model.first_seen_, local.first_seen_[items])
    assert (spark_model.daily_counts_ != local.daily_counts_[items]).nnz == 0
    assert spark_model.counts_end_ == local.counts_end_
    np.testing.assert_array_equal(spark_model.fallback_.item_scores_, local.fallback_.item_scores_[items])
    assert spark_model.warm_users_.all() and spark_model.candidate_items_.all()
    assert spark_model.trained_until == local.trained_until


def test_recommend_command_reads_it_unchanged(trained, tmp_path) -> None:
    from tailored.cli import app

    _, _, directory, _, _ = trained
    output = tmp_path / "lists.csv"
    result = CliRunner().invoke(app, ["recommend", "--model-dir", str(directory), "--output", str(output),
                                      "--all-users", "--k", "3"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(output, dtype={"user_id": str, "item_id": str})
    expected = load_model(directory).recommend(load_model(directory).users_.external_ids, n=3)
    assert len(written) == 40 * 3
    assert written["item_id"].tolist() == expected["item_id"].tolist()


def test_item_knn_scores_are_the_local_ones(trained, spark, tmp_path) -> None:
    frame = trained[0]
    params = {"similarity": "cosine", "alpha": 0.5, "neighbors": 100}
    df = spark.createDataFrame(frame)
    model = load_model(write_model_dir(train_item_knn(df, **params), df, tmp_path / "knn"))
    local = build_recommender("item-knn", params).fit(Dataset.from_frame(frame))
    users = local.users_.index(model.users_.external_ids, missing="raise")
    items = local.items_.index(model.items_.external_ids, missing="raise")
    mine = model.scorer.score(np.arange(len(users)))
    np.testing.assert_allclose(mine, local.scorer.score(users)[:, items], rtol=1e-5, atol=1e-6)
    assert (model.scorer.user_items_ != local.scorer.user_items_[users][:, items]).nnz == 0
    lists = model.recommend(["u05"], n=5)
    assert len(lists) == 5 and not set(lists["item_id"]) & set(frame.loc[frame["user_id"] == "u05", "item_id"])


def test_popularity_without_timestamps_and_bad_input(spark, tmp_path) -> None:
    frame = interactions(seed=5, rows=120, timestamps=False)
    df = spark.createDataFrame(frame)
    model = load_model(write_model_dir(train_popularity(df), df, tmp_path / "plain"))
    assert model.last_seen_ is None and model.daily_counts_ is None and model.trained_until is None
    local = build_recommender("popularity").fit(Dataset.from_frame(frame))
    items = local.items_.index(model.items_.external_ids, missing="raise")
    np.testing.assert_array_equal(model.scorer.item_scores_, local.scorer.item_scores_[items])
    lists = model.recommend(["u01"], n=4)
    expected = np.sort(local.scorer.item_scores_[~np.isin(local.items_.external_ids,
                                                          frame.loc[frame["user_id"] == "u01", "item_id"])])[::-1]
    np.testing.assert_array_equal(lists["score"].to_numpy(), expected[:4])
    with pytest.raises(DataError, match="lacks column 'item_id'"):
        write_model_dir(train_popularity(df), df.drop("item_id"), tmp_path / "bad")
    with pytest.raises(DataError, match="SparkFactors"):
        write_model_dir(model, df, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_trending_is_the_local_one(trained, spark) -> None:
    frame = trained[0]
    local = build_recommender("popularity").fit(Dataset.from_frame(frame))
    theirs = local_trending(local, k=6, window_days=20, min_count=2)
    mine = trending_items(spark.createDataFrame(frame), k=6, window_days=20, min_count=2).toPandas()
    assert mine.columns.tolist() == theirs.columns.tolist() and mine["rank"].tolist() == list(range(1, 7))
    for column in ("score", "window_count", "expected_count"):
        np.testing.assert_allclose(mine[column].to_numpy(), theirs[column].to_numpy(), rtol=1e-6)  # local: float32
    scores = dict(zip(theirs["item_id"], theirs["score"], strict=True))
    assert all(scores.get(item, score) == pytest.approx(score) for item, score in zip(mine["item_id"], mine["score"]))


@pytest.mark.parametrize("baskets", ["basket_id", "sessions"])
def test_items_bought_together_are_the_local_counts(spark, tmp_path, baskets: str) -> None:
    """Baskets from a basket_id column, or sessions (rows of a user less than 30 minutes apart): the co-purchase
    counts and the number of baskets equal a local Recommender's, so complementary items work on a Spark model."""
    rng = np.random.default_rng(8)
    visits = rng.integers(0, 120, 600)  # 120 visits of 20 users, a few items each
    frame = pd.DataFrame({"user_id": [f"u{v % 20:02d}" for v in visits],
                          "item_id": [f"i{i:02d}" for i in (rng.zipf(1.5, 600) + visits % 3) % 25],
                          "value": 1.0,
                          "timestamp": 1_700_000_000 + visits * 4 * 3_600 + rng.integers(0, 1_200, 600)})
    if baskets == "basket_id":
        frame["basket_id"] = [f"b{v}" for v in visits // 40]  # two visits of a user (v, v + 20) share a basket
    df = spark.createDataFrame(frame)
    directory = write_model_dir(train_popularity(df), df, tmp_path / "model", chunk_rows=11)
    mine = load_model(directory)
    local = build_recommender("popularity").fit(Dataset.from_frame(frame))
    items = local.items_.index(mine.items_.external_ids, missing="raise")
    assert mine.basket_count_ == local.basket_count_ == (60 if baskets == "basket_id" else 120)
    assert (mine.co_purchase_ != local.co_purchase_[items][:, items]).nnz == 0
    assert (mine.co_purchase_ - mine.co_purchase_.T).nnz == 0 and mine.co_purchase_.max() > 1
