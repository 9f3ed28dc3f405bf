"""generate_interactions: exact counts, ids in range, determinism whatever the partitioning, and the skew its
docstring promises (Zipf-like items, lognormal users) measured against the closed-form shares."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tailored.errors import ConfigError
from tailored.spark.generate import START, YEAR_SECONDS, generate_interactions

USERS, ITEMS, ROWS = 1_000, 500, 40_000


@pytest.fixture(scope="module")
def generated(spark: object) -> pd.DataFrame:
    return generate_interactions(spark, USERS, ITEMS, ROWS, seed=3).toPandas()


def test_counts_columns_and_ranges(generated: pd.DataFrame) -> None:
    assert list(generated.columns) == ["user_id", "item_id", "value", "timestamp"]
    assert len(generated) == ROWS
    users = generated["user_id"].str[1:].astype(int)
    items = generated["item_id"].str[1:].astype(int)
    assert users.between(0, USERS - 1).all() and items.between(0, ITEMS - 1).all()
    assert generated["user_id"].str.startswith("u").all() and generated["item_id"].str.startswith("i").all()
    assert items.nunique() > 0.95 * ITEMS and users.nunique() > 0.95 * USERS
    assert generated["timestamp"].between(START, START + YEAR_SECONDS - 1).all()
    assert (generated["value"] == 1.0).all()
    months = pd.to_datetime(generated["timestamp"], unit="s").dt.month.value_counts()
    assert len(months) == 12 and months.min() > 0.07 * ROWS  # spread over the whole year


def test_same_seed_same_rows_whatever_the_partitions(spark: object, generated: pd.DataFrame) -> None:
    again = generate_interactions(spark, USERS, ITEMS, ROWS, seed=3, partitions=7).toPandas()
    pd.testing.assert_frame_equal(again, generated)
    other = generate_interactions(spark, USERS, ITEMS, ROWS, seed=4).toPandas()
    assert (other["item_id"] != generated["item_id"]).mean() > 0.9


def test_item_popularity_is_zipf_like(generated: pd.DataFrame) -> None:
    counts = generated["item_id"].value_counts().to_numpy()
    s, top = 0.9, ITEMS // 10
    expected = ((top + 1) ** (1 - s) - 1) / ((ITEMS + 1) ** (1 - s) - 1)  # share of the top 10 % of items
    assert counts[:top].sum() / ROWS == pytest.approx(expected, abs=0.02)
    ranks = np.arange(1, 101)
    slope = np.polyfit(np.log(ranks), np.log(counts[:100]), 1)[0]
    assert -1.1 < slope < -0.6  # log-log straight line with the exponent's slope


def test_user_activity_is_lognormal(generated: pd.DataFrame) -> None:
    counts = generated["user_id"].value_counts().to_numpy()
    sigma, z90 = 1.0, 1.2815515655446004
    expected = 1 - 0.5 * (1 + math.erf((z90 - sigma) / math.sqrt(2)))  # share of the most active 10 % of users
    assert counts[: USERS // 10].sum() / ROWS == pytest.approx(expected, abs=0.03)
    assert np.std(np.log(counts)) == pytest.approx(sigma, abs=0.15)


def test_flat_settings_and_bad_sizes(spark: object) -> None:
    flat = generate_interactions(spark, 50, 20, 4_000, seed=1, popularity_exponent=0.0, activity_sigma=0.0)
    counts = flat.groupBy("item_id").count().toPandas()["count"]
    assert counts.max() < 2 * counts.min()  # no skew asked, none given
    with pytest.raises(ConfigError, match="items >= 1"):
        generate_interactions(spark, 10, 0, 10)
