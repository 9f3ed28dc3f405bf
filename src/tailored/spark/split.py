"""The engine's splitters as DataFrame operations: the same seed gives the same rows as `tailored.split` on the same
data, row for row.

The local randomised splitters draw ``default_rng(seed).random(n)`` and hand the i-th draw to the i-th row of the
canonical order (user id, then item id, then timestamp; ids that are all numbers sort as numbers: `id_ranks`). Here
each row gets its canonical position (the rows of the users sorted before it, plus its rank inside its user); a
user's rows hold consecutive positions, so every Arrow batch draws its slices of the same stream with PCG64
``advance(first position)`` then ``random(span)``. Nothing but counts and a few order statistics reaches the
driver, and the rows are shuffled once (by user). Rows that agree on user, item and timestamp but differ elsewhere
are ordered by their other columns (the local engine takes them in file order): the only case where the two can
differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID
from tailored.errors import ConfigError, DataError
from tailored.split.base import check_fraction
from tailored.split.registry import splitter_call
from tailored.split.temporal import SECONDS_PER_DAY, as_time

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

POSITION, KEY, RANK, COUNT = "_position", "_key", "_rank", "_count"
_BUCKETS = 4096
"""Histogram buckets per pass of the exact order statistics (`order_statistics`)."""
_COLLECTED = 50_000
"""At most this many values of one column are brought to the driver to finish an order statistic."""


def split_by_name(df: DataFrame, method: str, strict: bool = True, **params: Any) -> tuple[DataFrame, DataFrame]:
    """``(train, test)`` of ``df`` by the splitter named ``method`` with the parameters of
    `tailored.split.registry.split_by_name` (``None`` parameters take their defaults; with ``strict`` a parameter the
    method does not take is a ConfigError, otherwise it is ignored)."""
    splitter, kwargs = splitter_call(SPARK_SPLITTERS, method, strict, params)
    for column in (USER_ID, ITEM_ID):
        if column not in df.columns:
            raise DataError(f"Interactions have no '{column}' column; columns are {df.columns}.")
    return splitter(df, **kwargs)


# -- the splitters (same names, parameters and defaults as tailored.split) -----------------------------------------
def split_random(df: DataFrame, test_fraction: float = 0.2, seed: int = 42) -> tuple[DataFrame, DataFrame]:
    """Exactly ``round(test_fraction * rows)`` rows with the smallest keys go to test."""
    from pyspark.sql import functions as F

    check_fraction(test_fraction, "test_fraction")
    keyed = random_keys(df, seed).persist()
    n_test = int(np.rint(test_fraction * keyed.count()))
    if n_test == 0:
        return _drop_helpers(keyed), _drop_helpers(keyed.limit(0))
    key = kth_smallest(keyed, KEY, n_test - 1)
    below, tied = keyed.filter(F.col(KEY) <= key).agg(
        F.sum((F.col(KEY) < key).cast("long")), F.collect_list(F.when(F.col(KEY) == key, F.col(POSITION)))).first()
    last = sorted(tied)[n_test - below - 1]  # equal keys: the earlier canonical position first
    test = (F.col(KEY) < key) | ((F.col(KEY) == key) & (F.col(POSITION) <= last))
    return _parts(keyed, test)


def split_per_user(df: DataFrame, test_fraction: float = 0.2, seed: int = 42) -> tuple[DataFrame, DataFrame]:
    """Per user, the ``round(test_fraction * n)`` rows with the smallest keys go to test (protocol P1); at least 1
    when n >= 2, and at least 1 stays in training."""
    from pyspark.sql import functions as F

    check_fraction(test_fraction, "test_fraction")
    counts = F.col(COUNT)
    n_test = F.when(counts >= 2, F.least(F.greatest(F.bround(F.lit(test_fraction) * counts, 0), F.lit(1.0)),
                                         counts - 1)).otherwise(0)
    return _hold_out(random_keys(df, seed), n_test, [F.col(KEY), F.col(POSITION)])


def split_leave_last_out(df: DataFrame, n: int = 1) -> tuple[DataFrame, DataFrame]:
    """Each user's ``n`` latest rows go to test (protocol P2 for n=1); equal times: the larger item id is later.
    Users with ``n`` rows or fewer stay in training."""
    from pyspark.sql import functions as F

    if int(n) != n or n < 1:
        raise ConfigError(f"Parameter n={n!r} must be a positive whole number of rows per user, e.g. 1.")
    _require_times(df, "split_leave_last_out")
    latest_first = [F.col(TIMESTAMP).desc(), *(key.desc() for key in id_order(df, ITEM_ID)[0]), *_ties(df)]
    return _hold_out(df, F.when(F.col(COUNT) > n, int(n)).otherwise(0), latest_first)


def split_leave_one_out_random(df: DataFrame, seed: int = 42) -> tuple[DataFrame, DataFrame]:
    """One random row (the smallest key) of each user with at least 2 rows goes to test."""
    from pyspark.sql import functions as F

    return _hold_out(random_keys(df, seed), F.when(F.col(COUNT) > 1, 1).otherwise(0), [F.col(KEY), F.col(POSITION)])


def split_temporal(df: DataFrame, cutoff: Any = None, test_fraction: float | None = None,
                   horizon_days: float | None = None) -> tuple[DataFrame, DataFrame]:
    """Rows before the cut train, rows at or after it test (within ``horizon_days`` of the cut when given); the cut is
    ``cutoff`` (unix seconds or a date) or the timestamp leaving ``round(test_fraction * rows)`` rows after it."""
    from pyspark.sql import functions as F

    if (cutoff is None) == (test_fraction is None):
        raise ConfigError("split_temporal needs exactly one of cutoff (a time) or test_fraction (e.g. 0.2).")
    _require_times(df, "split_temporal")
    if test_fraction is not None:
        rows = df.count()
        n_test = int(np.rint(check_fraction(test_fraction, "test_fraction") * rows))
        cut: float = kth_smallest(df, TIMESTAMP, rows - max(n_test, 1))
    else:
        cut = float(as_time(cutoff, numeric=True))
    times = F.col(TIMESTAMP)
    test = times >= cut
    if horizon_days is not None:
        if horizon_days <= 0:
            raise ConfigError(f"Parameter horizon_days={horizon_days!r} must be positive (days after the cut).")
        test = test & (times < cut + horizon_days * SECONDS_PER_DAY)
    return df.filter(times < cut), df.filter(test)


def split_cold_users(df: DataFrame, fraction: float = 0.2, seed: int = 42) -> tuple[DataFrame, DataFrame]:
    """``round(fraction * users)`` users, and all their rows, go to test (protocol P6)."""
    return _cold(df, USER_ID, fraction, seed)


def split_cold_items(df: DataFrame, fraction: float = 0.1, seed: int = 42) -> tuple[DataFrame, DataFrame]:
    """``round(fraction * items)`` items, and all their rows, go to test."""
    return _cold(df, ITEM_ID, fraction, seed)


SPARK_SPLITTERS: dict[str, Callable[..., tuple[DataFrame, DataFrame]]] = {
    "per_user": split_per_user,
    "random": split_random,
    "leave_last_out": split_leave_last_out,
    "leave_one_out_random": split_leave_one_out_random,
    "temporal": split_temporal,
    "cold_users": split_cold_users,
    "cold_items": split_cold_items,
}


# -- canonical order and keys ----------------------------------------------------------------------------------
def id_order(df: DataFrame, *columns: str) -> list[list[Column]]:
    """Sort keys of each id column as `tailored.data.ordering.id_ranks` orders ids: as numbers when every id is a
    number (then the text breaks ties of equal doubles), as text otherwise (one Spark job for all the columns)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    texts = [column for column in columns if not isinstance(df.schema[column].dataType, NumericType)]
    numbers = {column: F.col(column).try_cast("double") for column in texts}
    checks = [F.bool_and(number.isNotNull() & ~F.isnan(number)) for number in numbers.values()]
    numeric = dict(zip(texts, df.agg(*checks).first(), strict=True)) if texts else {}
    return [[F.col(column)] if column not in numeric else [numbers[column], F.col(column)] if numeric[column]
            else [F.col(column)] for column in columns]


