"""The Spark quality check accepts the same rows and gives the same reasons as the local check on the same data;
the transforms equal the local ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data import transforms as local
from tailored.data.dataset import Dataset
from tailored.data.quality import QualityRules, check_quality as local_check
from tailored.errors import ConfigError, DataError
from tailored.spark import quality

NOW = 1_700_000_000


@pytest.fixture(scope="module")
def messy() -> pd.DataFrame:
    """Text cells as read from a CSV: 600 customers buying a heavy-tailed number of times, one customer buying one
    item 569 times, and rows with empty cells, unparsable values and dates, copies, and dates in the future."""
    rng = np.random.default_rng(4)
    users = np.repeat(np.arange(600), 1 + rng.poisson(10, 600))
    items = rng.choice(300, len(users), p=(p := 1 / np.arange(1, 301) ** 1.1) / p.sum())
    counts = np.ceil(rng.lognormal(0, 0.7, len(users)))
    frame = pd.concat([
        pd.DataFrame({"user_id": users.astype(str), "item_id": items.astype(str), "value": counts.astype(str)}),
        pd.DataFrame({"user_id": "extreme", "item_id": "0", "value": ["1"] * 569}),
    ], ignore_index=True)
    frame["timestamp"] = (NOW - 10_000_000 + np.arange(len(frame))).astype(str)
    frame["store"] = rng.choice(["north", "south"], len(frame))
    bad = pd.DataFrame({
        "user_id": [None, " ", "1", "2", "3", "4", "5", "6", "7", "1", "1"],
        "item_id": ["1", "2", None, "4", "5", "6", "7", "8", "9", "1", "1"],
        "value": ["1", "1", "1", "x", "nan", "1", "2e10", "1", "", "3", "3"],
        "timestamp": ["1", "2", "3", "4", "5", "yesterday", "7", str(NOW + 500), "9", "1600000000", "1600000000"],
        "store": ["north"] * 11,
    })
    return pd.concat([frame, bad, frame.iloc[[5, 17]]], ignore_index=True).sample(frac=1, random_state=0)


def normalised(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    table = frame[columns].astype(object).where(frame[columns].notna(), "").astype(str)
    return sorted(table.replace({"None": "", "nan": "", "<NA>": ""}).itertuples(index=False, name=None))


@pytest.mark.parametrize("rules", [
    QualityRules(max_count_zscore=7.0),
    QualityRules(max_count_zscore=7.0, clip_outliers=True, min_user_interactions=5, min_item_interactions=3,
                 max_value=50, min_timestamp="2023-01-01"),
], ids=["reject-outliers", "clip-and-activity"])
def test_same_clean_rows_and_reasons_as_the_local_check(spark, messy, rules):
    expected = local_check(messy, rules, now=NOW)
    result = quality.check_quality(spark.createDataFrame(messy), rules, now=NOW)
    clean = result.clean.toPandas()
    assert list(clean.columns) == list(expected.clean.columns)
    keys = ["user_id", "item_id", "timestamp", "store"]
    assert normalised(clean, keys) == normalised(expected.clean, keys)
    got = clean.sort_values(keys)["value"].to_numpy()
    np.testing.assert_allclose(got, expected.clean.sort_values(keys)["value"].to_numpy(), rtol=1e-12)
    rejected = result.rejected.toPandas()
    columns = ["reason", "user_id", "item_id", "value", "timestamp"]
    assert normalised(rejected, columns) == normalised(expected.rejected, columns)
    assert result.counts == expected.rejected["reason"].value_counts().to_dict()
    reasons = set(result.counts)
    assert {"missing_value:user_id", "missing_value:item_id", "missing_value:value", "invalid_value:value",
            "invalid_timestamp:timestamp", "absurd_value:value", "future_timestamp:timestamp",
            "duplicate_row:all_columns"} <= reasons
    if rules.clip_outliers:
        assert "outlier_count:value" not in reasons and "too_few_interactions:user_id" in reasons
        assert clean.loc[clean["user_id"] == "extreme", "value"].sum() < 569
    else:
        assert result.counts["outlier_count:value"] == 569


def test_ids_absent_from_the_attribute_tables_are_rejected_as_locally(spark, messy):
    users = pd.DataFrame({"user_id": [str(u) for u in range(0, 600, 2)] + ["extreme", "1"]})
    items = pd.DataFrame({"item_id": np.arange(0, 300, 3).astype(np.float64)})  # numbers: "3.0" matches "3"
    rules = QualityRules(max_future_seconds=None)
    expected = local_check(messy, rules, users=users, items=items, now=NOW)
    result = quality.check_quality(spark.createDataFrame(messy), rules, users=spark.createDataFrame(users),
                                   items=spark.createDataFrame(items))
    columns = ["reason", "user_id", "item_id", "value", "timestamp"]
    assert normalised(result.rejected.toPandas(), columns) == normalised(expected.rejected, columns)
    assert result.counts["unknown_id:user_id"] > 1000 and result.counts["unknown_id:item_id"] > 100


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    return pd.DataFrame({"user_id": rng.integers(0, 12, 90).astype(str),
                         "item_id": rng.integers(0, 15, 90).astype(str),
                         "value": rng.integers(0, 9, 90).astype(np.float64),
                         "timestamp": 1_000_000 + rng.integers(0, 40 * 86_400, 90)})


def by_pair(frame: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in ("user_id", "item_id", "timestamp", "value") if c in frame]
    return frame[columns].astype({"value": np.float64}).sort_values(columns[:3]).reset_index(drop=True)


def test_transforms_equal_the_local_ones(spark, small):
    dataset, df = Dataset.from_frame(small), spark.createDataFrame(small)
    pairs = [
        (local.log1p_values(dataset), quality.log1p_values(df)),
        (local.apply_weighting(dataset, "confidence", 2.0), quality.apply_weighting(df, "confidence", 2.0)),
        (local.apply_weighting(dataset, "binary"), quality.apply_weighting(df, "binary")),
        (local.decayed(dataset, 7.0), quality.decayed(df, 7.0)),
        (local.history_window(dataset, days=10), quality.history_window(df, days=10)),
        (local.history_window(dataset, start="1970-01-15", end=2_000_000),
         quality.history_window(df, start="1970-01-15", end=2_000_000)),
        (local.k_core(dataset, 7, 4), quality.k_core(df, 7, 4)),
    ]
    for expected, got in pairs:
        expected, got = by_pair(expected.to_frame()), by_pair(got.toPandas())
        pd.testing.assert_frame_equal(got.drop(columns="value"), expected.drop(columns="value"), check_dtype=False)
        np.testing.assert_allclose(got["value"], expected["value"], rtol=1e-6)
    assert len(local.k_core(dataset, 7, 4)) == 56  # iterated: a single pass of the two thresholds keeps 73 rows


def test_aggregated_pairs_keep_their_latest_rows_context_as_locally(spark):
    frame = pd.DataFrame({"user_id": ["u1", "u2", "u1", "u1"], "item_id": ["i1", "i1", "i1", "i2"], "value": 1.0,
                          "timestamp": [20, 10, 10, 30], "device": ["mobile", "desktop", "desktop", "mobile"]})
    expected = local.aggregate_pairs(Dataset.from_frame(frame)).to_frame()
    got = quality.aggregate_pairs(spark.createDataFrame(frame)).toPandas()
    columns = ["user_id", "item_id", "value", "timestamp", "device"]
    pd.testing.assert_frame_equal(got[columns].sort_values(columns[:2]).reset_index(drop=True),
                                  expected[columns].sort_values(columns[:2]).reset_index(drop=True), check_dtype=False)
    assert got.set_index(["user_id", "item_id"]).loc[("u1", "i1"), "device"] == "mobile"


def test_transform_errors_are_named(spark, small):
    df = spark.createDataFrame(small.assign(value=small["value"] - 5))
    with pytest.raises(DataError, match="log1p_values needs non-negative values"):
        quality.log1p_values(df)
    with pytest.raises(ConfigError, match="needs days, start or end"):
        quality.history_window(df)
    with pytest.raises(ConfigError, match="got 'auto'"):
        quality.apply_weighting(df, "auto")
