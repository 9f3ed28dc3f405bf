"""Spark metrics equal the local evaluation (`evaluate_lists`, what `tailored evaluate` computes) to 1e-9: on MovieLens
100K P1 lists of a local ALS, and on hand-made edge cases (users without a list, tied ranks, short lists, items
outside the catalogue)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError, DataError
from tailored.eval.evaluator import evaluate_lists
from tailored.models.als import ALSScorer
from tailored.pipeline.recommender import Recommender
from tailored.spark.metrics import evaluate

NAMES = ("precision", "recall", "ndcg", "map", "hr", "mrr", "coverage", "gini")
METRICS = [f"{name}@{k}" for k in (10, 5) for name in NAMES]


def _local(recommendations: pd.DataFrame, test: pd.DataFrame, train: pd.DataFrame) -> dict[str, float]:
    table = evaluate_lists(recommendations, test, train, METRICS, bootstrap=0).table
    return dict(zip(table["metric"], table["value"], strict=True))


def _assert_equal(spark_values: dict[str, float], local: dict[str, float]) -> None:
    assert list(spark_values) == METRICS
    for name in METRICS:
        assert spark_values[name] == pytest.approx(local[name], abs=1e-9, rel=0), name


@pytest.fixture(scope="module")
def p1(ml100k_splits_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """P1 train, test and the top-20 lists of a small local ALS for every test user."""
    read = {"dtype": {"user_id": str, "item_id": str}}
    train = pd.read_csv(ml100k_splits_dir / "P1.train.csv", **read)
    test = pd.read_csv(ml100k_splits_dir / "P1.test.csv", **read)
    model = Recommender(ALSScorer(factors=16, epochs=4, seed=0)).fit(Dataset.from_frame(train))
    lists = model.recommend(pd.unique(test["user_id"]), 20, warn=False)[["user_id", "item_id", "rank", "score"]]
    return train, test, lists


def test_movielens_p1_equals_local_evaluation(spark: Any, p1: tuple[pd.DataFrame, ...]) -> None:
    train, test, lists = p1
    dropped = lists[lists["user_id"] != test["user_id"].iloc[0]]  # a test user without a list counts as zeros
    local = _local(dropped, test, train)
    assert 0.05 < local["ndcg@10"] < 0.6 and 0 < local["coverage@10"] < 1 and 0 < local["gini@10"] < 1
    values = evaluate(spark.createDataFrame(dropped), spark.createDataFrame(test), METRICS,
                      train=spark.createDataFrame(train[["user_id", "item_id"]]))
    _assert_equal(values, local)
    by_size = evaluate(spark.createDataFrame(dropped), spark.createDataFrame(test), ["coverage@10", "gini@10"],
                       catalogue_size=train["item_id"].nunique())
    assert by_size == pytest.approx({"coverage@10": local["coverage@10"], "gini@10": local["gini@10"]}, abs=1e-9)


def test_edge_cases_equal_local_evaluation(spark: Any) -> None:
    train = pd.DataFrame({"user_id": ["a", "a", "b", "c", "c", "d"], "item_id": ["1", "2", "3", "4", "5", "6"]})
    test = pd.DataFrame({"user_id": ["a", "a", "a", "b", "c", "e", "e"],
                         "item_id": ["3", "4", "9", "1", "6", "1", "1"]})
    lists = pd.DataFrame({
        # a: tied ranks (the frame's order decides: 4 before 3), an item outside the catalogue (9) that is a hit
        # b: a short list (2 of 10) that hits at rank 2; c: ranks with gaps, unordered rows; d: no test items;
        # e: a test user (repeated test row) without a list
        "user_id": ["a", "a", "a", "a", "b", "b", "c", "c", "c", "d"],
        "item_id": ["5", "4", "3", "9", "2", "1", "6", "1", "2", "1"],
        "rank": [1, 2, 2, 7, 1, 2, 30, 10, 20, 1],
    })
    _assert_equal(evaluate(spark.createDataFrame(lists), spark.createDataFrame(test), METRICS,
                           train=spark.createDataFrame(train)), _local(lists, test, train))


def test_bad_input_is_named(spark: Any) -> None:
    test = spark.createDataFrame(pd.DataFrame({"user_id": ["a"], "item_id": ["1"]}))
    twice = spark.createDataFrame(pd.DataFrame({"user_id": ["b", "a", "a", "a"], "item_id": ["2", "1", "5", "1"],
                                                "rank": [1, 1, 2, 3]}))
    with pytest.raises(DataError, match=r"^1 recommendations repeat an item for the same user, e.g. "
                                        r"\{'user_id': 'a', 'item_id': '1'\}"):
        evaluate(twice, test, ["ndcg@10"])
    words = spark.createDataFrame(pd.DataFrame({"user_id": ["a", "z"], "item_id": ["1", "2"], "rank": ["first", "2"]}))
    with pytest.raises(DataError, match=r"^Column 'rank' of the recommendations has 1 values that are not numbers, "
                                        r"e.g. 'first'"):
        evaluate(words, test, ["ndcg@10"])
    with pytest.raises(DataError, match="The test frame has no rows"):
        evaluate(test.withColumn("rank", test["item_id"].cast("int")), test.filter("user_id = 'nobody'"), ["ndcg@10"])
    with pytest.raises(DataError, match=r"recommendations frame lacks column\(s\) \['rank'\]"):
        evaluate(test, test, ["ndcg@10"])
    with pytest.raises(DataError, match="need the catalogue: pass exactly one of train="):
        evaluate(twice, test, ["gini@10"])
    with pytest.raises(ConfigError, match=r"\['novelty@10'\] asked"):
        evaluate(twice, test, ["novelty@10"])


def test_gini_from_a_histogram_is_the_local_formula() -> None:
    from tailored.eval.metrics import gini_at
    from tailored.spark.metrics import _gini

    rng = np.random.default_rng(0)
    counts = rng.integers(0, 5, size=40)
    counts[:7] = 0
    values, times = np.unique(counts[counts > 0], return_counts=True)

    class Lists:  # the two fields gini_at reads
        item_popularity = np.ones(len(counts))
        items = np.repeat(np.arange(len(counts)), counts)[None, :]

    expected = gini_at(Lists(), Lists.items.shape[1])  # type: ignore[arg-type]
    assert _gini(list(zip(values.tolist(), times.tolist(), strict=True)), len(counts)) == pytest.approx(expected, 1e-12)
    with pytest.raises(DataError, match="show 3 distinct catalogue items but catalogue_size is 2"):
        _gini([(1, 3)], 2)