def canonical_positions(df: DataFrame) -> DataFrame:
    """``df`` with ``_position``: the row's place in the canonical (user id, item id, timestamp) order, 0-based."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    users, items = id_order(df, USER_ID, ITEM_ID)
    within = [*items, *([F.col(TIMESTAMP).asc_nulls_first()] if TIMESTAMP in df.columns else []),
              *_ties(df)]
    offsets = (df.groupBy(USER_ID).count()
               .withColumn("_offset", F.coalesce(F.sum("count").over(
                   Window.orderBy(*users).rowsBetween(Window.unboundedPreceding, -1)), F.lit(0)))
               .drop("count"))
    rank = F.row_number().over(Window.partitionBy(USER_ID).orderBy(*within)) - 1
    return df.join(offsets, USER_ID).withColumn(POSITION, F.col("_offset") + rank).drop("_offset")


def random_keys(df: DataFrame, seed: int) -> DataFrame:
    """``df`` with ``_position`` and ``_key``: the draw of ``default_rng(seed).random(rows)`` at the row's canonical
    position, the key `tailored.split.base.random_keys` gives the same row. The rows stay partitioned by user, as the
    positions were computed: each user's rows hold a run of consecutive positions, drawn in one go."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")  # type: ignore[call-overload]
    def draw(positions: pd.Series) -> pd.Series:
        return pd.Series(uniform_draws(seed, positions.to_numpy(np.int64)))

    return canonical_positions(df).withColumn(KEY, draw(F.col(POSITION)))


