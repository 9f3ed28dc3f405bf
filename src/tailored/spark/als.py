"""Implicit ALS on Spark (MLlib's ``ALS(implicitPrefs=True)``) with the local ``als`` scorer's parameters mapped so
that the same parameters give the same model, on the values the local Recommender weighs them into.

The local scorer (``implicit``) minimises ``sum_ui c_ui (p_ui - x_u.y_i)^2 + reg (sum_u |x_u|^2 + sum_i |y_i|^2)``
with ``c_ui = alpha * r_ui`` on observed pairs and 1 elsewhere. MLlib minimises the same squared error with
``c_ui = 1 + alpha' * |r'_ui|`` on observed pairs and ALS-WR's regularisation: each user's solve adds
``regParam * n_u`` (its number of positive ratings), each item's ``regParam * n_i``. The mapping:

* confidence: ``r' = alpha * r - 1`` with ``alpha' = 1``, so ``1 + r' = alpha * r`` exactly. MLlib reads a rating
  ``<= 0`` as "not observed" (preference 0) and its confidence as ``1 + alpha'|r'|`` >= 1, so an observed pair whose
  local confidence is 1 or less gets ``r' = CONFIDENCE_FLOOR`` (a float32 ``1 + 1e-12`` is 1: exact at 1, the
  default ``alpha = 1`` on binary values; below 1, which implicit allows, MLlib cannot go and the pair counts 1).
* regularisation: ``regParam = reg * (users + items) / (2 * pairs)``: the mean of ``regParam * n`` over all user and
  item solves is then ``reg``, the local penalty (``n`` averages ``2 pairs / (users + items)`` over them). Heavier
  users and items are regularised more than locally (ALS-WR). On a validation split carved from MovieLens 100K P1's
  training part (per user 20 %, seed 42; local defaults: NDCG@10 0.2568) it gives 0.2634, where the users' mean
  count alone (regParam 0.147) gives 0.2728 and the items' (0.252) 0.2433; on P1 itself 0.4340 against the local
  0.4290 (`tailored benchmark spark`).
* the solver: MLlib solves each least-squares problem exactly (Cholesky), ``implicit`` by three conjugate-gradient
  steps; both start from small random factors (``seed``), which ``epochs`` of alternation wash out.

Before ALS the interactions go through the Recommender's weighting (`weighted_interactions`): the time decay, then
one row per (user, item) with the values summed and weighted (``auto`` resolved from the data as locally).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.data.transforms import HEAVY_TAIL_RATIO, WEIGHTINGS
from tailored.errors import ConfigError, DataError
from tailored.models.als import ALSScorer

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

FACTORS = "factors"
USER_INDEX = "user_index"
ITEM_INDEX = "item_index"
CONFIDENCE_FLOOR = 1e-12
"""The rating MLlib gets for an observed pair whose local confidence is 1 or less (MLlib: confidence 1)."""
DAY_SECONDS = 86400.0


@dataclass
class SparkFactors:
    """Trained ALS factors: ``users`` (``user_id, factors array<float>``), ``items`` (``item_id, factors``) and the
    parameters (the local scorer's, the Recommender's weighting as resolved, and what MLlib was given)."""

    users: DataFrame
    items: DataFrame
    params: dict[str, Any] = field(default_factory=dict)


def _functions() -> Any:
    from pyspark.sql import functions

    return functions


def resolve_weighting(df: DataFrame, weighting: str = "auto", explicit: bool = False) -> tuple[str, str]:
    """`tailored.data.transforms.resolve_weighting` on a DataFrame (``user_id, item_id[, value]``): the concrete
    weighting and why, from the per-(user, item) totals (their exact median and maximum, one aggregation)."""
    if weighting != "auto":
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"weighting={weighting!r} is not one of auto, {', '.join(WEIGHTINGS)}.")
        return weighting, "given"
    if explicit:
        return "raw", "the algorithm predicts the values (ratings) themselves"
    F = _functions()
    totals = _with_value(df).groupBy(USER_ID, ITEM_ID).agg(F.sum(VALUE).alias(VALUE))
    row = totals.agg(F.sum((F.col(VALUE) < 0).cast("long")).alias("negative"),
                     F.percentile(F.when(F.col(VALUE) > 0, F.col(VALUE)), 0.5).alias("median"),
                     F.max(F.when(F.col(VALUE) > 0, F.col(VALUE))).alias("largest")).first()
    if row["negative"]:
        return "raw", f"{row['negative']:,} negative (user, item) totals: signed feedback, kept as given"
    if row["largest"] is None:
        return "binary", "no positive value"
    median, largest = float(row["median"]), float(row["largest"])
    if largest >= HEAVY_TAIL_RATIO * median:
        return "log1p", (f"counts with a heavy tail: the largest (user, item) total {largest:g} is "
                         f"{largest / median:,.0f} x the median {median:g}")
    return "binary", (f"values without a heavy tail (largest (user, item) total {largest:g}, median {median:g}: "
                      "0/1, ratings or small counts): a ranking model learns from which pairs exist")


def weighted_interactions(df: DataFrame, weighting: str = "auto", confidence_alpha: float = 1.0,
                          decay_half_life_days: float | None = None) -> tuple[DataFrame, str]:
    """What the local ``Recommender.fit`` hands its scorer, as ``user_id, item_id, value`` with one row per pair (the
    values summed, as the scorer's ``dataset.matrix()`` sums them): ``decay_half_life_days`` weighs each row by
    ``0.5 ** (age / half-life)`` (age from the latest row), then the weighting (``auto`` resolved on the undecayed
    rows, `resolve_weighting`) -- ``binary``, ``log1p``, ``confidence`` (``1 + confidence_alpha * log1p``) of the
    non-negative per-pair totals, or ``raw``. Returns the frame and the concrete weighting."""
    F = _functions()
    for column in (USER_ID, ITEM_ID):
        if column not in df.columns:
            raise DataError(f"The interactions DataFrame lacks column {column!r}; its columns are {df.columns}.")
    concrete, _ = resolve_weighting(df, weighting)
    rows = _with_value(df)
    if decay_half_life_days is not None and TIMESTAMP in df.columns:
        if decay_half_life_days <= 0:
            raise ConfigError(f"decay_half_life_days must be positive, got {decay_half_life_days}.")
        latest = rows.agg(F.max(TIMESTAMP)).first()[0]
        age = F.greatest(F.lit(float(latest)) - F.col(TIMESTAMP).cast("double"), F.lit(0.0)) / DAY_SECONDS
        rows = rows.withColumn(VALUE, F.col(VALUE) * F.pow(F.lit(0.5), age / float(decay_half_life_days)))
    totals = rows.groupBy(USER_ID, ITEM_ID).agg(F.sum(VALUE).alias(VALUE))
    if concrete == "raw":
        return totals, concrete
    value = F.greatest(F.col(VALUE), F.lit(0.0))
    weighted = {"log1p": F.log1p(value), "binary": (value > 0).cast("double"),
                "confidence": 1.0 + float(confidence_alpha) * F.log1p(value)}[concrete]
    return totals.withColumn(VALUE, weighted), concrete


def _with_value(df: DataFrame) -> DataFrame:
    """``user_id, item_id, value`` (double; 1 where the frame has no value column) and the timestamp if any."""
    F = _functions()
    value = F.col(VALUE).cast("double") if VALUE in df.columns else F.lit(1.0)
    columns = [F.col(USER_ID).cast("string").alias(USER_ID), F.col(ITEM_ID).cast("string").alias(ITEM_ID),
               value.alias(VALUE)]
    return df.select(*columns, *([F.col(TIMESTAMP)] if TIMESTAMP in df.columns else []))


def mllib_params(factors: int, reg: float, alpha: float, epochs: int, seed: int, users: int, items: int,
                 pairs: int) -> dict[str, Any]:
    """MLlib ALS parameters for the local ``als`` parameters on data of ``users`` x ``items`` with ``pairs`` observed
    pairs (the module docstring's mapping); ``alpha`` is applied to the ratings (`mllib_ratings`), so MLlib's is 1."""
    if pairs <= 0:
        raise DataError("ALS needs at least one (user, item) pair with a positive weight; the interactions have none.")
    return {"rank": int(factors), "maxIter": int(epochs), "seed": int(seed), "alpha": 1.0, "implicitPrefs": True,
            "regParam": float(reg) * (users + items) / (2.0 * pairs), "nonnegative": False}


def indexed(df: DataFrame, column: str, index: str, sort: bool = True) -> DataFrame:
    """The distinct values of ``column`` numbered ``0..n-1`` (``column, index``; in sorted order with ``sort``), by
    ``zipWithIndex`` over the RDD: no single-partition window."""
    distinct = df.select(column).distinct()
    distinct = distinct.orderBy(column) if sort else distinct
    from pyspark.sql.types import LongType, StructField, StructType

    schema = StructType([distinct.schema[column], StructField(index, LongType(), False)])
    return distinct.rdd.zipWithIndex().map(lambda pair: (pair[0][0], pair[1])).toDF(schema)


def train_als(df: DataFrame, *, factors: int = ALSScorer.factors, reg: float = ALSScorer.reg,
              alpha: float = ALSScorer.alpha, epochs: int = ALSScorer.epochs, seed: int = ALSScorer.seed,
              weighting: str = "auto", confidence_alpha: float = 1.0, decay_half_life_days: float | None = None,
              block_count: int | None = None) -> SparkFactors:
    """MLlib implicit ALS on ``df`` (``user_id, item_id[, value, timestamp]``) with the local ``als`` scorer's
    parameters and the Recommender's weighting, mapped as the module docstring says. ``block_count``: MLlib's user
    and item blocks (default: the session's default parallelism)."""
    from pyspark.ml.recommendation import ALS

    F = _functions()
    checks = {"factors": factors >= 1, "epochs": epochs >= 1, "reg": reg >= 0, "alpha": alpha > 0}
    if bad := [name for name, good in checks.items() if not good]:
        raise ConfigError(f"train_als: {bad} out of range (factors >= 1, epochs >= 1, reg >= 0, alpha > 0); got "
                          f"factors={factors}, reg={reg}, alpha={alpha}, epochs={epochs}.")
    weighted, concrete = weighted_interactions(df, weighting, confidence_alpha, decay_half_life_days)
    weighted = weighted.where(F.col(VALUE) > 0).cache()
    users = indexed(weighted, USER_ID, USER_INDEX, sort=False).cache()
    items = indexed(weighted, ITEM_ID, ITEM_INDEX, sort=False).cache()
    rating = F.greatest(F.lit(float(alpha)) * F.col(VALUE) - 1.0, F.lit(CONFIDENCE_FLOOR)).cast("float")
    ratings = (weighted.join(users, USER_ID).join(items, ITEM_ID)
               .select(F.col(USER_INDEX).cast("int"), F.col(ITEM_INDEX).cast("int"), rating.alias("rating"))
               .cache())
    counts = ratings.agg(F.count("*"), F.countDistinct(USER_INDEX), F.countDistinct(ITEM_INDEX)).first()
    params = mllib_params(factors, reg, alpha, epochs, seed, counts[1], counts[2], counts[0])
    blocks = block_count or df.sparkSession.sparkContext.defaultParallelism
    model = ALS(userCol=USER_INDEX, itemCol=ITEM_INDEX, ratingCol="rating", numUserBlocks=blocks,
                numItemBlocks=blocks, **params).fit(ratings)
    for frame in (ratings, weighted):
        frame.unpersist()
    user_factors = (model.userFactors.join(users, model.userFactors["id"] == users[USER_INDEX])
                    .select(USER_ID, F.col("features").alias(FACTORS)))
    item_factors = (model.itemFactors.join(items, model.itemFactors["id"] == items[ITEM_INDEX])
                    .select(ITEM_ID, F.col("features").alias(FACTORS)))
    local = {"factors": factors, "reg": reg, "alpha": alpha, "epochs": epochs, "seed": seed}
    return SparkFactors(user_factors, item_factors, {
        "algorithm": "als", "scorer": local, "weighting": concrete, "confidence_alpha": confidence_alpha,
        "decay_half_life_days": decay_half_life_days, "mllib": params,
        "users": counts[1], "items": counts[2], "pairs": counts[0]})
