"""The quality rules of `tailored.data.quality.check_quality` and the transforms of `tailored.data.transforms` as
DataFrame operations: the same rules in the same order, so the same rows are accepted and every rejected row carries
the same reason (``rule:column``, the first rule it failed) as on one machine.

The outlier rule needs the median and the 99th percentile (lower) of the (user, item[, event type]) totals: they are
exact order statistics (`split.order_statistics`: histogram passes, then at most a few thousand values on the driver),
not Spark's approximate percentiles, so that a threshold flags exactly the pairs the local rule flags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from tailored.data.cells import timestamps as parsed_timestamps
from tailored.data.columns import BASKET_ID, EVENT_TYPE, ITEM_ID, REASON, TIMESTAMP, USER_ID, VALUE
from tailored.data.quality import TAIL_NORMAL_Z, TAIL_QUANTILE, QualityRules
from tailored.data.transforms import window_bounds
from tailored.errors import ConfigError, DataError
from tailored.spark.io import number, unix_seconds
from tailored.spark.split import order_statistics

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

_VALUE, _SECONDS, _REASON = "_value", "_seconds", "_reason"
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class QualityResult:
    """Accepted rows in canonical columns, rejected rows as read with their ``reason``, and rejected rows per reason."""

    clean: DataFrame
    rejected: DataFrame
    counts: dict[str, int]


def check_quality(df: DataFrame, rules: QualityRules | None = None, now: float | None = None,
                  users: DataFrame | None = None, items: DataFrame | None = None) -> QualityResult:
    """Check an interactions frame whose ``value``/``timestamp`` may still be text (`io.read_interactions` with
    ``parse=False``) by the rules of ``rules``; ``users``/``items`` are attribute tables (``user_id``/``item_id``
    columns) whose ids the ids must be among (``known_users``/``known_items``). ``now`` (unix seconds) defaults to
    the current time. ``counts`` is computed here (one Spark job)."""
    from pyspark.sql import functions as F

    rules = rules or QualityRules()
    for column in (USER_ID, ITEM_ID):
        if column not in df.columns:
            raise DataError(f"interactions have no '{column}' column (columns: {df.columns}); map your id column "
                            "to it.")
    raw = df.columns
    types = dict(df.dtypes)
    frame = df.withColumn(_REASON, F.lit(None).cast("string"))
    if VALUE in raw:
        frame = frame.withColumn(_VALUE, number(F.col(VALUE), df.schema[VALUE].dataType))
    if TIMESTAMP in raw:
        frame = frame.withColumn(_SECONDS, unix_seconds(F.col(TIMESTAMP), df.schema[TIMESTAMP].dataType))
    blank = {column: _blank(column, types[column]) for column in (USER_ID, ITEM_ID, VALUE, TIMESTAMP, EVENT_TYPE,
                                                                   BASKET_ID) if column in raw}
    for column, missing in blank.items():
        frame = _flag(frame, missing, f"missing_value:{column}", rules.drop_missing)
    value, seconds = F.col(_VALUE), F.col(_SECONDS)
    finite = ~F.isnan(value) & (F.abs(value) != math.inf)
    if VALUE in raw:
        frame = _flag(frame, ~(value.isNotNull() & finite) & ~blank[VALUE], f"invalid_value:{VALUE}",
                      rules.drop_invalid_values)
    if TIMESTAMP in raw:
        frame = _flag(frame, seconds.isNull() & ~blank[TIMESTAMP], f"invalid_timestamp:{TIMESTAMP}",
                      rules.drop_invalid_values)
    if VALUE in raw:
        number_ = value.isNotNull() & ~F.isnan(value)  # Spark orders NaN above every number; numpy compares False
        for bound, code, test in ((rules.max_abs_value, "absurd_value", lambda b: F.abs(value) > b),
                                  (rules.min_value, "below_minimum", lambda b: value < b),
                                  (rules.max_value, "above_maximum", lambda b: value > b)):
            if bound is not None:
                frame = _flag(frame, number_ & test(float(bound)), f"{code}:{VALUE}", rules.drop_invalid_values)
    if TIMESTAMP in raw:
        if rules.max_future_seconds is not None:
            limit = (pd.Timestamp.now(tz="UTC").timestamp() if now is None else now) + rules.max_future_seconds
            frame = _flag(frame, seconds > limit, f"future_timestamp:{TIMESTAMP}", rules.drop_invalid_values)
        if rules.min_timestamp is not None:
            frame = _flag(frame, seconds < _earliest(rules.min_timestamp), f"before_min_timestamp:{TIMESTAMP}",
                          rules.drop_invalid_values)
    for column, table, enabled in ((USER_ID, users, rules.known_users), (ITEM_ID, items, rules.known_items)):
        if table is not None and enabled:
            frame = _flag_unknown(frame, table, column, types[column])
    frame = _flag_duplicates(frame, raw, rules.drop_duplicates)
    if VALUE not in raw:
        frame = frame.withColumn(_VALUE, F.lit(1.0))
    if rules.max_count_zscore is not None:
        frame = _outliers(frame.persist(), rules)
    for column, minimum in ((USER_ID, rules.min_user_interactions), (ITEM_ID, rules.min_item_interactions)):
        if minimum > 1:
            alive = F.col(_REASON).isNull() & F.col(column).isNotNull()
            counts = F.sum(alive.cast("int")).over(_window(column))
            frame = _flag(frame, alive & (counts < minimum), f"too_few_interactions:{column}", True)
    rejected = frame.filter(F.col(_REASON).isNotNull()).select(
        F.col(_REASON).alias(REASON), *(F.col(f"`{name}`") for name in raw))
    counts = {reason: int(count) for reason, count in rejected.groupBy(REASON).count().collect()}
    return QualityResult(_canonical(frame.filter(F.col(_REASON).isNull()), raw, types), rejected, counts)


# -- transforms (tailored.data.transforms on DataFrames) -------------------------------------------------------
def aggregate_pairs(df: DataFrame) -> DataFrame:
    """One row per (user, item): values summed, latest timestamp kept, and the other columns (event type, context)
    as the pair's latest row has them, as `tailored.data.transforms.aggregate_pairs` keeps them (rows without a
    timestamp, or tied at the latest one, have no order here: one of them)."""
    from pyspark.sql import functions as F

    others = [column for column in df.columns if column not in (USER_ID, ITEM_ID, VALUE, TIMESTAMP)]
    latest = [F.max_by(column, TIMESTAMP) if TIMESTAMP in df.columns else F.last(column) for column in others]
    aggregations = [F.sum(VALUE).alias(VALUE)] + ([F.max(TIMESTAMP).alias(TIMESTAMP)] if TIMESTAMP in df.columns
                                                   else [])
    return df.groupBy(USER_ID, ITEM_ID).agg(*aggregations, *[column.alias(name) for column, name in
                                                             zip(latest, others, strict=True)])


def apply_weighting(df: DataFrame, weighting: str, confidence_alpha: float = 1.0) -> DataFrame:
    """``raw`` as is; otherwise pairs aggregated, totals clipped at 0, then ``log1p``, ``binary`` (presence) or
    ``confidence`` (Hu et al.'s ``1 + alpha * log1p(value)``)."""
    from pyspark.sql import functions as F

    if weighting == "raw":
        return df
    total = F.greatest(F.col(VALUE), F.lit(0.0))
    weighted = {"log1p": F.log1p(total), "binary": (total > 0).cast("double"),
                "confidence": 1.0 + confidence_alpha * F.log1p(total)}
    if weighting not in weighted:
        raise ConfigError(f"apply_weighting needs one of raw, {', '.join(weighted)}, got {weighting!r} (resolve "
                          "'auto' on a local sample with tailored.data.transforms.resolve_weighting).")
    return aggregate_pairs(df).withColumn(VALUE, weighted[weighting])


def log1p_values(df: DataFrame) -> DataFrame:
    """Values replaced by ``log1p(value)`` (no aggregation); negative values are a DataError."""
    from pyspark.sql import functions as F

    negative, lowest = df.agg(F.sum((F.col(VALUE) < 0).cast("int")), F.min(VALUE)).first()
    if negative:
        raise DataError(f"log1p_values needs non-negative values, found {negative} negative (minimum {lowest:g}); "
                        "reject them first with check_quality(rules=QualityRules(min_value=0)).")
    return df.withColumn(VALUE, F.log1p(VALUE))


def decayed(df: DataFrame, decay_half_life_days: float | None) -> DataFrame:
    """Values times ``0.5 ** (age / decay_half_life_days)``, the age counted back from the latest interaction;
    unchanged without a half-life or timestamps."""
    from pyspark.sql import functions as F

    if decay_half_life_days is None or TIMESTAMP not in df.columns:
        return df
    if decay_half_life_days <= 0:
        raise ConfigError(f"decay_half_life_days must be positive, got {decay_half_life_days}.")
    latest = df.agg(F.max(TIMESTAMP)).first()[0]
    age_days = F.greatest(F.lit(float(latest)) - F.col(TIMESTAMP), F.lit(0.0)) / SECONDS_PER_DAY
    return df.withColumn(VALUE, F.col(VALUE) * F.pow(F.lit(0.5), age_days / decay_half_life_days))


def history_window(df: DataFrame, days: float | None = None, start: Any = None, end: Any = None) -> DataFrame:
    """Interactions with ``start <= timestamp < end`` (unix seconds, ISO dates or Timestamps, naive = UTC); ``days``
    sets the length: after ``start``, or before ``end`` (default: just after the latest interaction)."""
    from pyspark.sql import functions as F

    if TIMESTAMP not in df.columns:
        raise DataError("history_window needs timestamps but the interactions have no 'timestamp' column; read them "
                        "with time_col=<your time column>.")
    lower, upper = window_bounds(days, start, end, lambda: float(df.agg(F.max(TIMESTAMP)).first()[0]))
    keep = F.lit(True)
    if lower is not None:
        keep = keep & (F.col(TIMESTAMP) >= lower)
    if upper is not None:
        keep = keep & (F.col(TIMESTAMP) < upper)
    return df.filter(keep)


def k_core(df: DataFrame, k_users: int, k_items: int | None = None) -> DataFrame:
    """Drop users with fewer than ``k_users`` and items with fewer than ``k_items`` (default ``k_users``) rows, again
    and again until every remaining user and item has enough. Each round is materialised (one count per round)."""
    from pyspark.sql import functions as F

    k_items = k_users if k_items is None else k_items
    current = df.persist()
    rows = current.count()
    while True:
        survivors = (current.withColumn("_u", F.count(F.lit(1)).over(_window(USER_ID)))
                     .withColumn("_i", F.count(F.lit(1)).over(_window(ITEM_ID)))
                     .filter((F.col("_u") >= k_users) & (F.col("_i") >= k_items)).drop("_u", "_i").persist())
        left = survivors.count()
        current.unpersist()
        if left == rows:
            return survivors
        current, rows = survivors, left


# -- helpers ---------------------------------------------------------------------------------------------------
def _flag(frame: DataFrame, mask: Column, reason: str, drop: bool) -> DataFrame:
    """Reject the accepted rows of ``mask`` with ``reason`` (rows already rejected keep their first reason)."""
    from pyspark.sql import functions as F

    if not drop:
        return frame
    hit = F.col(_REASON).isNull() & F.coalesce(mask, F.lit(False))
    return frame.withColumn(_REASON, F.when(hit, F.lit(reason)).otherwise(F.col(_REASON)))


def _blank(column: str, data_type: str) -> Column:
    """Missing cells: null, NaN, or text that is empty after stripping."""
    from pyspark.sql import functions as F

    missing = F.col(column).isNull()
    if data_type in ("double", "float"):
        missing = missing | F.isnan(column)
    if data_type == "string":
        missing = missing | F.col(column).rlike(r"^\s*$")
    return missing


def _flag_unknown(frame: DataFrame, table: DataFrame, column: str, data_type: str) -> DataFrame:
    """Reject rows whose id (as text) is absent from the attribute table's ``column``."""
    from pyspark.sql import functions as F

    if column not in table.columns:
        raise DataError(f"The {column.split('_')[0]} table has no '{column}' column (columns: {table.columns}); rename "
                        f"its id column to '{column}'.")
    known = (table.select(_id_text(column, dict(table.dtypes)[column]).alias("_id")).distinct()
             .withColumn("_known", F.lit(True)))
    joined = frame.withColumn("_id", _id_text(column, data_type)).join(known, "_id", "left")
    return _flag(joined, F.col("_known").isNull(), f"unknown_id:{column}", True).drop("_id", "_known")


def _id_text(column: str, data_type: str) -> Column:
    """Ids as text; integral floats (ids that met a missing value) lose their ``.0``, as `data.idmap.id_strings`."""
    from pyspark.sql import functions as F

    if data_type in ("double", "float"):
        whole = F.col(column) == F.floor(column)
        return F.when(whole, F.col(column).cast("long").cast("string")).otherwise(F.col(column).cast("string"))
    return F.col(column).cast("string")


def _flag_duplicates(frame: DataFrame, raw: list[str], drop: bool) -> DataFrame:
    """Exact copies (every column as read) of an accepted row: all but one of each group of accepted copies."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    alive = F.col(_REASON).isNull()
    copies = Window.partitionBy(alive, *(F.col(f"`{name}`") for name in raw)).orderBy(F.col(f"`{raw[0]}`"))
    return _flag(frame, alive & (F.row_number().over(copies) > 1), "duplicate_row:all_columns", drop)


def _outliers(frame: DataFrame, rules: QualityRules) -> DataFrame:
    """Rows of pairs whose summed value has a robust z-score above the threshold: rejected, or scaled so that the
    pair sums to the threshold when clipping (`tailored.data.quality._outliers`)."""
    from pyspark.sql import functions as F

    keys = [USER_ID, ITEM_ID] + ([EVENT_TYPE] if EVENT_TYPE in frame.columns else [])
    alive = F.col(_REASON).isNull()
    pair_total = F.sum(F.when(alive, F.col(_VALUE))).over(_window(*keys))
    totals = frame.filter(alive).groupBy(*keys).agg(F.sum(_VALUE).alias("_total"))
    scale = (lambda total: F.log1p(F.greatest(total, F.lit(0.0)))) if rules.zscore_scale == "log1p" else (
        lambda total: total)
    scaled = totals.select(scale(F.col("_total")).alias("_scaled")).filter(
        ~F.isnan("_scaled") & (F.abs("_scaled") != math.inf)).persist()
    center, spread = _robust_location(scaled)
    scaled.unpersist()
    threshold = float(rules.max_count_zscore)  # type: ignore[arg-type]
    if spread <= 0:
        return frame
    flagged = alive & ((scale(pair_total) - center) > threshold * spread)
    if not rules.clip_outliers:
        return _flag(frame, flagged, f"outlier_count:{VALUE}", True)
    cap_scaled = center + threshold * spread
    cap = math.expm1(cap_scaled) if rules.zscore_scale == "log1p" else cap_scaled
    return frame.withColumn(_VALUE, F.when(flagged, F.col(_VALUE) * cap / pair_total).otherwise(F.col(_VALUE)))


def _robust_location(scaled: DataFrame) -> tuple[float, float]:
    """Median and ``(q99 (lower) - median) / 2.326`` of ``_scaled`` (1.2533 x the mean absolute deviation when that is
    0), exactly as `tailored.data.quality._robust_location` on the same values."""
    from pyspark.sql import functions as F

    n = scaled.count()
    if n == 0:
        return 0.0, 0.0
    below, above, upper = order_statistics(scaled, "_scaled", [(n - 1) // 2, n // 2,
                                                               int(math.floor(TAIL_QUANTILE * (n - 1)))])
    center = (below + above) / 2
    spread = (upper - center) / TAIL_NORMAL_Z
    if spread:
        return center, spread
    return center, 1.2533 * float(scaled.agg(F.avg(F.abs(F.col("_scaled") - center))).first()[0])


def _canonical(clean: DataFrame, raw: list[str], types: dict[str, str]) -> DataFrame:
    """Accepted rows: ids as text (integral numbers without ``.0``), ``value`` double, ``timestamp`` long, then the
    other columns as read."""
    from pyspark.sql import functions as F

    leading = [_id_text(USER_ID, types[USER_ID]).alias(USER_ID), _id_text(ITEM_ID, types[ITEM_ID]).alias(ITEM_ID),
               F.col(_VALUE).alias(VALUE)]
    if TIMESTAMP in raw:
        leading.append(F.col(_SECONDS).alias(TIMESTAMP))
    rest = [F.col(f"`{name}`") for name in raw if name not in (USER_ID, ITEM_ID, VALUE, TIMESTAMP)]
    return clean.select(*leading, *rest)


def _window(*columns: str) -> Any:
    from pyspark.sql import Window

    return Window.partitionBy(*columns)


def _earliest(moment: int | str) -> float:
    seconds = parsed_timestamps(pd.Series([moment]))
    if seconds.dtype == object:
        raise ConfigError(f"min_timestamp={moment!r} is neither unix seconds nor an ISO-8601 date.")
    return float(seconds.iloc[0])