def uniform_draws(seed: int, positions: np.ndarray, gap: int = 256) -> np.ndarray:
    """``default_rng(seed).random(n)[positions]`` without drawing the whole stream: for each run of positions (sorted,
    at most ``gap`` apart) the PCG64 stream is reset and advanced to the run's first position (one 64-bit step per
    double), then the run's span is drawn. A reset costs about as much as drawing a few thousand doubles, and a run
    spans at most ``gap + 1`` draws per position, so a batch of users' rows costs little time and memory either way."""
    keys = np.empty(len(positions))
    if len(positions) == 0:
        return keys
    order = np.argsort(positions, kind="stable")
    ordered = positions[order]
    starts = np.flatnonzero(np.r_[True, np.diff(ordered) > gap])
    generator = np.random.PCG64(seed)
    initial, stream = generator.state, np.random.Generator(generator)
    for start, end in zip(starts, np.r_[starts[1:], len(ordered)], strict=True):
        first = int(ordered[start])
        generator.state = initial
        generator.advance(first)
        keys[order[start:end]] = stream.random(int(ordered[end - 1]) - first + 1)[ordered[start:end] - first]
    return keys


def kth_smallest(df: DataFrame, column: str, k: int) -> float:
    """The exact ``k``-th smallest (0-based) value of a numeric column without nulls (`order_statistics`)."""
    return order_statistics(df, column, [k])[0]


def order_statistics(df: DataFrame, column: str, ks: list[int]) -> list[float]:
    """The exact ``k``-th smallest (0-based) values of a numeric column without nulls, for each k of ``ks``: up to
    `_COLLECTED` values are sorted on the driver; beyond, histogram passes narrow the range to the bucket holding the
    k-th value until that few remain."""
    from pyspark.sql import functions as F

    values = df.select(F.col(column).cast("double").alias("_x"))
    low, high, rows = values.agg(F.min("_x"), F.max("_x"), F.count("_x")).first()
    for k in ks:
        if not 0 <= k < rows:
            raise DataError(f"Cannot take value {k} of '{column}': it has {rows} values.")
    if rows <= _COLLECTED:
        ordered = np.sort(values.toPandas()["_x"].to_numpy())
        return [float(ordered[k]) for k in ks]
    return [_narrowed(values, k, low, high, rows) for k in ks]


