"""Popularity and trending on Spark: the local ``popularity`` scorer's item scores and `tailored.pipeline.trending`'s
rising items, by aggregations over the interactions (nothing collected but the per-item results).

* `item_popularity`: `tailored.models.popularity.PopularityScorer` fitted on what the Recommender hands it: after a
  weighting other than ``raw`` each (user, item) pair is one row (its latest time), so an item scores its number of
  distinct users; ``raw`` keeps every row. With ``half_life_days`` each row weighs ``0.5 ** (age / half-life)``, the
  age counted back from the latest row.
* `daily_counts`: `tailored.data.activity.daily_counts` (items x the last ``TREND_DAYS`` days, from every row), and
  `trending_items`: the Poisson z-score ``(r - e) / sqrt(e + 1)`` of `tailored.pipeline.trending.trend_scores`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tailored.data.activity import DAY, TREND_DAYS
from tailored.data.columns import ITEM_ID, RANK, SCORE, TIMESTAMP, USER_ID
from tailored.errors import ConfigError, DataError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

DAY_COLUMN = "day"
COUNT = "count"


def _functions() -> Any:
    from pyspark.sql import functions

    return functions


def _require(df: DataFrame, *columns: str) -> None:
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise DataError(f"The interactions DataFrame lacks column(s) {missing}; its columns are {df.columns}.")


@dataclass
class SparkPopularity:
    """A trained popularity model: ``items`` (``item_id, score``) and the parameters (the local scorer's and the
    Recommender's weighting as resolved)."""

    items: DataFrame
    params: dict[str, Any] = field(default_factory=dict)


def train_popularity(df: DataFrame, half_life_days: float | None = None, weighting: str = "auto") -> SparkPopularity:
    """The local ``popularity`` scorer fitted inside a Recommender with ``weighting`` (``auto`` resolved as locally),
    for `tailored.spark.model_dir.write_model_dir`."""
    from tailored.spark.als import resolve_weighting

    concrete, _ = resolve_weighting(df, weighting)
    return SparkPopularity(item_popularity(df, concrete, half_life_days), {
        "algorithm": "popularity", "scorer": {"half_life_days": half_life_days}, "weighting": concrete})


def item_popularity(df: DataFrame, weighting: str = "binary", half_life_days: float | None = None) -> DataFrame:
    """``item_id, score`` (double): the local popularity scorer's ``item_scores_`` after the Recommender's
    ``weighting`` (concrete: raw, log1p, binary or confidence; only raw differs: every row counts)."""
    F = _functions()
    _require(df, USER_ID, ITEM_ID)
    timed = half_life_days is not None and TIMESTAMP in df.columns
    rows = df.select(F.col(USER_ID).cast("string").alias(USER_ID), F.col(ITEM_ID).cast("string").alias(ITEM_ID),
                     *([F.col(TIMESTAMP).cast("double").alias(TIMESTAMP)] if timed else []))
    if weighting != "raw":
        rows = rows.groupBy(USER_ID, ITEM_ID).agg(F.max(TIMESTAMP).alias(TIMESTAMP)) if timed else rows.distinct()
    if not timed:
        return rows.groupBy(ITEM_ID).agg(F.count("*").cast("double").alias(SCORE))
    if half_life_days <= 0:
        raise ConfigError(f"half_life_days must be positive, got {half_life_days}.")
    latest = rows.agg(F.max(TIMESTAMP)).first()[0]
    age = F.greatest(F.lit(float(latest)) - F.col(TIMESTAMP), F.lit(0.0)) / float(DAY)
    return rows.groupBy(ITEM_ID).agg(F.sum(F.pow(F.lit(0.5), age / float(half_life_days))).alias(SCORE))


def daily_counts(df: DataFrame) -> tuple[DataFrame, float]:
    """``item_id, day, count``: each item's rows per day over the last ``TREND_DAYS`` days (day ``TREND_DAYS - 1`` is
    the data's last day), and that day's end (unix seconds): `tailored.data.activity.daily_counts`."""
    F = _functions()
    _require(df, ITEM_ID, TIMESTAMP)
    latest = df.agg(F.max(F.col(TIMESTAMP).cast("double"))).first()[0]
    if latest is None:
        raise DataError("daily_counts needs interactions with timestamps; the DataFrame has none.")
    end = float(math.floor(latest / DAY) + 1) * DAY
    day = (TREND_DAYS - 1 - F.floor((F.lit(end) - F.col(TIMESTAMP).cast("double")) / DAY)).cast("int")
    counts = (df.select(F.col(ITEM_ID).cast("string").alias(ITEM_ID), day.alias(DAY_COLUMN))
              .where(F.col(DAY_COLUMN) >= 0).groupBy(ITEM_ID, DAY_COLUMN).agg(F.count("*").alias(COUNT)))
    return counts, end


def trending_items(df: DataFrame, k: int = 10, window_days: int = 7, min_count: int = 3) -> DataFrame:
    """The ``k`` most rising items (``item_id, score, window_count, expected_count, rank``): for ``r`` rows in the
    last ``window_days`` days and ``b`` in the days before (of ``TREND_DAYS``), ``e = b w / (TREND_DAYS - w)`` and
    the score ``(r - e) / sqrt(e + 1)`` among items with ``r >= min_count``; ties by the item's first position in
    the local catalogue cannot be known here, so ties go by item id."""
    F = _functions()
    if not 1 <= window_days < TREND_DAYS:
        raise ConfigError(f"window_days must be between 1 and {TREND_DAYS - 1}, got {window_days}.")
    counts, _ = daily_counts(df)
    start = TREND_DAYS - window_days
    per_item = counts.groupBy(ITEM_ID).agg(
        F.sum(F.when(F.col(DAY_COLUMN) >= start, F.col(COUNT)).otherwise(0)).cast("double").alias("window_count"),
        F.sum(F.when(F.col(DAY_COLUMN) < start, F.col(COUNT)).otherwise(0)).cast("double").alias("before"))
    expected = F.col("before") * window_days / float(start)
    scored = (per_item.withColumn("expected_count", expected)
              .withColumn(SCORE, (F.col("window_count") - F.col("expected_count"))
                          / F.sqrt(F.col("expected_count") + 1.0))
              .where(F.col("window_count") >= min_count))
    top = scored.orderBy(F.col(SCORE).desc(), F.col(ITEM_ID)).limit(k)
    from pyspark.sql.window import Window

    return (top.withColumn(RANK, F.row_number().over(Window.orderBy(F.col(SCORE).desc(), F.col(ITEM_ID))))
            .select(ITEM_ID, SCORE, "window_count", "expected_count", RANK))