def _narrowed(values: DataFrame, k: int, low: float, high: float, rows: int) -> float:
    """The k-th smallest ``_x`` by histogram passes (`_BUCKETS` buckets between the current minimum and maximum)."""
    from pyspark.sql import functions as F

    while low != high and rows > _COLLECTED:
        bucket = F.least(F.floor((F.col("_x") - low) / (high - low) * _BUCKETS), F.lit(_BUCKETS - 1))
        counts = dict(values.groupBy(bucket.alias("_b")).count().collect())
        filled = np.array(sorted(counts))
        cumulative = np.cumsum([counts[b] for b in filled])
        chosen = int(np.searchsorted(cumulative, k, side="right"))
        k -= int(cumulative[chosen - 1]) if chosen else 0
        values = values.filter(bucket == int(filled[chosen]))
        low, high, rows = values.agg(F.min("_x"), F.max("_x"), F.count("_x")).first()
    if low == high:
        return float(low)
    return float(np.sort(values.toPandas()["_x"].to_numpy())[k])


# -- shared steps ----------------------------------------------------------------------------------------------
def _hold_out(df: DataFrame, n_test: Column, order: list[Column]) -> tuple[DataFrame, DataFrame]:
    """Each user's first ``n_test`` rows by ``order`` go to test (``n_test`` may read the user's row count)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    users = Window.partitionBy(USER_ID)
    ranked = (df.withColumn(COUNT, F.count(F.lit(1)).over(users))
              .withColumn(RANK, F.row_number().over(users.orderBy(*order)) - 1))
    return _parts(ranked, F.col(RANK) < n_test)


def _cold(df: DataFrame, column: str, fraction: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """Rows of the ids at the first ``round(fraction * n)`` places of ``default_rng(seed).permutation(n)`` of the n
    active ids in id order (only the permutation of 0..n-1 is built on the driver, never the ids)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    check_fraction(fraction, "fraction")
    ids = df.select(column).distinct()
    n_ids = ids.count()
    n_test = int(np.clip(np.rint(fraction * n_ids), 1, max(n_ids - 1, 1)))
    chosen = np.random.default_rng(seed).permutation(n_ids)[:n_test]
    places = df.sparkSession.createDataFrame(pd.DataFrame({RANK: chosen.astype(np.int64), "_cold": True}))
    ranked = ids.withColumn(RANK, F.row_number().over(Window.orderBy(*id_order(df, column)[0])) - 1)
    cold = ranked.join(F.broadcast(places), RANK).select(column, "_cold")
    flagged = df.join(cold, column, "left")
    return _parts(flagged, F.col("_cold").isNotNull())


def _parts(df: DataFrame, test: Column) -> tuple[DataFrame, DataFrame]:
    """(train, test) of ``df`` by the boolean ``test``, without the helper columns."""
    from pyspark.sql import functions as F

    flagged = df.withColumn("_test", test)
    return _drop_helpers(flagged.filter(~F.col("_test"))), _drop_helpers(flagged.filter(F.col("_test")))


def _drop_helpers(df: DataFrame) -> DataFrame:
    return df.drop(POSITION, KEY, RANK, COUNT, "_cold", "_test")


def _ties(df: DataFrame) -> list[Column]:
    """The other columns (a deterministic order for rows equal on user, item and timestamp; maps cannot be sorted)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType

    skip = {USER_ID, ITEM_ID, TIMESTAMP, POSITION, KEY, RANK, COUNT}
    columns = [field.name for field in df.schema.fields if field.name not in skip
               and not isinstance(field.dataType, MapType)]
    return [F.col(name).asc_nulls_first() for name in columns]


def _require_times(df: DataFrame, where: str) -> None:
    from pyspark.sql import functions as F

    if TIMESTAMP not in df.columns:
        raise DataError(f"{where} needs a '{TIMESTAMP}' column and the interactions have none: name the file's "
                        "time column with --time-col.")
    missing = df.filter(F.col(TIMESTAMP).isNull()).count()
    if missing:
        raise DataError(f"{where}: {missing} rows have no '{TIMESTAMP}'; drop or fill them first.")


